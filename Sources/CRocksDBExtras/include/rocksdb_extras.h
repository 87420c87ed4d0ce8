#ifndef LATENTDB_ROCKSDB_EXTRAS_H
#define LATENTDB_ROCKSDB_EXTRAS_H
/* What LatentDB needs from RocksDB that its C API (7.8) lacks, as C functions over the C API's handles.
   Errors come back as malloc'ed messages (free with rocksdb_free), as in the C API. */
#include <rocksdb/c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* DB::Resume(): clears a background error (a full disk, a failed WAL append) once the cause is gone
   and reopens the WAL, so writes work again without a restart. Returns NULL on success. */
char *latent_rocksdb_resume(rocksdb_t *db);

/* The database's current background error, NULL when writes are allowed. */
char *latent_rocksdb_background_error(rocksdb_t *db);

#ifdef __cplusplus
}
#endif
#endif
