// Store maintenance: garbage collection of unreferenced chunks (mark and sweep) with a TTL and a
// size cap, statistics, and a full verification of hashes, chains and event logs.
#include <mnemo/memory/store.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "store_impl.h"

namespace mnemo::memory {
namespace {

// A snapshot or prefix record as GC sees it.
struct Root {
  rocksdb::ColumnFamilyHandle* cf;
  std::string key;
  int64_t created = 0;
  int64_t bytes = 0;
  std::vector<std::string> chunks;
  bool dropped = false;
};

// "session ID snapshot N" for a session's snapshot, "shared prefix HEX" for a prefix tail.
std::string root_name(const Store::Impl& s, const Root& root) {
  if (root.cf == s.snapshots && root.key.size() > 9) {
    return "session " + root.key.substr(1, root.key.size() - 10) + " snapshot " +
           std::to_string(number_of(root.key));
  }
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (size_t i = 1; i < std::min<size_t>(root.key.size(), 7); ++i) {
    hex += kDigits[static_cast<uint8_t>(root.key[i]) >> 4];
    hex += kDigits[static_cast<uint8_t>(root.key[i]) & 15];
  }
  return "shared prefix " + hex;
}

Status collect_roots(const Store::Impl& s, rocksdb::ColumnFamilyHandle* cf,
                     std::vector<Root>& roots, std::vector<std::string>* problems) {
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view value(it->value().data(), it->value().size());
    auto r = decode_snapshot(value);
    if (!r) {
      // Unreadable records are left for `verify` to report; GC never guesses what they referenced.
      if (problems) {
        Root unreadable{.cf = cf, .key = it->key().ToString(), .created = 0, .bytes = 0,
                        .chunks = {}, .dropped = false};
        problems->push_back(root_name(s, unreadable) + ": " + r.status().message());
      }
      continue;
    }
    roots.push_back({cf, it->key().ToString(), r->created_unix_ms,
                     static_cast<int64_t>(value.size()), std::move(r->chunk_keys), false});
  }
  return from_rocksdb(it->status(), "reading store " + s.dir);
}

int64_t cf_int(const Store::Impl& s, rocksdb::ColumnFamilyHandle* cf, const char* property) {
  uint64_t v = 0;
  s.db->GetIntProperty(cf, property, &v);
  return static_cast<int64_t>(v);
}

}  // namespace

Result<GcReport> Store::gc(GcOptions options) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  std::lock_guard lock(impl_->write_mu);
  const int64_t now = options.now_unix_ms != 0 ? options.now_unix_ms : unix_ms_now();
  std::vector<Root> roots;
  MNEMO_RETURN_IF_ERROR(collect_roots(*impl_, impl_->snapshots, roots, nullptr));
  const size_t n_snapshot_roots = roots.size();
  MNEMO_RETURN_IF_ERROR(collect_roots(*impl_, impl_->prefixes, roots, nullptr));

  std::unordered_map<std::string, int64_t> chunk_bytes;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->chunks));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      chunk_bytes[it->key().ToString()] = static_cast<int64_t>(it->value().size());
    MNEMO_RETURN_IF_ERROR(from_rocksdb(it->status(), "reading store " + impl_->dir));
  }
  std::unordered_map<std::string, int64_t> refs;
  GcReport report;
  auto add = [&](Root& r, int sign) {
    report.bytes_live += sign * r.bytes;
    for (const std::string& k : r.chunks) {
      std::string key = hash_key(k);
      int64_t& n = refs[key];
      if ((sign > 0 && n++ == 0) || (sign < 0 && --n == 0)) {
        auto it = chunk_bytes.find(key);
        if (it != chunk_bytes.end()) report.bytes_live += sign * it->second;
      }
    }
  };
  for (Root& r : roots) {
    r.dropped = options.snapshot_ttl_ms > 0 && r.created < now - options.snapshot_ttl_ms;
    if (!r.dropped) add(r, +1);
  }
  if (options.max_bytes > 0 && report.bytes_live > options.max_bytes) {
    std::vector<Root*> by_age;
    for (Root& r : roots) {
      if (!r.dropped) by_age.push_back(&r);
    }
    std::stable_sort(by_age.begin(), by_age.end(),
                     [](const Root* a, const Root* b) { return a->created < b->created; });
    for (Root* r : by_age) {
      if (report.bytes_live <= options.max_bytes) break;
      r->dropped = true;
      add(*r, -1);
    }
  }
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < roots.size(); ++i) {
    if (!roots[i].dropped) continue;
    batch.Delete(roots[i].cf, roots[i].key);
    ++(i < n_snapshot_roots ? report.snapshots_dropped : report.prefixes_dropped);
  }
  for (const auto& [key, bytes] : chunk_bytes) {
    auto it = refs.find(key);
    if (it != refs.end() && it->second > 0) continue;
    batch.Delete(impl_->chunks, key);
    ++report.chunks_deleted;
    report.bytes_freed += bytes;
  }
  if (batch.Count() > 0) MNEMO_RETURN_IF_ERROR(impl_->write(batch));
  return report;
}

Result<StoreStats> Store::stats() const {
  StoreStats st;
  st.schema = kSchemaVersion;
  st.chunk_tokens = impl_->chunk_tokens;
  auto scan = [&](rocksdb::ColumnFamilyHandle* cf, int64_t& count, int64_t* bytes,
                  const std::function<void(std::string_view)>& each) -> Status {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++count;
      if (bytes) *bytes += static_cast<int64_t>(it->value().size());
      if (each) each(std::string_view(it->value().data(), it->value().size()));
    }
    return from_rocksdb(it->status(), "reading store " + impl_->dir);
  };
  MNEMO_RETURN_IF_ERROR(scan(impl_->sessions, st.sessions, nullptr, nullptr));
  MNEMO_RETURN_IF_ERROR(scan(impl_->events, st.events, nullptr, nullptr));
  MNEMO_RETURN_IF_ERROR(scan(impl_->snapshots, st.snapshots, &st.snapshot_value_bytes, nullptr));
  MNEMO_RETURN_IF_ERROR(scan(impl_->prefixes, st.prefixes, &st.prefix_value_bytes, nullptr));
  // A chunk value's mode byte follows its magic and version.
  MNEMO_RETURN_IF_ERROR(
      scan(impl_->chunks, st.chunks, &st.chunk_value_bytes, [&](std::string_view v) {
        if (v.size() > 8 && v[8] == static_cast<char>(AtRest::kCompact)) {
          ++st.compact_chunks;
        } else {
          ++st.exact_chunks;
        }
      }));
  for (auto* cf : impl_->handles)
    st.sst_bytes += cf_int(*impl_, cf, "rocksdb.total-sst-files-size");
  return st;
}

Status Store::flush() {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return from_rocksdb(impl_->db->Flush(fo, impl_->handles), "flushing store " + impl_->dir);
}

Result<VerifyReport> Store::verify() const {
  VerifyReport rep;
  std::vector<Root> roots;
  MNEMO_RETURN_IF_ERROR(collect_roots(*impl_, impl_->snapshots, roots, &rep.problems));
  rep.snapshots = static_cast<int64_t>(roots.size());
  MNEMO_RETURN_IF_ERROR(collect_roots(*impl_, impl_->prefixes, roots, &rep.problems));
  rep.prefixes = static_cast<int64_t>(roots.size()) - rep.snapshots;

  // Every chunk's hash; then every root's chain: present, and each key the hash of its parent and
  // tokens.
  std::unordered_map<std::string, ChunkRecord> chunks;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->chunks));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++rep.chunks;
      auto c = decode_chunk(std::string_view(it->value().data(), it->value().size()));
      if (!c) {
        rep.problems.push_back("chunk " + std::to_string(rep.chunks) + ": " + c.status().message());
        continue;
      }
      c->payload.clear();  // only tokens and ranges are needed below
      chunks.emplace(it->key().ToString(), std::move(c).value());
    }
    MNEMO_RETURN_IF_ERROR(from_rocksdb(it->status(), "reading store " + impl_->dir));
  }
  std::unordered_set<std::string> chain_ok;
  for (const Root& root : roots) {
    auto value = impl_->get(root.cf, root.key);
    if (!value || !*value) continue;
    auto r = decode_snapshot(**value);
    if (!r) continue;
    auto salt = impl_->salt(r->tenant, nullptr);
    if (!salt) {
      rep.problems.push_back(root_name(*impl_, root) + " (tenant " + r->tenant +
                             "): " + salt.status().message());
      continue;
    }
    std::string parent;
    for (size_t i = 0; i < r->chunk_keys.size(); ++i) {
      std::string key = hash_key(r->chunk_keys[i]);
      auto it = chunks.find(key);
      std::string where = root_name(*impl_, root) + ", chunk " + std::to_string(i);
      if (it == chunks.end()) {
        rep.problems.push_back(where + ": missing or unreadable");
      } else if (!chain_ok.contains(key + parent) &&
                 chain_key(r->fingerprint, *salt, r->descriptor, parent, it->second.tokens) !=
                     r->chunk_keys[i]) {
        rep.problems.push_back(where + ": key does not match its parent and tokens");
      } else {
        chain_ok.insert(key + parent);
      }
      parent = r->chunk_keys[i];
    }
  }
  // Event logs: every event readable and seqs 1..last_seq without a gap.
  auto sessions = list_sessions();
  if (!sessions) return sessions.status();
  for (const std::string& id : *sessions) {
    auto record = impl_->load_session(id);
    if (!record) {
      rep.problems.push_back("session " + id + ": " + record.status().message());
      continue;
    }
    uint64_t expect = 1;
    MNEMO_RETURN_IF_ERROR(
        impl_->scan_session(impl_->events, id, 1, [&](uint64_t seq, std::string_view v) {
          ++rep.events;
          if (seq != expect)
            rep.problems.push_back("session " + id + ": event " + std::to_string(expect) +
                                   " is missing");
          if (!decode_event(v))
            rep.problems.push_back("session " + id + ": event " + std::to_string(seq) +
                                   " is malformed");
          expect = seq + 1;
          return true;
        }));
    if (expect != record->last_seq + 1) {
      rep.problems.push_back("session " + id + ": log ends at " + std::to_string(expect - 1) +
                             ", the session at " + std::to_string(record->last_seq));
    }
  }
  return rep;
}

}  // namespace mnemo::memory
