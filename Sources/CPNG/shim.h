#ifndef SSL_CPNG_SHIM_H
#define SSL_CPNG_SHIM_H
#include <png.h>

// The simplified API's version and format constants are macros built from other macros, which
// Swift does not import; these accessors return them.
static inline unsigned ssl_png_image_version(void) { return PNG_IMAGE_VERSION; }
static inline unsigned ssl_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline unsigned ssl_png_format_rgba(void) { return PNG_FORMAT_RGBA; }
#endif
