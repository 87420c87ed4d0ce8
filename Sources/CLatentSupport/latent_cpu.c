#include "latent_cpu.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <stdint.h>

/* XGETBV(0): which register states the OS saves on a context switch. Only valid when CPUID.1:ECX.OSXSAVE
   is set, which the caller checks first (the instruction faults otherwise). */
static uint64_t latent_xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

int latent_cpu_kernel_level(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int fma = (ecx >> 12) & 1, movbe = (ecx >> 22) & 1, osxsave = (ecx >> 27) & 1;
    const int avx = (ecx >> 28) & 1, f16c = (ecx >> 29) & 1;
    if (!(fma && movbe && osxsave && avx && f16c)) return 0;
    const uint64_t xcr0 = latent_xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const int bmi1 = (ebx >> 3) & 1, avx2 = (ebx >> 5) & 1, bmi2 = (ebx >> 8) & 1;
    const int avx512f = (ebx >> 16) & 1, avx512dq = (ebx >> 17) & 1, avx512cd = (ebx >> 28) & 1;
    const int avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    unsigned int e1a, e1b, e1c, e1d;
    if (!__get_cpuid(0x80000001, &e1a, &e1b, &e1c, &e1d)) return 0;
    const int lzcnt = (e1c >> 5) & 1;
    if (!(bmi1 && avx2 && bmi2 && lzcnt)) return 0;
    /* Opmask, upper halves of ZMM0-15 and ZMM16-31 (bits 5-7). */
    const int zmmState = (xcr0 & 0xE0) == 0xE0;
    if (avx512f && avx512dq && avx512cd && avx512bw && avx512vl && zmmState) return 2;
    return 1;
}
#else
int latent_cpu_kernel_level(void) { return 0; }
#endif
