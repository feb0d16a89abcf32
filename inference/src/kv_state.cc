// Export and import of a sequence's KV state: segments of completed compressed entries and indexer
// keys by token range, and the tail (window rings, compressor carry) at the sequence's position; and the
// typed reading and writing of those blobs that at-rest codecs use. Rows travel as the cache holds them
// (v4_kv_rows.h): an exact snapshot is the live state's bytes, bit for bit.
#include <mnemo/inference/kv_state.h>

#include <mnemo/base/binary.h>
#include "model_impl.h"
#include "v4_kv_rows.h"

namespace mnemo::inference {
namespace {

constexpr uint32_t kSegmentMagic = 0x534B4E4D;  // "MNKS"
constexpr uint32_t kTailMagic = 0x544B4E4D;     // "MNKT"
constexpr uint64_t kMaxFloats = uint64_t{1} << 34;

void put_header(BinaryWriter& w, uint32_t magic, const Model& m) {
  w.put(magic);
  w.put(kKvFormatVersion);
  w.put_raw(m.fingerprint());  // 64 hex chars
  w.put(static_cast<uint8_t>(m.precision()));
}

Status check_header(BinaryReader& r, uint32_t magic, const Model& m, const std::string& what) {
  uint32_t got_magic = 0, version = 0;
  std::string_view fingerprint;
  uint8_t precision = 0;
  if (!r.get(got_magic) || got_magic != magic) return Status::corruption(what + ": not a mnemo KV blob");
  if (!r.get(version) || version != kKvFormatVersion) {
    return Status::unsupported(what + ": KV format version " + std::to_string(version) +
                               ", this build reads version " + std::to_string(kKvFormatVersion));
  }
  if (!r.get_raw(m.fingerprint().size(), fingerprint) || !r.get(precision)) {
    return Status::corruption(what + ": truncated header");
  }
  // Precision first: the fingerprint covers it too, and this names the actual difference.
  if (precision != static_cast<uint8_t>(m.precision())) {
    return Status::invalid_argument(what + ": KV state of " +
                                    std::string(precision_name(static_cast<Precision>(precision))) +
                                    " precision, this engine runs " + std::string(precision_name(m.precision())));
  }
  if (fingerprint != m.fingerprint()) {
    return Status::invalid_argument(what + ": KV state of another model (fingerprint " + std::string(fingerprint.substr(0, 12)) +
                                    "..., this model " + m.fingerprint().substr(0, 12) + "...)");
  }
  return Status::ok();
}

// The entries a layer has completed for tokens [from, to).
std::pair<int64_t, int64_t> entry_range(int ratio, int64_t from, int64_t to) {
  if (ratio == 0) return {0, 0};
  return {from / ratio, to / ratio};
}

// What the row layouts depend on: the sizes and the precision's numerics.
v4::Dims row_dims(const Model& m) {
  v4::Dims d;
  d.head_dim = static_cast<int>(m.config().head_dim);
  d.rope_dim = static_cast<int>(m.config().qk_rope_head_dim);
  d.index_dim = static_cast<int>(m.config().index_head_dim);
  d.window = static_cast<int>(m.config().sliding_window);
  d.numerics = numerics_of(m.precision());
  return d;
}

std::string_view bytes_of(const std::vector<uint8_t>& v, int64_t row_bytes, std::pair<int64_t, int64_t> rows) {
  return {reinterpret_cast<const char*>(v.data()) + rows.first * row_bytes,
          static_cast<size_t>((rows.second - rows.first) * row_bytes)};
}

void append(std::vector<uint8_t>& v, std::string_view bytes) { v.insert(v.end(), bytes.begin(), bytes.end()); }

// A segment's rows as stored, per layer: kv rows, indexer key codes and their scales.
struct RawSegmentLayer {
  std::string_view entries, key_codes, key_scales;
};
struct RawSegment {
  int64_t from = 0, to = 0;
  std::vector<RawSegmentLayer> layers;
};

// A tail's window rings as stored, and the compressor carry.
struct RawTailLayer {
  std::string_view ring;
  KvCarry compressor, index_compressor;
};
struct RawTail {
  int64_t position = 0;
  std::vector<RawTailLayer> layers;
};

std::string export_segment(const Model& model, const v4::Dims& dims, const v4::SequenceState& st, int64_t from,
                           int64_t to) {
  BinaryWriter w;
  put_header(w, kSegmentMagic, model);
  w.put(from);
  w.put(to);
  for (int l = 0; l < dims.n_layers; ++l) {
    const auto rows = entry_range(dims.ratios[l], from, to);
    const auto key_rows = dims.ratios[l] == 4 ? rows : std::pair<int64_t, int64_t>{0, 0};
    const v4::LayerState& ls = st.layers[l];
    w.put_string(bytes_of(ls.entries.data, ls.entries.row_bytes, rows));
    w.put_string(bytes_of(ls.index_keys.data, ls.index_keys.row_bytes, key_rows));
    w.put_string(bytes_of(ls.index_keys.scales, ls.index_keys.scale_bytes, key_rows));
  }
  return w.take();
}

void put_carry(BinaryWriter& w, const KvCarry& c) {
  w.put_floats(c.kv);
  w.put_floats(c.score);
  w.put_floats(c.prev_kv);
  w.put_floats(c.prev_score);
}

bool get_carry(BinaryReader& r, KvCarry& c) {
  return r.get_floats(c.kv, kMaxFloats) && r.get_floats(c.score, kMaxFloats) && r.get_floats(c.prev_kv, kMaxFloats) &&
         r.get_floats(c.prev_score, kMaxFloats);
}

KvCarry to_carry(const v4::CompressorState& c) { return {c.kv, c.score, c.prev_kv, c.prev_score}; }
v4::CompressorState from_carry(KvCarry&& c) {
  return {std::move(c.kv), std::move(c.score), std::move(c.prev_kv), std::move(c.prev_score)};
}

Status check_carry(const ModelConfig& config, int layer, int64_t p, const KvCarry& compressor,
                   const KvCarry& index_compressor) {
  const int r = config.compress_ratio(layer);
  auto check = [&](const KvCarry& c, int64_t width, bool overlap) -> bool {
    size_t row = static_cast<size_t>(overlap ? 2 * width : width);
    size_t partial = r == 0 ? 0 : static_cast<size_t>(p % r) * row;
    size_t prev = overlap && p >= r ? static_cast<size_t>(r) * row : 0;
    return c.kv.size() == partial && c.score.size() == partial && c.prev_kv.size() == prev &&
           c.prev_score.size() == prev;
  };
  auto fail = [&](const char* part) {
    return Status::corruption("KV tail: layer " + std::to_string(layer) + " " + part + " has the wrong size");
  };
  if (r > 0 && !check(compressor, config.head_dim, r == 4)) return fail("compressor carry");
  if (r == 4 && !check(index_compressor, config.index_head_dim, true)) return fail("indexer compressor carry");
  return Status::ok();
}

// The byte sizes a layer's rows must have, so that a corrupt or foreign blob is refused.
Status check_segment_sizes(const v4::Dims& rd, int ratio, int layer, int64_t from, int64_t to, size_t entries,
                           size_t codes, size_t scales, const std::string& what) {
  const auto rows = entry_range(ratio, from, to);
  const auto n = static_cast<size_t>(rows.second - rows.first);
  const size_t n_keys = ratio == 4 ? n : 0;
  const v4::KvRows kv = v4::kv_rows(rd), keys = v4::index_key_rows(rd);
  if (entries != n * kv.row_bytes || codes != n_keys * keys.row_bytes || scales != n_keys * keys.scale_bytes) {
    return Status::corruption(what + ": layer " + std::to_string(layer) + " has the wrong number of entries");
  }
  return Status::ok();
}

Result<RawSegment> read_raw_segment(const Model& model, std::string_view blob, const std::string& what) {
  const ModelConfig& config = model.config();
  const v4::Dims rd = row_dims(model);
  BinaryReader r(blob);
  MNEMO_RETURN_IF_ERROR(check_header(r, kSegmentMagic, model, what));
  RawSegment out;
  if (!r.get(out.from) || !r.get(out.to)) return Status::corruption(what + ": truncated");
  if (out.from < 0 || out.to < out.from || out.to > config.max_position_embeddings) {
    return Status::corruption(what + ": bad token range");
  }
  out.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    RawSegmentLayer& sl = out.layers[l];
    if (!r.get_string(sl.entries) || !r.get_string(sl.key_codes) || !r.get_string(sl.key_scales)) {
      return Status::corruption(what + ": truncated at layer " + std::to_string(l));
    }
    MNEMO_RETURN_IF_ERROR(check_segment_sizes(rd, config.compress_ratio(l), l, out.from, out.to, sl.entries.size(),
                                              sl.key_codes.size(), sl.key_scales.size(), what));
  }
  if (!r.done()) return Status::corruption(what + ": trailing bytes");
  return out;
}

Result<RawTail> read_raw_tail(const Model& model, std::string_view tail) {
  const ModelConfig& config = model.config();
  const v4::Dims rd = row_dims(model);
  BinaryReader r(tail);
  MNEMO_RETURN_IF_ERROR(check_header(r, kTailMagic, model, "KV tail"));
  RawTail out;
  if (!r.get(out.position) || out.position < 0 || out.position > config.max_position_embeddings) {
    return Status::corruption("KV tail: bad position");
  }
  const size_t ring = out.position == 0 ? 0 : static_cast<size_t>(config.sliding_window * v4::kv_rows(rd).row_bytes);
  out.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    RawTailLayer& tl = out.layers[l];
    if (!r.get_string(tl.ring) || !get_carry(r, tl.compressor) || !get_carry(r, tl.index_compressor)) {
      return Status::corruption("KV tail: truncated at layer " + std::to_string(l));
    }
    if (tl.ring.size() != ring) {
      return Status::corruption("KV tail: layer " + std::to_string(l) + " window ring has the wrong size");
    }
    MNEMO_RETURN_IF_ERROR(check_carry(config, l, out.position, tl.compressor, tl.index_compressor));
  }
  if (!r.done()) return Status::corruption("KV tail: trailing bytes");
  return out;
}

// Rows as floats, and floats stored as rows (rounded as the cache stores them).
std::vector<float> decode_kv(const v4::Dims& rd, std::string_view bytes) {
  const int64_t rb = v4::kv_rows(rd).row_bytes;
  const auto n = static_cast<int64_t>(bytes.size()) / rb;
  std::vector<float> out(static_cast<size_t>(n * rd.head_dim));
  for (int64_t i = 0; i < n; ++i) {
    v4::load_kv(rd, reinterpret_cast<const uint8_t*>(bytes.data()) + i * rb, &out[static_cast<size_t>(i * rd.head_dim)]);
  }
  return out;
}

std::vector<uint8_t> encode_kv(const v4::Dims& rd, std::vector<float> values) {
  v4::KvRows rows = v4::kv_rows(rd);
  for (size_t at = 0; at + rd.head_dim <= values.size(); at += static_cast<size_t>(rd.head_dim)) {
    v4::append_kv(rd, &values[at], rows);
  }
  return std::move(rows.data);
}

std::vector<float> decode_keys(const v4::Dims& rd, std::string_view codes, std::string_view scales) {
  v4::KvRows keys = v4::index_key_rows(rd);
  keys.data.assign(codes.begin(), codes.end());
  keys.scales.assign(scales.begin(), scales.end());
  std::vector<float> out(static_cast<size_t>(keys.size() * rd.index_dim));
  for (int64_t i = 0; i < keys.size(); ++i) v4::load_index_key(rd, keys, i, &out[static_cast<size_t>(i * rd.index_dim)]);
  return out;
}

v4::KvRows encode_keys(const v4::Dims& rd, std::vector<float> values) {
  v4::KvRows keys = v4::index_key_rows(rd);
  for (size_t at = 0; at + rd.index_dim <= values.size(); at += static_cast<size_t>(rd.index_dim)) {
    v4::append_index_key(rd, &values[at], keys);
  }
  return keys;
}

std::string_view view(const std::vector<uint8_t>& v) { return {reinterpret_cast<const char*>(v.data()), v.size()}; }

}  // namespace

Result<KvSegmentRange> kv_segment_range(std::string_view segment) {
  BinaryReader r(segment);
  uint32_t magic = 0, version = 0;
  std::string_view fingerprint;
  uint8_t precision;
  KvSegmentRange range;
  if (!r.get(magic) || magic != kSegmentMagic || !r.get(version) || !r.get_raw(64, fingerprint) ||
      !r.get(precision) || !r.get(range.from) || !r.get(range.to)) {
    return Status::corruption("not a mnemo KV segment");
  }
  return range;
}

Result<KvSegmentData> read_kv_segment(const Model& model, std::string_view segment) {
  auto raw = read_raw_segment(model, segment, "KV segment");
  if (!raw) return raw.status();
  const v4::Dims rd = row_dims(model);
  KvSegmentData out;
  out.from = raw->from;
  out.to = raw->to;
  out.layers.resize(raw->layers.size());
  for (size_t l = 0; l < raw->layers.size(); ++l) {
    out.layers[l].ratio = model.config().compress_ratio(static_cast<int>(l));
    out.layers[l].entries = decode_kv(rd, raw->layers[l].entries);
    out.layers[l].index_keys = decode_keys(rd, raw->layers[l].key_codes, raw->layers[l].key_scales);
  }
  return out;
}

Result<KvTailData> read_kv_tail(const Model& model, std::string_view tail) {
  auto raw = read_raw_tail(model, tail);
  if (!raw) return raw.status();
  const v4::Dims rd = row_dims(model);
  KvTailData out;
  out.position = raw->position;
  out.layers.resize(raw->layers.size());
  for (size_t l = 0; l < raw->layers.size(); ++l) {
    out.layers[l].ring = decode_kv(rd, raw->layers[l].ring);
    out.layers[l].compressor = std::move(raw->layers[l].compressor);
    out.layers[l].index_compressor = std::move(raw->layers[l].index_compressor);
  }
  return out;
}

Result<std::string> write_kv_segment(const Model& model, const KvSegmentData& data) {
  const ModelConfig& config = model.config();
  if (data.from < 0 || data.to < data.from || data.layers.size() != static_cast<size_t>(config.num_hidden_layers)) {
    return Status::invalid_argument("KV segment: bad token range or layer count");
  }
  const v4::Dims rd = row_dims(model);
  BinaryWriter w;
  put_header(w, kSegmentMagic, model);
  w.put(data.from);
  w.put(data.to);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const KvSegmentLayer& sl = data.layers[l];
    const int r = config.compress_ratio(l);
    const auto rows = entry_range(r, data.from, data.to);
    const auto n = static_cast<size_t>(rows.second - rows.first);
    if (sl.ratio != r || sl.entries.size() != n * config.head_dim ||
        sl.index_keys.size() != (r == 4 ? n : 0) * config.index_head_dim) {
      return Status::corruption("KV segment: layer " + std::to_string(l) + " has the wrong number of entries");
    }
    const v4::KvRows keys = encode_keys(rd, sl.index_keys);
    w.put_string(view(encode_kv(rd, sl.entries)));
    w.put_string(view(keys.data));
    w.put_string(view(keys.scales));
  }
  return w.take();
}

Result<std::string> write_kv_tail(const Model& model, const KvTailData& data) {
  const ModelConfig& config = model.config();
  if (data.layers.size() != static_cast<size_t>(config.num_hidden_layers)) {
    return Status::invalid_argument("KV tail: wrong layer count");
  }
  const v4::Dims rd = row_dims(model);
  const size_t ring = data.position == 0 ? 0 : static_cast<size_t>(config.sliding_window * config.head_dim);
  BinaryWriter w;
  put_header(w, kTailMagic, model);
  w.put(data.position);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const KvTailLayer& tl = data.layers[l];
    if (tl.ring.size() != ring) {
      return Status::corruption("KV tail: layer " + std::to_string(l) + " window ring has the wrong size");
    }
    MNEMO_RETURN_IF_ERROR(check_carry(config, l, data.position, tl.compressor, tl.index_compressor));
    w.put_string(view(encode_kv(rd, tl.ring)));
    put_carry(w, tl.compressor);
    put_carry(w, tl.index_compressor);
  }
  return w.take();
}

Result<KvExport> Model::export_state(const Sequence& seq, int64_t from, int64_t segment_span) const {
  if (seq.impl_->state.owner != impl_->model.get() || seq.impl_->state.mtp) {
    return Status::invalid_argument("export_state: the sequence belongs to another model or is an MTP cache");
  }
  const v4::SequenceState& st = seq.impl_->state;
  if (from < 0 || from > st.pos || (from % kKvSegmentAlign != 0 && from != st.pos)) {
    return Status::invalid_argument("export from token " + std::to_string(from) + ": must be a multiple of " +
                                    std::to_string(kKvSegmentAlign) + " up to the position " + std::to_string(st.pos));
  }
  if (segment_span < 0 || segment_span % kKvSegmentAlign != 0) {
    return Status::invalid_argument("segment span " + std::to_string(segment_span) + " is not a multiple of " +
                                    std::to_string(kKvSegmentAlign));
  }
  KvExport out;
  out.fingerprint = impl_->fingerprint;
  out.precision = impl_->precision;
  out.position = st.pos;
  out.from = from;
  for (int64_t at = from; at < st.pos;) {
    int64_t to = segment_span == 0 ? st.pos : std::min(st.pos, at + segment_span);
    out.segments.push_back(export_segment(*this, impl_->model->dims(), st, at, to));
    at = to;
  }
  const v4::Dims& dims = impl_->model->dims();
  BinaryWriter w;
  put_header(w, kTailMagic, *this);
  w.put(st.pos);
  for (int l = 0; l < dims.n_layers; ++l) {
    const v4::LayerState& ls = st.layers[l];
    w.put_string(st.pos == 0 ? std::string_view() : view(ls.ring.data));
    put_carry(w, to_carry(ls.compressor));
    put_carry(w, to_carry(ls.index_compressor));
  }
  out.tail = w.take();
  return out;
}

Result<Sequence> Model::import_state(const std::vector<std::string>& segments, std::string_view tail) const {
  auto raw_tail = read_raw_tail(*this, tail);
  if (!raw_tail) return raw_tail.status();
  const int64_t position = raw_tail->position;
  v4::SequenceState st = impl_->model->new_sequence();
  for (size_t l = 0; l < raw_tail->layers.size(); ++l) {
    RawTailLayer& tl = raw_tail->layers[l];
    append(st.layers[l].ring.data, tl.ring);
    st.layers[l].compressor = from_carry(std::move(tl.compressor));
    st.layers[l].index_compressor = from_carry(std::move(tl.index_compressor));
  }
  int64_t covered = 0;
  for (size_t k = 0; k < segments.size(); ++k) {
    std::string what = "KV segment " + std::to_string(k);
    auto seg = read_raw_segment(*this, segments[k], what);
    if (!seg) return seg.status();
    if (seg->from != covered || seg->to > position) {
      return Status::invalid_argument(what + " covers tokens [" + std::to_string(seg->from) + ", " +
                                      std::to_string(seg->to) + "), expected to start at " + std::to_string(covered) +
                                      " and end by " + std::to_string(position));
    }
    for (size_t l = 0; l < seg->layers.size(); ++l) {
      v4::LayerState& ls = st.layers[l];
      append(ls.entries.data, seg->layers[l].entries);
      append(ls.index_keys.data, seg->layers[l].key_codes);
      append(ls.index_keys.scales, seg->layers[l].key_scales);
    }
    covered = seg->to;
  }
  if (covered != position) {
    return Status::invalid_argument("KV segments cover tokens [0, " + std::to_string(covered) +
                                    ") but the tail is at position " + std::to_string(position));
  }
  st.pos = position;
  return Sequence(std::make_unique<Sequence::Impl>(Sequence::Impl{std::move(st)}));
}

}  // namespace mnemo::inference
