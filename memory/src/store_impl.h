#pragma once
// Private state of a Store: the RocksDB instance, its column families, and helpers shared by the
// store's source files (events, snapshots, gc).
#include <mnemo/memory/store.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "records.h"

namespace mnemo::memory {

Status from_rocksdb(const rocksdb::Status& s, std::string_view what);
int64_t unix_ms_now();

struct Store::Impl {
  std::string dir;
  StoreOptions options;
  bool read_only = false;
  std::string secondary_dir;  // a read-only instance's private directory, removed on close
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* sessions = nullptr;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* chunks = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* prefixes = nullptr;
  int64_t chunk_tokens = 0;
  // One writer at a time inside the process: commits, prefix saves and gc read-modify-write.
  mutable std::mutex write_mu;
  mutable std::mutex salt_mu;
  mutable std::map<std::string, std::string, std::less<>> salts;

  ~Impl();
  Status writable() const;
  // A synced write: the WAL is on disk when it returns.
  Status write(rocksdb::WriteBatch& batch) const;
  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf,
                                         std::string_view key) const;
  Result<SessionRecord> load_session(std::string_view id) const;
  // The tenant's salt; with `batch`, one is created (and added to the batch) when the tenant has
  // none. A caller whose batch then fails to write calls forget_salt.
  Result<std::string> salt(std::string_view tenant, rocksdb::WriteBatch* batch) const;
  void forget_salt(std::string_view tenant) const;
  // Adds events after the session's last seq to the batch and advances the record.
  Result<std::vector<uint64_t>> put_events(rocksdb::WriteBatch& batch, std::string_view session,
                                           SessionRecord& record, std::span<const NewEvent> events,
                                           int64_t now) const;
  // The records of one session in a numbered column family, in order, from number `from`.
  Status scan_session(
      rocksdb::ColumnFamilyHandle* cf, std::string_view session, uint64_t from,
      const std::function<bool(uint64_t number, std::string_view value)>& visit) const;
};

}  // namespace mnemo::memory
