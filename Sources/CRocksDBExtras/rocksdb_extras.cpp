// C wrappers for DB methods the RocksDB 7.8 C API does not expose (see include/rocksdb_extras.h).
#include "rocksdb_extras.h"

#include <cstdlib>
#include <cstring>
#include <rocksdb/db.h>

// The C API's handle, as rocksdb/c.cc defines it (one pointer to the DB): the one layout this file
// relies on. It has been the same since the C API was written; a RocksDB that changed it would fail
// latentd's storage tests (resume after a full disk), not silently misbehave in production.
struct rocksdb_t {
    rocksdb::DB *rep;
};

static char *copy_message(const rocksdb::Status &s) {
    const std::string text = s.ToString();
    char *out = static_cast<char *>(std::malloc(text.size() + 1));
    if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
}

extern "C" char *latent_rocksdb_resume(rocksdb_t *db) {
    const rocksdb::Status s = db->rep->Resume();
    return s.ok() ? nullptr : copy_message(s);
}

extern "C" char *latent_rocksdb_background_error(rocksdb_t *db) {
    // GetProperty is not enough here: the error itself is only reachable through a failing write, so
    // probe with an empty write batch that touches no log. WriteImpl checks the background error first.
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    rocksdb::WriteBatch batch;
    const rocksdb::Status s = db->rep->Write(options, &batch);
    return s.ok() ? nullptr : copy_message(s);
}
