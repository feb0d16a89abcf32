// KV snapshots in the store: chunking a sequence's state into content-addressed chunks, incremental
// step commits, restore with every chunk verified, and shared-prefix tails for cross-session reuse.
#include <mnemo/inference/kv_state.h>
#include <mnemo/memory/store.h>
#include <optional>

#include <algorithm>
#include <unordered_set>

#include "compact_codec.h"
#include "store_impl.h"

namespace mnemo::memory {
namespace {

using inference::TokenId;

std::string short_hex(std::string_view raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(raw.size(), 6); ++i) {
    out += kDigits[static_cast<uint8_t>(raw[i]) >> 4];
    out += kDigits[static_cast<uint8_t>(raw[i]) & 15];
  }
  return out;
}

std::string descriptor_of(AtRest mode, const CompactParams& p) {
  return mode == AtRest::kExact ? "exact" : p.descriptor();
}

// Chain keys of the first n_chunks chunks of `tokens`.
std::vector<std::string> chain_keys(std::string_view fingerprint, std::string_view salt,
                                    std::string_view descriptor, std::span<const TokenId> tokens,
                                    int64_t span, int64_t n_chunks) {
  std::vector<std::string> keys;
  std::string parent;
  for (int64_t i = 0; i < n_chunks; ++i) {
    parent = chain_key(fingerprint, salt, descriptor, parent,
                       tokens.subspan(static_cast<size_t>(i * span), span));
    keys.push_back(parent);
  }
  return keys;
}

Result<bool> chunk_stored(const Store::Impl& s, const std::string& key) {
  std::string ignored;
  if (!s.db->KeyMayExist(rocksdb::ReadOptions(), s.chunks, hash_key(key), &ignored)) return false;
  auto v = s.get(s.chunks, hash_key(key));
  if (!v) return v.status();
  return v->has_value();
}

struct Built {
  SnapshotRecord record;
  int64_t new_chunks = 0;
  int64_t bytes = 0;
};

// The snapshot record of `seq` and, into `batch`, the chunks the store does not hold yet. Chunks of
// `known` (the previous snapshot's chain) are not looked up again.
Result<Built> build_snapshot(const Store::Impl& s, rocksdb::WriteBatch& batch,
                             const inference::Model& model, const inference::Sequence* seq,
                             const inference::KvExport* pre, std::span<const TokenId> tokens,
                             std::string_view tenant, AtRest mode,
                             const std::vector<std::string>& known) {
  const int64_t pos = pre ? pre->position : seq->position();
  if (static_cast<int64_t>(tokens.size()) != pos) {
    return Status::invalid_argument("snapshot: " + std::to_string(tokens.size()) +
                                    " token ids for a sequence at position " + std::to_string(pos));
  }
  auto salt = s.salt(tenant, &batch);
  if (!salt) return salt.status();
  const int64_t span = s.chunk_tokens;
  const int64_t n_full = pos / span;
  Built out;
  SnapshotRecord& r = out.record;
  r.fingerprint = model.fingerprint();
  r.tenant = tenant;
  r.at_rest = mode;
  r.descriptor = descriptor_of(mode, s.options.compact);
  r.chunk_tokens = span;
  r.position = pos;
  r.chunk_keys = chain_keys(r.fingerprint, *salt, r.descriptor, tokens, span, n_full);
  std::vector<bool> missing(static_cast<size_t>(n_full), false);
  int64_t first_missing = n_full;
  for (int64_t i = 0; i < n_full; ++i) {
    if (static_cast<size_t>(i) < known.size() && known[i] == r.chunk_keys[i]) continue;
    auto stored = chunk_stored(s, r.chunk_keys[i]);
    if (!stored) return stored.status();
    missing[i] = !*stored;
    if (missing[i]) first_missing = std::min(first_missing, i);
  }
  Result<inference::KvExport> exported = Status::internal("unset");
  if (pre) {
    if (pre->fingerprint != model.fingerprint() || pre->from > first_missing * span ||
        pre->from % span != 0) {
      return Status::not_found("the exported state starts at token " + std::to_string(pre->from) +
                               ", after the first chunk the store lacks (token " +
                               std::to_string(first_missing * span) + ")");
    }
    // Only the part from the first missing chunk on, as a fresh export would give.
    inference::KvExport part = *pre;
    const auto skip = static_cast<size_t>((first_missing * span - pre->from) / span);
    part.segments.erase(
        part.segments.begin(),
        part.segments.begin() + static_cast<std::ptrdiff_t>(std::min(skip, part.segments.size())));
    exported = std::move(part);
  } else {
    exported = model.export_state(*seq, first_missing * span, span);
  }
  if (!exported) return exported.status();
  for (int64_t i = first_missing; i < n_full; ++i) {
    if (!missing[i]) continue;
    ChunkRecord c;
    c.at_rest = mode;
    c.from = i * span;
    c.to = c.from + span;
    c.tokens.assign(tokens.begin() + c.from, tokens.begin() + c.to);
    std::string& segment = exported->segments[static_cast<size_t>(i - first_missing)];
    if (mode == AtRest::kExact) {
      c.payload = std::move(segment);
    } else {
      auto compact = compact_encode(model, segment, s.options.compact);
      if (!compact) return compact.status();
      c.payload = std::move(compact).value();
    }
    std::string value = encode_chunk(c);
    out.bytes += static_cast<int64_t>(value.size());
    batch.Put(s.chunks, hash_key(r.chunk_keys[i]), value);
    ++out.new_chunks;
  }
  r.tail_tokens.assign(tokens.begin() + n_full * span, tokens.end());
  if (pos > n_full * span) r.partial = std::move(exported->segments.back());
  r.tail = std::move(exported->tail);
  return out;
}

// The segments of a record's chunk chain, each chunk's hash, range, mode and chain position
// checked, and the token ids they cover.
Status load_chain(const Store::Impl& s, const inference::Model& model, const SnapshotRecord& r,
                  std::vector<std::string>& segments, std::vector<TokenId>& tokens) {
  auto salt = s.salt(r.tenant, nullptr);
  if (!salt) return salt.status();
  std::string parent;
  for (size_t i = 0; i < r.chunk_keys.size(); ++i) {
    const std::string& key = r.chunk_keys[i];
    std::string what = "chunk " + std::to_string(i) + " (" + short_hex(key) + ")";
    auto value = s.get(s.chunks, hash_key(key));
    if (!value) return value.status();
    if (!*value) return Status::not_found(what + " is missing from the store");
    auto chunk = decode_chunk(**value);
    if (!chunk) return chunk.status().with_context(what);
    const int64_t from = static_cast<int64_t>(i) * r.chunk_tokens;
    if (chunk->from != from || chunk->to != from + r.chunk_tokens || chunk->at_rest != r.at_rest ||
        chain_key(r.fingerprint, *salt, r.descriptor, parent, chunk->tokens) != key) {
      return Status::corruption(what + " does not belong at this place of the chain");
    }
    parent = key;
    if (chunk->at_rest == AtRest::kExact) {
      segments.push_back(std::move(chunk->payload));
    } else {
      auto segment = compact_decode(model, chunk->payload);
      if (!segment) return segment.status().with_context(what);
      segments.push_back(std::move(segment).value());
    }
    tokens.insert(tokens.end(), chunk->tokens.begin(), chunk->tokens.end());
  }
  return Status::ok();
}

Result<inference::Sequence> import_record(const Store::Impl& s, const inference::Model& model,
                                          const SnapshotRecord& r, std::vector<TokenId>& tokens) {
  if (r.fingerprint != model.fingerprint()) {
    return Status::invalid_argument("KV state of another model (fingerprint " +
                                    r.fingerprint.substr(0, 12) + "..., this model " +
                                    model.fingerprint().substr(0, 12) + "...)");
  }
  std::vector<std::string> segments;
  MNEMO_RETURN_IF_ERROR(load_chain(s, model, r, segments, tokens));
  if (!r.partial.empty()) segments.push_back(r.partial);
  tokens.insert(tokens.end(), r.tail_tokens.begin(), r.tail_tokens.end());
  return model.import_state(segments, r.tail);
}

SnapshotInfo info_of(uint64_t number, const SnapshotRecord& r) {
  return {number,         r.fingerprint, r.tenant,          r.at_rest,
          r.chunk_tokens, r.position,    r.created_unix_ms, r.chunk_keys};
}

Result<SnapshotRecord> load_snapshot(const Store::Impl& s, std::string_view session,
                                     uint64_t number) {
  auto v = s.get(s.snapshots, numbered_key(session, number));
  if (!v) return v.status();
  if (!*v) {
    return Status::not_found("session '" + std::string(session) + "' has no snapshot " +
                             std::to_string(number));
  }
  return decode_snapshot(**v);
}

}  // namespace

Result<StepCommit> Store::commit_step(std::string_view session, std::span<const NewEvent> events,
                                      const SnapshotSource* snapshot) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  for (const NewEvent& e : events) {
    if (e.type == "session.created" || e.type == "step.committed") {
      return Status::invalid_argument(e.type + " is written by the store itself");
    }
  }
  if (snapshot && (!snapshot->model || (!snapshot->sequence && !snapshot->exported))) {
    return Status::invalid_argument("snapshot source without a model or sequence");
  }
  std::lock_guard lock(impl_->write_mu);
  auto record = impl_->load_session(session);
  if (!record) return record.status();
  const int64_t now = unix_ms_now();
  rocksdb::WriteBatch batch;
  StepCommit out;
  std::vector<NewEvent> all(events.begin(), events.end());
  std::optional<Built> built;
  size_t committed_at = SIZE_MAX;
  if (snapshot) {
    std::vector<std::string> known;
    if (record->last_snapshot != 0) {
      if (auto prev = load_snapshot(*impl_, session, record->last_snapshot))
        known = prev->chunk_keys;
    }
    auto b = build_snapshot(*impl_, batch, *snapshot->model, snapshot->sequence, snapshot->exported,
                            snapshot->tokens, record->tenant, snapshot->at_rest, known);
    if (!b && snapshot->exported && b.status().code() == StatusCode::kNotFound) {
      // The state was exported from too late a token: commit the events without it.
      out.snapshot_skipped = b.status().message();
      impl_->forget_salt(record->tenant);
      batch.Clear();
      snapshot = nullptr;
    } else if (!b) {
      impl_->forget_salt(record->tenant);
      return b.status();
    } else {
      built = std::move(b).value();
    }
  }
  if (snapshot) {
    built->record.created_unix_ms = now;
    out.snapshot = record->last_snapshot + 1;
    out.new_chunks = built->new_chunks;
    std::string value = encode_snapshot(built->record);
    out.bytes_written = built->bytes + static_cast<int64_t>(value.size());
    batch.Put(impl_->snapshots, numbered_key(session, out.snapshot), value);
    const uint64_t keep = static_cast<uint64_t>(impl_->options.keep_snapshots);
    if (out.snapshot > keep) {
      MNEMO_RETURN_IF_ERROR(
          impl_->scan_session(impl_->snapshots, session, 1, [&](uint64_t n, std::string_view) {
            if (n + keep > out.snapshot) return false;
            batch.Delete(impl_->snapshots, numbered_key(session, n));
            return true;
          }));
    }
    record->last_snapshot = out.snapshot;
    // After the step's own events, before those that end the run: a reader that stops at
    // run.finished has seen the snapshot.
    committed_at = all.size();
    while (committed_at > 0 &&
           (all[committed_at - 1].type == "limit" || all[committed_at - 1].type == "error" ||
            all[committed_at - 1].type == "run.finished")) {
      --committed_at;
    }
    all.insert(all.begin() + static_cast<std::ptrdiff_t>(committed_at),
               NewEvent{"step.committed",
                        "{\"snapshot\":" + std::to_string(out.snapshot) + ",\"position\":" +
                            std::to_string(built->record.position) + ",\"at_rest\":\"" +
                            std::string(at_rest_name(snapshot->at_rest)) + "\"}"});
  }
  auto seqs = impl_->put_events(batch, session, *record, all, now);
  if (!seqs) return seqs.status();
  out.seqs = std::move(seqs).value();
  if (committed_at != SIZE_MAX) out.committed_seq = out.seqs[committed_at];
  if (Status w = impl_->write(batch); !w) {
    impl_->forget_salt(record->tenant);
    return w;
  }
  return out;
}

Result<SnapshotInfo> Store::snapshot_info(std::string_view session, uint64_t number) const {
  auto record = impl_->load_session(session);
  if (!record) return record.status();
  if (number == 0) number = record->last_snapshot;
  if (number == 0)
    return Status::not_found("session '" + std::string(session) + "' has no snapshot");
  auto r = load_snapshot(*impl_, session, number);
  if (!r) return r.status();
  return info_of(number, *r);
}

Result<Restored> Store::restore(const inference::Model& model, std::string_view session,
                                RestoreOptions options) const {
  auto record = impl_->load_session(session);
  if (!record) return record.status();
  uint64_t number = options.snapshot != 0 ? options.snapshot : record->last_snapshot;
  if (number == 0)
    return Status::not_found("session '" + std::string(session) + "' has no snapshot");
  std::string what =
      "restoring session " + std::string(session) + " snapshot " + std::to_string(number);
  auto r = load_snapshot(*impl_, session, number);
  if (!r) return r.status().with_context(what);
  if (r->at_rest == AtRest::kCompact && !options.allow_compact) {
    return Status::invalid_argument(
        what + ": the snapshot is compact (lossy); exact resume needs an exact one");
  }
  std::vector<TokenId> tokens;
  auto seq = import_record(*impl_, model, *r, tokens);
  if (!seq) return seq.status().with_context(what);
  return Restored{std::move(seq).value(), std::move(tokens), info_of(number, *r)};
}

Status Store::save_prefix(const inference::Model& model, std::string_view tenant,
                          const inference::Sequence& sequence, std::span<const TokenId> tokens,
                          AtRest at_rest) {
  MNEMO_RETURN_IF_ERROR(impl_->writable());
  const int64_t every = impl_->options.prefix_tail_every, pos = sequence.position();
  if (every == 0 || pos == 0 || pos % every != 0 || pos % impl_->chunk_tokens != 0) {
    return Status::invalid_argument(
        "a prefix tail is kept only at multiples of " + std::to_string(every) +
        " tokens (and of the chunk span), not at " + std::to_string(pos));
  }
  std::lock_guard lock(impl_->write_mu);
  rocksdb::WriteBatch batch;
  auto built =
      build_snapshot(*impl_, batch, model, &sequence, nullptr, tokens, tenant, at_rest, {});
  if (!built) {
    impl_->forget_salt(tenant);
    return built.status();
  }
  std::string key = hash_key(built->record.chunk_keys.back());
  auto existing = impl_->get(impl_->prefixes, key);
  if (!existing) return existing.status();
  if (*existing) return Status::ok();
  built->record.created_unix_ms = unix_ms_now();
  batch.Put(impl_->prefixes, key, encode_snapshot(built->record));
  if (Status w = impl_->write(batch); !w) {
    impl_->forget_salt(tenant);
    return w;
  }
  return Status::ok();
}

Result<PrefixResume> Store::resume_prefix(const inference::Model& model, std::string_view tenant,
                                          std::span<const TokenId> tokens, AtRest at_rest) const {
  PrefixResume out{model.new_sequence(), 0, {}};
  const int64_t every = impl_->options.prefix_tail_every, span = impl_->chunk_tokens;
  const auto n = static_cast<int64_t>(tokens.size());
  if (every == 0 || n <= every) return out;
  auto salt = impl_->salt(tenant, nullptr);
  if (!salt)
    return salt.status().code() == StatusCode::kNotFound ? Result<PrefixResume>(std::move(out))
                                                         : salt.status();
  // At least one token is left to prefill, so the caller gets the last token's logits.
  const int64_t last = (n - 1) / every * every;
  auto keys = chain_keys(model.fingerprint(), *salt, descriptor_of(at_rest, impl_->options.compact),
                         tokens, span, last / span);
  for (int64_t b = last; b >= every; b -= every) {
    auto v = impl_->get(impl_->prefixes, hash_key(keys[static_cast<size_t>(b / span - 1)]));
    if (!v) return v.status();
    if (!*v) continue;
    auto r = decode_snapshot(**v);
    std::vector<TokenId> stored;
    auto seq =
        r ? import_record(*impl_, model, *r, stored) : Result<inference::Sequence>(r.status());
    if (!seq) {
      out.fallback_reason = "prefix of " + std::to_string(b) + " tokens: " + seq.status().message();
      continue;
    }
    out.sequence = std::move(seq).value();
    out.reused_tokens = b;
    return out;
  }
  return out;
}

Result<PrefixResume> Store::prefill_with_reuse(const inference::Model& model,
                                               std::string_view tenant,
                                               std::span<const TokenId> tokens,
                                               std::span<float> last_logits, AtRest at_rest) {
  constexpr int64_t kPiece = 256;  // bounds the logits buffer; the split does not change any bit
  const int64_t V = model.config().vocab_size, n = static_cast<int64_t>(tokens.size());
  const int64_t every = impl_->options.prefix_tail_every;
  if (n == 0 || static_cast<int64_t>(last_logits.size()) < V) {
    return Status::invalid_argument(
        "prefill needs at least one token and a logits buffer of the vocabulary size");
  }
  auto resumed = resume_prefix(model, tenant, tokens, at_rest);
  if (!resumed) return resumed.status();
  std::vector<float> logits;
  for (int64_t pos = resumed->reused_tokens; pos < n;) {
    int64_t next = std::min(n, pos + kPiece);
    if (every > 0) next = std::min(next, (pos / every + 1) * every);
    logits.resize(static_cast<size_t>((next - pos) * V));
    MNEMO_RETURN_IF_ERROR(model.forward(
        resumed->sequence, tokens.subspan(static_cast<size_t>(pos), next - pos), logits));
    pos = next;
    if (every > 0 && pos % every == 0 && !impl_->read_only) {
      MNEMO_RETURN_IF_ERROR(save_prefix(model, tenant, resumed->sequence,
                                        tokens.first(static_cast<size_t>(pos)), at_rest));
    }
  }
  std::copy(logits.end() - V, logits.end(), last_logits.begin());
  return resumed;
}

}  // namespace mnemo::memory
