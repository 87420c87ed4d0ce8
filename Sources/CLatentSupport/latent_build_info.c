/* Build facts for --version and INFO. `make` writes build_info_generated.h (git commit, build date,
   RocksDB version from pkg-config) before building; a plain `swift build` without it reports "unknown". */
#include "latent_build_info.h"

#if __has_include("build_info_generated.h")
#include "build_info_generated.h"
#endif

#ifndef LATENT_GIT_COMMIT
#define LATENT_GIT_COMMIT "unknown"
#endif
#ifndef LATENT_BUILD_DATE
#define LATENT_BUILD_DATE "unknown"
#endif
#ifndef LATENT_ROCKSDB_VERSION
#define LATENT_ROCKSDB_VERSION "unknown"
#endif

const char *latent_build_commit(void) { return LATENT_GIT_COMMIT; }
const char *latent_build_date(void) { return LATENT_BUILD_DATE; }
const char *latent_build_rocksdb_version(void) { return LATENT_ROCKSDB_VERSION; }
