#ifndef SSL_COPENBLAS_SHIM_H
#define SSL_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
