#ifndef LATENT_FUZZ_DRIVER_H
#define LATENT_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt, present only in -sanitize=fuzzer builds): LatentFuzz's entry point
   calls it, since SwiftPM names an executable's entry point itself and libFuzzer's own main is unused. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
