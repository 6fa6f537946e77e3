#include <png.h>

// libpng's simplified-API format constants are macros Swift cannot import.
static inline png_uint_32 graft_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline png_uint_32 graft_png_format_rgba(void) { return PNG_FORMAT_RGBA; }
