#ifndef SSL_CHDF5_SHIM_H
#define SSL_CHDF5_SHIM_H
#include <hdf5.h>

// HDF5 exposes its predefined types and flags as macros that read mutable globals after
// `H5open()`. Swift imports neither the macros nor (in Swift 6 mode) the globals, so these
// accessors return them.
static inline hid_t ssl_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t ssl_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t ssl_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t ssl_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t ssl_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t ssl_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t ssl_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t ssl_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t ssl_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline unsigned ssl_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned ssl_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned ssl_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned ssl_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
#endif
