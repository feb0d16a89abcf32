// Opening a store (writer or read-only secondary), its schema and writer identity, sessions and
// events.
#include <mnemo/memory/store.h>
#include <openssl/rand.h>
#include <rocksdb/options.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codec.h"
#include "store_impl.h"

namespace mnemo::memory {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFamilies[] = {"meta",      "sessions",  "events",
                                     "kv_chunks", "snapshots", "prefixes"};
constexpr const char* kHolderFile = "holder";

std::string db_path(const std::string& dir) { return dir + "/db"; }

// The store's write-ahead log files, for messages about a damaged one.
std::string wal_files(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(db_path(dir), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (it->path().extension() == ".log")
      out += (out.empty() ? "" : ", ") + ("db/" + it->path().filename().string());
  }
  return out.empty() ? "none found" : out;
}

// What an open that RocksDB refused as corrupt means for the user, and what to do.
Status corrupt_store(const std::string& dir, const rocksdb::Status& s, bool writer) {
  std::string m = "store " + dir + " is damaged: " + s.ToString();
  if (s.ToString().find(".sst") == std::string::npos)
    m += " (in its write-ahead log: " + wal_files(dir) + ")";
  if (writer) {
    m += ". It is not opened for writing, so that no committed step is dropped; copy the directory "
         "aside and restore it from a backup (`mnemo store verify` lists what can still be read)";
  }
  return Status::corruption(m);
}

// Reads every block of the small column families with checksums on, so that a corrupt table file
// is found when the store opens, not when a job's log is read mid-run. KV chunks are left out:
// each one is verified by its SHA-256 on every read, and a bad one only costs a prefill.
Status check_tables(Store::Impl& s) {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  for (rocksdb::ColumnFamilyHandle* cf : {s.meta, s.sessions, s.events, s.snapshots}) {
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
    }
    if (!it->status().ok()) return corrupt_store(s.dir, it->status(), !s.read_only);
  }
  return Status::ok();
}

rocksdb::ColumnFamilyOptions family_options(std::string_view name) {
  rocksdb::ColumnFamilyOptions o;
  // Chunks, tails and events compress well; meta and sessions are a few small records.
  o.compression = (name == "meta" || name == "sessions") ? rocksdb::kNoCompression : rocksdb::kZSTD;
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> descriptors() {
  std::vector<rocksdb::ColumnFamilyDescriptor> d{{rocksdb::kDefaultColumnFamilyName, {}}};
  for (const char* name : kFamilies) d.emplace_back(name, family_options(name));
  return d;
}

// "pid 1234: mnemo serve --store ..." of the running process, for the holder file.
std::string describe_self() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (char& c : cmd) {
    if (c == '\0') c = ' ';
  }
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  return "pid " + std::to_string(::getpid()) + ": " + (cmd.empty() ? "?" : cmd);
}

Status write_holder(const std::string& dir) {
  std::string tmp = dir + "/" + kHolderFile + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << describe_self() << '\n';
    if (!f) return Status::io_error("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, dir + "/" + kHolderFile, ec);
  if (ec) return Status::io_error("cannot write " + dir + "/" + kHolderFile + ": " + ec.message());
  return Status::ok();
}

std::string read_holder(const std::string& dir) {
  std::ifstream f(dir + "/" + kHolderFile);
  std::string line;
  if (!f || !std::getline(f, line) || line.empty()) return "an unknown process";
  return line;
}

Status check_options(const StoreOptions& o) {
  if (o.chunk_tokens <= 0 || o.chunk_tokens % 128 != 0) {
    return Status::invalid_argument("chunk_tokens " + std::to_string(o.chunk_tokens) +
                                    " is not a positive multiple of 128");
  }
  if (o.prefix_tail_every < 0 ||
      (o.prefix_tail_every != 0 && o.prefix_tail_every % o.chunk_tokens != 0)) {
    return Status::invalid_argument("prefix_tail_every " + std::to_string(o.prefix_tail_every) +
                                    " is not a multiple of chunk_tokens " +
                                    std::to_string(o.chunk_tokens));
  }
  if (o.keep_snapshots < 1) return Status::invalid_argument("keep_snapshots must be at least 1");
  return o.compact.validate();
}

std::string u64_value(uint64_t v) { return Writer().put(v).take(); }

Result<uint64_t> read_u64(Store::Impl& s, std::string_view name, uint64_t fallback) {
  auto v = s.get(s.meta, meta_key(name));
  if (!v) return v.status();
  if (!*v) return fallback;
  uint64_t out = 0;
  Reader r(**v);
  if (!r.get(out) || !r.done())
    return Status::corruption("store meta '" + std::string(name) + "' is malformed");
  return out;
}

// Records the schema in a new store; refuses one written by another schema.
Status check_schema(Store::Impl& s) {
  auto schema = read_u64(s, "schema", 0);
  if (!schema) return schema.status();
  if (*schema == 0) {
    if (s.read_only) return Status::corruption("store " + s.dir + " has no schema version");
    rocksdb::WriteBatch b;
    b.Put(s.meta, meta_key("schema"), u64_value(kSchemaVersion));
    b.Put(s.meta, meta_key("chunk_tokens"),
          u64_value(static_cast<uint64_t>(s.options.chunk_tokens)));
    MNEMO_RETURN_IF_ERROR(s.write(b));
    s.chunk_tokens = s.options.chunk_tokens;
    return Status::ok();
  }
  if (*schema > kSchemaVersion) {
    return Status::unsupported("store " + s.dir + " was written by schema version " +
                               std::to_string(*schema) + "; this mnemo reads version " +
                               std::to_string(kSchemaVersion) + " (upgrade mnemo)");
  }
  if (*schema < kSchemaVersion) {
    return Status::unsupported("store " + s.dir + " has schema version " + std::to_string(*schema) +
                               ", which this mnemo cannot migrate");
  }
  auto span = read_u64(s, "chunk_tokens", 0);
  if (!span) return span.status();
  if (*span == 0 || *span % 128 != 0)
    return Status::corruption("store " + s.dir + ": bad chunk_tokens in meta");
  s.chunk_tokens = static_cast<int64_t>(*span);
  return Status::ok();
}

}  // namespace

Status from_rocksdb(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::not_found(m);
  if (s.IsCorruption()) return Status::corruption(m);
  if (s.IsNotSupported()) return Status::unsupported(m);
  if (s.IsInvalidArgument()) return Status::invalid_argument(m);
  return Status::io_error(m);
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Store::Impl::~Impl() {
  if (db != nullptr) {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  std::error_code ec;
  if (!secondary_dir.empty()) fs::remove_all(secondary_dir, ec);
  if (!read_only && db != nullptr) fs::remove(dir + "/" + kHolderFile, ec);
}

Status Store::Impl::writable() const {
  if (read_only) return Status::invalid_argument("store " + dir + " is open read-only");
  return Status::ok();
}

Status Store::Impl::write(rocksdb::WriteBatch& batch) const {
  MNEMO_RETURN_IF_ERROR(writable());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return from_rocksdb(db->Write(wo, &batch), "writing store " + dir);
}

Result<std::optional<std::string>> Store::Impl::get(rocksdb::ColumnFamilyHandle* cf,
                                                    std::string_view key) const {
  std::string value;
  rocksdb::Status s =
      db->Get(rocksdb::ReadOptions(), cf, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  MNEMO_RETURN_IF_ERROR(from_rocksdb(s, "reading store " + dir));
  return std::optional<std::string>(std::move(value));
}

Result<SessionRecord> Store::Impl::load_session(std::string_view id) const {
  MNEMO_RETURN_IF_ERROR(check_name("session id", id));
  auto v = get(sessions, session_key(id));
  if (!v) return v.status();
  if (!*v) return Status::not_found("no session '" + std::string(id) + "' in store " + dir);
  return decode_session(**v);
}

Result<std::string> Store::Impl::salt(std::string_view tenant, rocksdb::WriteBatch* batch) const {
  MNEMO_RETURN_IF_ERROR(check_name("tenant", tenant));
  std::lock_guard lock(salt_mu);
  if (auto it = salts.find(tenant); it != salts.end()) return it->second;
  auto v = get(meta, meta_key("salt/" + std::string(tenant)));
  if (!v) return v.status();
  if (*v) {
    if ((*v)->size() != 32)
      return Status::corruption("salt of tenant '" + std::string(tenant) + "' is malformed");
    salts.emplace(std::string(tenant), **v);
    return **v;
  }
  if (batch == nullptr)
    return Status::not_found("tenant '" + std::string(tenant) + "' has nothing stored");
  std::string fresh(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), 32) != 1) {
    return Status::internal("cannot draw a tenant salt");
  }
  batch->Put(meta, meta_key("salt/" + std::string(tenant)), fresh);
  salts.emplace(std::string(tenant), fresh);
  return fresh;
}

void Store::Impl::forget_salt(std::string_view tenant) const {
  std::lock_guard lock(salt_mu);
  if (auto it = salts.find(tenant); it != salts.end()) salts.erase(it);
}

Result<std::vector<uint64_t>> Store::Impl::put_events(rocksdb::WriteBatch& batch,
                                                      std::string_view session,
                                                      SessionRecord& record,
                                                      std::span<const NewEvent> added,
                                                      int64_t now) const {
  std::vector<uint64_t> seqs;
  for (const NewEvent& e : added) {
    if (!is_durable_event_type(e.type)) {
      return Status::invalid_argument("'" + e.type + "' is not a durable event type");
    }
    uint64_t seq = ++record.last_seq;
    batch.Put(events, numbered_key(session, seq), encode_event({e.type, e.payload, now}));
    seqs.push_back(seq);
  }
  batch.Put(sessions, session_key(session), encode_session(record));
  return seqs;
}

Status Store::Impl::scan_session(
    rocksdb::ColumnFamilyHandle* cf, std::string_view session, uint64_t from,
    const std::function<bool(uint64_t, std::string_view)>& visit) const {
  std::string prefix = numbered_prefix(session);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(numbered_key(session, from)); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix) || key.size() != prefix.size() + 8) break;
    if (!visit(number_of(key), std::string_view(it->value().data(), it->value().size()))) break;
  }
  return from_rocksdb(it->status(), "reading store " + dir);
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, StoreOptions options) {
  MNEMO_RETURN_IF_ERROR(check_options(options));
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->options = options;
  impl->read_only = options.read_only;
  rocksdb::DBOptions db_options;
  if (options.env) db_options.env = options.env.get();
  // A record cut short at the end of the log (a write never acknowledged, then kill -9) is dropped;
  // damage before the end refuses the open instead of silently dropping every later record (the
  // default point-in-time recovery does that).
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  rocksdb::Status s;
  if (!options.read_only) {
    std::error_code ec;
    fs::create_directories(db_path(dir), ec);
    if (ec) return Status::io_error("cannot create store " + dir + ": " + ec.message());
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    s = rocksdb::DB::Open(db_options, db_path(dir), descriptors(), &impl->handles, &impl->db);
    if (!s.ok() && s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::io_error("store " + dir + " is held by another process (" + read_holder(dir) +
                              "); stop it, or open the store read-only");
    }
  } else {
    if (!fs::exists(db_path(dir) + "/CURRENT")) return Status::not_found("no store at " + dir);
    static std::atomic<int> counter{0};
    // The secondary's own files go outside the store, which may be on a read-only mount.
    impl->secondary_dir = (fs::temp_directory_path() /
                           ("mnemo-secondary-" + std::to_string(::getpid()) + "-" +
                            std::to_string(counter++)))
                              .string();
    std::error_code ec;
    fs::create_directories(impl->secondary_dir, ec);
    if (ec) return Status::io_error("cannot create " + impl->secondary_dir + ": " + ec.message());
    db_options.max_open_files = -1;  // required of a secondary instance
    s = rocksdb::DB::OpenAsSecondary(db_options, db_path(dir), impl->secondary_dir, descriptors(),
                                     &impl->handles, &impl->db);
  }
  if (s.IsCorruption()) return corrupt_store(dir, s, !options.read_only);
  MNEMO_RETURN_IF_ERROR(from_rocksdb(s, "opening store " + dir));
  impl->meta = impl->handles[1];
  impl->sessions = impl->handles[2];
  impl->events = impl->handles[3];
  impl->chunks = impl->handles[4];
  impl->snapshots = impl->handles[5];
  impl->prefixes = impl->handles[6];
  MNEMO_RETURN_IF_ERROR(check_schema(*impl));
  if (!options.read_only) {
    MNEMO_RETURN_IF_ERROR(check_tables(*impl));
    MNEMO_RETURN_IF_ERROR(write_holder(dir));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::string& Store::dir() const { return impl_->dir; }
bool Store::read_only() const { return impl_->read_only; }
int64_t Store::chunk_tokens() const { return impl_->chunk_tokens; }

Status Store::catch_up() {
  if (!impl_->read_only) return Status::ok();
  return from_rocksdb(impl_->db->TryCatchUpWithPrimary(), "catching up with store " + impl_->dir);
}

Status Store::create_session(std::string_view id, std::string_view tenant,
                             std::string_view payload) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  MNEMO_RETURN_IF_ERROR(check_name("session id", id));
  MNEMO_RETURN_IF_ERROR(check_name("tenant", tenant));
  std::lock_guard lock(impl_->write_mu);
  auto existing = impl_->get(impl_->sessions, session_key(id));
  if (!existing) return existing.status();
  if (*existing)
    return Status::invalid_argument("session '" + std::string(id) + "' already exists");
  int64_t now = unix_ms_now();
  SessionRecord record{std::string(tenant), now, 0, 0};
  rocksdb::WriteBatch batch;
  NewEvent created{"session.created", std::string(payload)};
  auto seqs = impl_->put_events(batch, id, record, std::span<const NewEvent>(&created, 1), now);
  if (!seqs) return seqs.status();
  return impl_->write(batch);
}

Status Store::delete_session(std::string_view id) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  MNEMO_RETURN_IF_ERROR(check_name("session id", id));
  std::lock_guard lock(impl_->write_mu);
  auto existing = impl_->get(impl_->sessions, session_key(id));
  if (!existing) return existing.status();
  if (!*existing) return Status::not_found("no session " + std::string(id));
  rocksdb::WriteBatch batch;
  for (rocksdb::ColumnFamilyHandle* cf : {impl_->events, impl_->snapshots}) {
    MNEMO_RETURN_IF_ERROR(impl_->scan_session(cf, id, 0, [&](uint64_t number, std::string_view) {
      batch.Delete(cf, numbered_key(id, number));
      return true;
    }));
  }
  batch.Delete(impl_->sessions, session_key(id));
  return impl_->write(batch);
}

Result<SessionInfo> Store::session(std::string_view id) const {
  auto r = impl_->load_session(id);
  if (!r) return r.status();
  return SessionInfo{std::string(id), r->tenant, r->created_unix_ms, r->last_seq, r->last_snapshot};
}

Result<std::vector<std::string>> Store::list_sessions() const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->sessions));
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.emplace_back(it->key().ToString().substr(1));
  MNEMO_RETURN_IF_ERROR(from_rocksdb(it->status(), "listing sessions"));
  return out;
}

Result<std::vector<uint64_t>> Store::append_events(std::string_view session,
                                                   std::span<const NewEvent> events) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  for (const NewEvent& e : events) {
    if (e.type == "session.created" || e.type == "step.committed") {
      return Status::invalid_argument(
          e.type + " is written by the store itself (create_session, commit_step)");
    }
  }
  std::lock_guard lock(impl_->write_mu);
  auto record = impl_->load_session(session);
  if (!record) return record.status();
  rocksdb::WriteBatch batch;
  auto seqs = impl_->put_events(batch, session, *record, events, unix_ms_now());
  if (!seqs) return seqs.status();
  MNEMO_RETURN_IF_ERROR(impl_->write(batch));
  return seqs;
}

Result<std::vector<Event>> Store::read_events(std::string_view session, uint64_t after_seq,
                                              size_t limit) const {
  MNEMO_RETURN_IF_ERROR(impl_->load_session(session).status());
  std::vector<Event> out;
  Status bad;
  MNEMO_RETURN_IF_ERROR(impl_->scan_session(
      impl_->events, session, after_seq + 1, [&](uint64_t seq, std::string_view v) {
        auto e = decode_event(v);
        if (!e) {
          bad = e.status().with_context("session " + std::string(session) + " event " +
                                        std::to_string(seq));
          return false;
        }
        out.push_back({seq, std::move(e->type), std::move(e->payload), e->unix_ms});
        return limit == 0 || out.size() < limit;
      }));
  MNEMO_RETURN_IF_ERROR(bad);
  return out;
}

}  // namespace mnemo::memory
