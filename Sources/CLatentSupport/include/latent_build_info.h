#ifndef LATENT_BUILD_INFO_H
#define LATENT_BUILD_INFO_H

/* Written into the binary at build time (see latent_build_info.c). */
const char *latent_build_commit(void);
const char *latent_build_date(void);
const char *latent_build_rocksdb_version(void);

#endif
