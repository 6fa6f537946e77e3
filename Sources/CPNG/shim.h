#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

// libpng's simplified-API format constants are macros Swift cannot import.
static inline png_uint_32 graft_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline png_uint_32 graft_png_format_rgba(void) { return PNG_FORMAT_RGBA; }

// Decoding with libpng's full API, which reports errors by longjmp: the jump must stay inside C,
// so the whole read happens in graft_png_decode below and Swift only sees its result.

/// One PNG decoding: the encoded bytes in, the 8-bit pixels (or why there are none) out.
typedef struct {
    const unsigned char *data;  // the whole file
    size_t size;
    size_t offset;              // how much of it libpng has read
    png_uint_32 width;          // once the header has been read
    png_uint_32 height;
    int channels;               // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
    unsigned char *pixels;      // height rows of width * channels bytes; the caller frees it
    char message[256];          // libpng's reason, when decoding fails
} graft_png_decoding;

static inline void graft_png_on_error(png_structp png, png_const_charp message) {
    graft_png_decoding *d = (graft_png_decoding *)png_get_error_ptr(png);
    strncpy(d->message, message, sizeof d->message - 1);
    d->message[sizeof d->message - 1] = 0;
    png_longjmp(png, 1);
}

static inline void graft_png_on_warning(png_structp png, png_const_charp message) {
    // Like PIL, decode through warnings (a bad ancillary chunk, an odd ICC profile).
    (void)png;
    (void)message;
}

static inline void graft_png_read(png_structp png, png_bytep out, size_t length) {
    graft_png_decoding *d = (graft_png_decoding *)png_get_io_ptr(png);
    if (length > d->size - d->offset) png_error(png, "the file is truncated");
    memcpy(out, d->data + d->offset, length);
    d->offset += length;
}

/// Decodes d->data to 8 bits per sample the way PIL opens a PNG: 16-bit samples keep their high
/// byte, palettes and 1/2/4-bit gray are expanded, no gamma or background is applied.
/// Returns 1, or 0 with d->message saying why. The caller checks the declared size first.
static inline int graft_png_decode(graft_png_decoding *d) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, graft_png_on_error, graft_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        strcpy(d->message, "out of memory");
        return 0;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(d->pixels);
        d->pixels = NULL;
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    png_set_read_fn(png, d, graft_png_read);
    png_read_info(png, info);
    d->width = png_get_image_width(png, info);
    d->height = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    d->channels = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)d->width * d->channels) png_error(png, "unexpected row layout after expansion");
    d->pixels = (unsigned char *)malloc(stride * d->height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * d->height);
    if (!d->pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < d->height; y++) rows[y] = d->pixels + y * stride;
    png_read_image(png, rows);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 1;
}
