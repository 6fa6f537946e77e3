#include <cblas.h>
#include <malloc.h>

/* glibc's allocator tuning for the runtime's activations (M_* are macros Swift cannot import):
   buffers up to 32 MiB come from the heap, and freed memory is kept for reuse, not returned. */
static inline void graft_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

/* A hint to fetch the cache line at p into L2 (the weights of the next k-block while the
   current one is multiplied). */
static inline void graft_prefetch(const void *p) { __builtin_prefetch(p, 0, 2); }
