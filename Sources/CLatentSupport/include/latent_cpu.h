#ifndef LATENT_CPU_H
#define LATENT_CPU_H

/* The best distance-kernel level this CPU and its operating system can run (cpuid and xgetbv, read once
   per call; the caller caches):
   0 = portable (no instruction-set assumption beyond the architecture's baseline),
   1 = x86-64-v3 (AVX, AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE, and the OS saves YMM state),
   2 = x86-64-v4 (level 1 plus AVX-512 F/BW/CD/DQ/VL, and the OS saves ZMM and opmask state).
   Always 0 on other architectures. */
int latent_cpu_kernel_level(void);

#endif
