#include <cblas.h>
#include <malloc.h>

/* glibc's allocator tuning for the runtime's activations (M_* are macros Swift cannot import):
   buffers up to 32 MiB come from the heap, and freed memory is kept for reuse, not returned. */
static inline void graft_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
