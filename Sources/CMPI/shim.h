#ifndef SSL_CMPI_SHIM_H
#define SSL_CMPI_SHIM_H
#include <mpi.h>

// OpenMPI's handles are addresses of incomplete global structs, which Swift cannot take;
// these accessors return them.
static inline MPI_Comm ssl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ssl_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Op ssl_mpi_sum(void) { return MPI_SUM; }
static inline void *ssl_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler ssl_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int ssl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int ssl_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Status *ssl_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
#endif
