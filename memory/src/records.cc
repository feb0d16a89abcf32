#include "records.h"

#include <mnemo/base/sha256.h>

#include "codec.h"

namespace mnemo::memory {
namespace {

constexpr uint32_t kSessionMagic = 0x53534E4D;   // "MNSS"
constexpr uint32_t kEventMagic = 0x56454E4D;     // "MNEV"
constexpr uint32_t kChunkMagic = 0x434B4E4D;     // "MNKC"
constexpr uint32_t kSnapshotMagic = 0x504B4E4D;  // "MNKP"
constexpr uint32_t kRecordVersion = 1;
constexpr uint64_t kMaxTokens = uint64_t{1} << 32;

void put_tokens(Writer& w, std::span<const inference::TokenId> tokens) {
  w.put<uint64_t>(tokens.size());
  w.put_raw(
      {reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(inference::TokenId)});
}

bool get_tokens(Reader& r, std::vector<inference::TokenId>& out) {
  uint64_t n = 0;
  std::string_view raw;
  if (!r.get(n) || n > kMaxTokens ||
      !r.get_raw(static_cast<size_t>(n) * sizeof(inference::TokenId), raw))
    return false;
  out.resize(static_cast<size_t>(n));
  std::memcpy(out.data(), raw.data(), raw.size());
  return true;
}

// Appends the SHA-256 of everything before it.
std::string seal(Writer& w) {
  Digest d = sha256(w.str());
  w.put_raw({reinterpret_cast<const char*>(d.data()), d.size()});
  return w.take();
}

Result<std::string_view> unseal(std::string_view value, const char* what) {
  if (value.size() < 32) return Status::corruption(std::string(what) + ": value too short");
  std::string_view body = value.substr(0, value.size() - 32);
  Digest d = sha256(body);
  if (std::memcmp(d.data(), value.data() + body.size(), 32) != 0) {
    return Status::corruption(std::string(what) + ": bytes do not match their SHA-256");
  }
  return body;
}

bool get_header(Reader& r, uint32_t magic) {
  uint32_t got = 0, version = 0;
  return r.get(got) && got == magic && r.get(version) && version == kRecordVersion;
}

bool valid_at_rest(uint8_t m) {
  return m == static_cast<uint8_t>(AtRest::kExact) || m == static_cast<uint8_t>(AtRest::kCompact);
}

}  // namespace

Status check_name(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Status::invalid_argument(std::string(what) + " must be 1 to 128 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return Status::invalid_argument(std::string(what) + " '" + std::string(name) +
                                      "' may only hold letters, digits and . _ : -");
    }
  }
  return Status::ok();
}

std::string meta_key(std::string_view name) {
  return std::string(1, kKeyVersion) + std::string(name);
}
std::string session_key(std::string_view session) {
  return std::string(1, kKeyVersion) + std::string(session);
}

std::string numbered_prefix(std::string_view session) {
  std::string k(1, kKeyVersion);
  k.append(session);
  k.push_back('\0');
  return k;
}

std::string numbered_key(std::string_view session, uint64_t number) {
  std::string k = numbered_prefix(session);
  put_be64(k, number);
  return k;
}

uint64_t number_of(std::string_view key) {
  return key.size() < 8 ? 0 : get_be64(key.substr(key.size() - 8));
}

std::string hash_key(std::string_view chunk_key) {
  return std::string(1, kKeyVersion) + std::string(chunk_key);
}

std::string chain_key(std::string_view fingerprint, std::string_view salt, std::string_view at_rest,
                      std::string_view parent, std::span<const inference::TokenId> tokens) {
  Sha256 h;
  h.update_field("mnemo kv chunk")
      .update_field(fingerprint)
      .update_field(salt)
      .update_field(at_rest);
  h.update_field(parent);
  h.update_field(
      {reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(inference::TokenId)});
  Digest d = h.finish();
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string encode_session(const SessionRecord& r) {
  Writer w;
  w.put(kSessionMagic)
      .put(kRecordVersion)
      .put_string(r.tenant)
      .put(r.created_unix_ms)
      .put(r.last_seq);
  w.put(r.last_snapshot);
  return w.take();
}

Result<SessionRecord> decode_session(std::string_view value) {
  Reader r(value);
  SessionRecord s;
  std::string_view tenant;
  if (!get_header(r, kSessionMagic) || !r.get_string(tenant) || !r.get(s.created_unix_ms) ||
      !r.get(s.last_seq) || !r.get(s.last_snapshot) || !r.done()) {
    return Status::corruption("session record is malformed");
  }
  s.tenant = tenant;
  return s;
}

std::string encode_event(const EventRecord& r) {
  Writer w;
  w.put(kEventMagic).put(kRecordVersion).put_string(r.type).put_string(r.payload).put(r.unix_ms);
  return w.take();
}

Result<EventRecord> decode_event(std::string_view value) {
  Reader r(value);
  EventRecord e;
  std::string_view type, payload;
  if (!get_header(r, kEventMagic) || !r.get_string(type) || !r.get_string(payload) ||
      !r.get(e.unix_ms) || !r.done()) {
    return Status::corruption("event record is malformed");
  }
  e.type = type;
  e.payload = payload;
  return e;
}

std::string encode_chunk(const ChunkRecord& c) {
  Writer w;
  w.put(kChunkMagic).put(kRecordVersion).put(static_cast<uint8_t>(c.at_rest)).put(c.from).put(c.to);
  put_tokens(w, c.tokens);
  w.put_string(c.payload);
  return seal(w);
}

Result<ChunkRecord> decode_chunk(std::string_view value) {
  auto body = unseal(value, "KV chunk");
  if (!body) return body.status();
  Reader r(*body);
  ChunkRecord c;
  uint8_t mode = 0;
  std::string_view payload;
  if (!get_header(r, kChunkMagic) || !r.get(mode) || !valid_at_rest(mode) || !r.get(c.from) ||
      !r.get(c.to) || !get_tokens(r, c.tokens) || !r.get_string(payload) || !r.done() ||
      c.to - c.from != static_cast<int64_t>(c.tokens.size())) {
    return Status::corruption("KV chunk is malformed");
  }
  c.at_rest = static_cast<AtRest>(mode);
  c.payload = payload;
  return c;
}

std::string encode_snapshot(const SnapshotRecord& s) {
  Writer w;
  w.put(kSnapshotMagic).put(kRecordVersion).put_string(s.fingerprint).put_string(s.tenant);
  w.put(static_cast<uint8_t>(s.at_rest))
      .put_string(s.descriptor)
      .put(s.chunk_tokens)
      .put(s.position);
  w.put(s.created_unix_ms).put<uint64_t>(s.chunk_keys.size());
  for (const std::string& k : s.chunk_keys) w.put_raw(k);
  put_tokens(w, s.tail_tokens);
  w.put_string(s.partial).put_string(s.tail);
  return seal(w);
}

Result<SnapshotRecord> decode_snapshot(std::string_view value) {
  auto body = unseal(value, "KV snapshot");
  if (!body) return body.status();
  Reader r(*body);
  SnapshotRecord s;
  uint8_t mode = 0;
  uint64_t n_keys = 0;
  std::string_view fingerprint, tenant, descriptor, partial, tail;
  bool ok = get_header(r, kSnapshotMagic) && r.get_string(fingerprint) && r.get_string(tenant) &&
            r.get(mode) && valid_at_rest(mode) && r.get_string(descriptor) &&
            r.get(s.chunk_tokens) && r.get(s.position) && r.get(s.created_unix_ms) &&
            r.get(n_keys) && n_keys <= body->size() / kChunkKeySize;
  for (uint64_t i = 0; ok && i < n_keys; ++i) {
    std::string_view k;
    ok = r.get_raw(kChunkKeySize, k);
    if (ok) s.chunk_keys.emplace_back(k);
  }
  ok =
      ok && get_tokens(r, s.tail_tokens) && r.get_string(partial) && r.get_string(tail) && r.done();
  if (!ok || s.chunk_tokens <= 0 ||
      s.position != static_cast<int64_t>(n_keys) * s.chunk_tokens +
                        static_cast<int64_t>(s.tail_tokens.size())) {
    return Status::corruption("KV snapshot is malformed");
  }
  s.fingerprint = fingerprint;
  s.tenant = tenant;
  s.at_rest = static_cast<AtRest>(mode);
  s.descriptor = descriptor;
  s.partial = partial;
  s.tail = tail;
  return s;
}

}  // namespace mnemo::memory
