#ifndef LATENT_SUPPORT_H
#define LATENT_SUPPORT_H

#include "latent_build_info.h"
#include "latent_cpu.h"
#include "latent_fuzz_driver.h"

/* Hints Swift has no spelling for. Graph search jumps to a random node per neighbor; asking for the
   next neighbor's memory while the current distance is computed hides much of that latency
   (hnswlib does the same). */
static inline void latent_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* glibc's malloc_trim (not exported by Swift's Glibc module): returns freed heap memory to the OS.
   Elsewhere a no-op. */
#if defined(__GLIBC__)
#include <malloc.h>
static inline int latent_malloc_trim(void) { return malloc_trim(0); }
#else
static inline int latent_malloc_trim(void) { return 0; }
#endif

#endif
