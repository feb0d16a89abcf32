#include "compact_codec.h"

#include <mnemo/inference/kv_state.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codec.h"

namespace mnemo::memory {
namespace {

constexpr uint32_t kCompactMagic = 0x5A434E4D;  // "MNCZ"
constexpr uint64_t kMaxRaw = uint64_t{1} << 34;

// The smallest bf16 at or above a non-negative float, so that |x| / scale never exceeds the code
// range.
uint16_t bf16_at_or_above(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  uint32_t hi = bits >> 16;
  if ((bits & 0xffff) != 0) ++hi;
  return static_cast<uint16_t>(hi);
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = uint32_t{h} << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// Quantises rows of `width` in groups: codes are signed, one byte each (zstd codes their entropy).
void quantise(const std::vector<float>& x, size_t width, int bits, int group, std::string& codes,
              std::string& scales) {
  const int qmax = (1 << (bits - 1)) - 1;
  for (size_t row = 0; row < x.size(); row += width) {
    for (size_t g = 0; g < width; g += static_cast<size_t>(group)) {
      size_t len = std::min<size_t>(static_cast<size_t>(group), width - g);
      const float* v = x.data() + row + g;
      float amax = 0;
      for (size_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(v[i]));
      uint16_t s16 = bf16_at_or_above(amax / static_cast<float>(qmax));
      float scale = bf16_to_float(s16);
      scales.append(reinterpret_cast<const char*>(&s16), 2);
      for (size_t i = 0; i < len; ++i) {
        int q = scale > 0 ? static_cast<int>(std::lrint(v[i] / scale)) : 0;
        codes.push_back(static_cast<char>(std::clamp(q, -qmax, qmax)));
      }
    }
  }
}

bool dequantise(Reader& codes, Reader& scales, size_t count, size_t width, int group,
                std::vector<float>& out) {
  out.resize(count);
  for (size_t row = 0; row < count; row += width) {
    for (size_t g = 0; g < width; g += static_cast<size_t>(group)) {
      size_t len = std::min<size_t>(static_cast<size_t>(group), width - g);
      uint16_t s16 = 0;
      std::string_view c;
      if (!scales.get(s16) || !codes.get_raw(len, c)) return false;
      float scale = bf16_to_float(s16);
      for (size_t i = 0; i < len; ++i)
        out[row + g + i] = static_cast<float>(static_cast<int8_t>(c[i])) * scale;
    }
  }
  return true;
}

}  // namespace

Result<std::string> compact_encode(const inference::Model& model, std::string_view segment,
                                   const CompactParams& p) {
  MNEMO_RETURN_IF_ERROR(p.validate());
  auto data = inference::read_kv_segment(model, segment);
  if (!data) return data.status();
  const auto head_dim = static_cast<size_t>(model.config().head_dim);
  const auto index_dim = static_cast<size_t>(model.config().index_head_dim);
  std::string codes, index_codes, scales;
  Writer header;
  header.put<uint8_t>(static_cast<uint8_t>(p.entry_bits))
      .put<uint8_t>(static_cast<uint8_t>(p.index_bits));
  header.put<uint16_t>(static_cast<uint16_t>(p.group)).put(data->from).put(data->to);
  for (const inference::KvSegmentLayer& l : data->layers) {
    header.put<uint64_t>(l.entries.size()).put<uint64_t>(l.index_keys.size());
    quantise(l.entries, head_dim, p.entry_bits, p.group, codes, scales);
    quantise(l.index_keys, index_dim, p.index_bits, p.group, index_codes, scales);
  }
  std::string raw = header.take();
  raw += codes;
  raw += index_codes;
  raw += scales;
  std::string out;
  Writer w;
  w.put(kCompactMagic).put<uint64_t>(raw.size());
  out = w.take();
  size_t at = out.size();
  out.resize(at + ZSTD_compressBound(raw.size()));
  size_t n = ZSTD_compress(out.data() + at, out.size() - at, raw.data(), raw.size(), p.zstd_level);
  if (ZSTD_isError(n)) return Status::internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(at + n);
  return out;
}

Result<std::string> compact_decode(const inference::Model& model, std::string_view compact) {
  Reader r(compact);
  uint32_t magic = 0;
  uint64_t raw_size = 0;
  if (!r.get(magic) || magic != kCompactMagic || !r.get(raw_size) || raw_size > kMaxRaw) {
    return Status::corruption("compact KV chunk: bad header");
  }
  std::string raw(static_cast<size_t>(raw_size), '\0');
  size_t n = ZSTD_decompress(raw.data(), raw.size(), compact.data() + r.offset(),
                             compact.size() - r.offset());
  if (ZSTD_isError(n) || n != raw.size())
    return Status::corruption("compact KV chunk: zstd data is damaged");

  const inference::ModelConfig& config = model.config();
  const auto head_dim = static_cast<size_t>(config.head_dim);
  const auto index_dim = static_cast<size_t>(config.index_head_dim);
  Reader h(raw);
  uint8_t entry_bits = 0, index_bits = 0;
  uint16_t group = 0;
  inference::KvSegmentData data;
  bool ok = h.get(entry_bits) && h.get(index_bits) && h.get(group) && group > 0 &&
            h.get(data.from) && h.get(data.to);
  std::vector<std::pair<uint64_t, uint64_t>> counts(static_cast<size_t>(config.num_hidden_layers));
  uint64_t total_codes = 0, total_index = 0;
  for (auto& [e, k] : counts) {
    ok = ok && h.get(e) && h.get(k) && e % head_dim == 0 && k % index_dim == 0 && e <= kMaxRaw &&
         k <= kMaxRaw;
    total_codes += e;
    total_index += k;
  }
  if (!ok || h.offset() + total_codes + total_index > raw.size())
    return Status::corruption("compact KV chunk: bad sizes");
  std::string_view rest = std::string_view(raw).substr(h.offset());
  Reader codes(rest.substr(0, total_codes));
  Reader index_codes(rest.substr(total_codes, total_index));
  Reader scales(rest.substr(total_codes + total_index));
  data.layers.resize(counts.size());
  for (size_t l = 0; l < counts.size(); ++l) {
    data.layers[l].ratio = config.compress_ratio(static_cast<int64_t>(l));
    if (!dequantise(codes, scales, counts[l].first, head_dim, group, data.layers[l].entries) ||
        !dequantise(index_codes, scales, counts[l].second, index_dim, group,
                    data.layers[l].index_keys)) {
      return Status::corruption("compact KV chunk: truncated codes");
    }
  }
  if (!scales.done()) return Status::corruption("compact KV chunk: trailing bytes");
  return inference::write_kv_segment(model, data);
}

}  // namespace mnemo::memory
