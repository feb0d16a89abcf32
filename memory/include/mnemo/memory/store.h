#pragma once
// The persistent store of mnemo (DESIGN.md "KV snapshots", "Where things live"): one RocksDB
// database per directory with column families for sessions, events, kv_chunks, snapshots, prefixes
// and meta. One process writes a store at a time; readers beside it open a read-only secondary
// instance.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>
#include <mnemo/memory/events.h>
#include <mnemo/memory/snapshot.h>

namespace rocksdb {
class Env;
}

namespace mnemo::memory {

// The schema this build writes and reads; a store written by a newer one is refused.
inline constexpr uint32_t kSchemaVersion = 1;

struct StoreOptions {
  // A secondary instance: reads only, works while another process holds the store.
  bool read_only = false;
  // Token span of a chunk (a multiple of 128); recorded when the store is created, that value wins
  // after.
  int64_t chunk_tokens = 1024;
  // Shared prefixes keep a tail at every multiple of this many tokens (a multiple of chunk_tokens;
  // 0: never).
  int64_t prefix_tail_every = 4096;
  // Snapshots kept per session; older ones are deleted in the commit that supersedes them.
  int keep_snapshots = 2;
  CompactParams compact;
  // The RocksDB environment (file system) to use; null: the default. Tests inject faults through
  // it, as RocksDB's own fault-injection file system does.
  std::shared_ptr<rocksdb::Env> env;
};

struct SessionInfo {
  std::string id;
  std::string tenant;
  int64_t created_unix_ms = 0;
  uint64_t last_seq = 0;       // seq of its newest event
  uint64_t last_snapshot = 0;  // 0: none yet
};

// What a step's snapshot is taken from: the live sequence and every token id it has seen.
struct SnapshotSource {
  const inference::Model* model = nullptr;
  const inference::Sequence* sequence = nullptr;
  std::span<const inference::TokenId> tokens;
  AtRest at_rest = AtRest::kExact;
  // Instead of `sequence`: its state exported beforehand with model->export_state(seq, from,
  // chunk_tokens()), so that the sequence may move on while the commit is written on another
  // thread. When the store lacks a chunk before `from`, the snapshot is skipped (StepCommit says
  // why) and the events are committed all the same.
  const inference::KvExport* exported = nullptr;
};

struct StepCommit {
  std::vector<uint64_t>
      seqs;  // of the events written, in log order; with a snapshot, step.committed comes after the
             // step's events and before any that end the run (limit, error, run.finished)
  uint64_t snapshot = 0;   // 0 when the step had none
  uint64_t committed_seq = 0;  // the seq of step.committed (0: none)
  int64_t new_chunks = 0;  // chunks this commit wrote (incremental: the rest were already stored)
  int64_t bytes_written = 0;  // values in the batch
  std::string snapshot_skipped;  // why a snapshot given as `exported` was not taken, if it was not
};

struct RestoreOptions {
  uint64_t snapshot = 0;       // 0: the session's newest
  bool allow_compact = false;  // exact resume never uses lossy chunks unless asked
};

// A sequence that starts from a stored shared prefix (or from nothing: reused_tokens == 0).
struct PrefixResume {
  inference::Sequence sequence;
  int64_t reused_tokens = 0;
  std::string fallback_reason;  // why a stored prefix that matched could not be used, if one did
};

struct GcOptions {
  int64_t now_unix_ms = 0;      // 0: the clock
  int64_t snapshot_ttl_ms = 0;  // snapshots and prefixes older than this are dropped (0: no TTL)
  int64_t max_bytes = 0;        // then the oldest go until the live data fits (0: no cap)
};

struct GcReport {
  int64_t snapshots_dropped = 0;
  int64_t prefixes_dropped = 0;
  int64_t chunks_deleted = 0;
  int64_t bytes_freed = 0;
  int64_t bytes_live = 0;  // values of the snapshots, prefixes and chunks that remain
};

struct StoreStats {
  int64_t sessions = 0, events = 0, snapshots = 0, prefixes = 0;
  int64_t chunks = 0, exact_chunks = 0, compact_chunks = 0;
  int64_t chunk_value_bytes = 0, snapshot_value_bytes = 0, prefix_value_bytes = 0;
  int64_t sst_bytes = 0;  // on disk, after RocksDB's compression
  int64_t chunk_tokens = 0;
  uint32_t schema = 0;
};

struct VerifyReport {
  int64_t snapshots = 0, prefixes = 0, chunks = 0, events = 0;
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

class Store {
 public:
  // Opens (creating when writable) the store in `dir`. A second writer gets an error naming the
  // holder.
  static Result<std::unique_ptr<Store>> open(const std::string& dir, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const;
  bool read_only() const;
  int64_t chunk_tokens() const;
  // A read-only instance sees the writer's commits made since it opened.
  Status catch_up();

  // Creates a session (its session.created event included), one synced batch.
  Status create_session(std::string_view id, std::string_view tenant,
                        std::string_view payload = "{}");
  Result<SessionInfo> session(std::string_view id) const;
  // Removes a session: its record, events and snapshot records, in one synced batch. The chunks
  // only it referenced stay until gc() sweeps them.
  Status delete_session(std::string_view id);
  Result<std::vector<std::string>> list_sessions() const;
  // Appends events in one synced batch; returns their seqs.
  Result<std::vector<uint64_t>> append_events(std::string_view session,
                                              std::span<const NewEvent> events);
  // Events with seq > after_seq, at most `limit` (0: all).
  Result<std::vector<Event>> read_events(std::string_view session, uint64_t after_seq = 0,
                                         size_t limit = 0) const;

  // A step's commit: its events, and when `snapshot` is given the new chunks, the snapshot and a
  // step.committed event referencing it, all in ONE synced WriteBatch.
  Result<StepCommit> commit_step(std::string_view session, std::span<const NewEvent> events,
                                 const SnapshotSource* snapshot);
  Result<SnapshotInfo> snapshot_info(std::string_view session, uint64_t number = 0) const;
  // Rebuilds the sequence of a session's snapshot. Every chunk's hash and chain position are
  // checked; any mismatch, a missing chunk or another model's fingerprint is an error (the caller
  // prefills instead).
  Result<Restored> restore(const inference::Model& model, std::string_view session,
                           RestoreOptions options = {}) const;

  // Shared prefixes: stores the tail of `sequence` (at a multiple of prefix_tail_every) and its
  // chunks.
  Status save_prefix(const inference::Model& model, std::string_view tenant,
                     const inference::Sequence& sequence,
                     std::span<const inference::TokenId> tokens, AtRest at_rest = AtRest::kExact);
  // The longest stored prefix of tokens[0, n - 1) for this tenant and model, imported.
  Result<PrefixResume> resume_prefix(const inference::Model& model, std::string_view tenant,
                                     std::span<const inference::TokenId> tokens,
                                     AtRest at_rest = AtRest::kExact) const;
  // Prefill through the store: resumes the longest stored prefix, prefills the rest (stopping at
  // every prefix boundary to save its tail) and writes the last token's logits [vocab].
  Result<PrefixResume> prefill_with_reuse(const inference::Model& model, std::string_view tenant,
                                          std::span<const inference::TokenId> tokens,
                                          std::span<float> last_logits,
                                          AtRest at_rest = AtRest::kExact);

  Result<GcReport> gc(GcOptions options = {});
  Result<StoreStats> stats() const;
  // Writes memtables out to compressed table files, so that stats().sst_bytes is the size at rest.
  Status flush();
  // Checks every record: hashes, chain keys, referenced chunks present, event logs contiguous.
  Result<VerifyReport> verify() const;

  struct Impl;
  // For memory/'s own records kept beside the store's (API keys: keys.h); opaque elsewhere.
  const Impl& impl() const { return *impl_; }

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::memory
