#ifndef SSL_CZLIB_SHIM_H
#define SSL_CZLIB_SHIM_H
#include <zlib.h>
#endif
