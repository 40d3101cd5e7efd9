#ifndef SSL_CTURBOJPEG_SHIM_H
#define SSL_CTURBOJPEG_SHIM_H
#include <stddef.h>
#include <turbojpeg.h>
#endif
