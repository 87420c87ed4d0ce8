#ifndef LATENTDB_CROCKSDB_SHIM_H
#define LATENTDB_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
