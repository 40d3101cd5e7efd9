#ifndef SSL_CONEDNN_SHIM_H
#define SSL_CONEDNN_SHIM_H
#include <oneapi/dnnl/dnnl.h>
#endif
