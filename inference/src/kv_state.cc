// Export and import of a sequence's KV state: segments of completed compressed entries and indexer
// keys by token range, and the tail (window rings, compressor carry) at the sequence's position; and the
// typed reading and writing of those blobs that at-rest codecs use.
#include <mnemo/inference/kv_state.h>

#include <mnemo/base/binary.h>
#include "model_impl.h"

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
std::pair<size_t, size_t> entry_range(int ratio, int64_t from, int64_t to) {
  if (ratio == 0) return {0, 0};
  return {static_cast<size_t>(from / ratio), static_cast<size_t>(to / ratio)};
}

std::vector<float> slice(const std::vector<float>& v, size_t width, std::pair<size_t, size_t> rows) {
  return {v.begin() + static_cast<ptrdiff_t>(rows.first * width), v.begin() + static_cast<ptrdiff_t>(rows.second * width)};
}

std::string export_segment(const Model& model, const v4::Dims& dims, const v4::SequenceState& st, int64_t from,
                           int64_t to) {
  BinaryWriter w;
  put_header(w, kSegmentMagic, model);
  w.put(from);
  w.put(to);
  for (int l = 0; l < dims.n_layers; ++l) {
    auto rows = entry_range(dims.ratios[l], from, to);
    const v4::LayerState& ls = st.layers[l];
    w.put_floats(slice(ls.entries, dims.head_dim, rows));
    w.put_floats(dims.ratios[l] == 4 ? slice(ls.index_keys, dims.index_dim, rows) : std::vector<float>{});
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

// Sizes every part of a layer's tail must have at position p, so a corrupt or foreign tail is refused.
Status check_layer_tail(const ModelConfig& config, int layer, int64_t p, const KvTailLayer& ls) {
  const int r = config.compress_ratio(layer);
  auto fail = [&](const char* part) {
    return Status::corruption("KV tail: layer " + std::to_string(layer) + " " + part + " has the wrong size");
  };
  size_t ring = p == 0 ? 0 : static_cast<size_t>(config.sliding_window * config.head_dim);
  if (ls.ring.size() != ring) return fail("window ring");
  auto check = [&](const KvCarry& c, int64_t width, bool overlap) -> bool {
    size_t row = static_cast<size_t>(overlap ? 2 * width : width);
    size_t partial = static_cast<size_t>(p % r) * row;
    size_t prev = overlap && p >= r ? static_cast<size_t>(r) * row : 0;
    return c.kv.size() == partial && c.score.size() == partial && c.prev_kv.size() == prev &&
           c.prev_score.size() == prev;
  };
  if (r > 0 && !check(ls.compressor, config.head_dim, r == 4)) return fail("compressor carry");
  if (r == 4 && !check(ls.index_compressor, config.index_head_dim, true)) return fail("indexer compressor carry");
  return Status::ok();
}

Status check_segment_layer(const ModelConfig& config, int layer, int64_t from, int64_t to, const KvSegmentLayer& sl,
                           const std::string& what) {
  const int r = config.compress_ratio(layer);
  auto rows = entry_range(r, from, to);
  size_t n = rows.second - rows.first;
  size_t n_keys = r == 4 ? n : 0;
  if (sl.ratio != r || sl.entries.size() != n * config.head_dim || sl.index_keys.size() != n_keys * config.index_head_dim) {
    return Status::corruption(what + ": layer " + std::to_string(layer) + " has the wrong number of entries");
  }
  return Status::ok();
}

Result<KvSegmentData> read_segment(const Model& model, std::string_view blob, const std::string& what) {
  const ModelConfig& config = model.config();
  BinaryReader r(blob);
  MNEMO_RETURN_IF_ERROR(check_header(r, kSegmentMagic, model, what));
  KvSegmentData out;
  if (!r.get(out.from) || !r.get(out.to)) return Status::corruption(what + ": truncated");
  if (out.from < 0 || out.to < out.from || out.to > config.max_position_embeddings) {
    return Status::corruption(what + ": bad token range");
  }
  out.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    KvSegmentLayer& sl = out.layers[l];
    sl.ratio = config.compress_ratio(l);
    if (!r.get_floats(sl.entries, kMaxFloats) || !r.get_floats(sl.index_keys, kMaxFloats)) {
      return Status::corruption(what + ": truncated at layer " + std::to_string(l));
    }
    MNEMO_RETURN_IF_ERROR(check_segment_layer(config, l, out.from, out.to, sl, what));
  }
  if (!r.done()) return Status::corruption(what + ": trailing bytes");
  return out;
}

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
  return read_segment(model, segment, "KV segment");
}

Result<KvTailData> read_kv_tail(const Model& model, std::string_view tail) {
  const ModelConfig& config = model.config();
  BinaryReader r(tail);
  MNEMO_RETURN_IF_ERROR(check_header(r, kTailMagic, model, "KV tail"));
  KvTailData out;
  if (!r.get(out.position) || out.position < 0 || out.position > config.max_position_embeddings) {
    return Status::corruption("KV tail: bad position");
  }
  out.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    KvTailLayer& tl = out.layers[l];
    if (!r.get_floats(tl.ring, kMaxFloats) || !get_carry(r, tl.compressor) || !get_carry(r, tl.index_compressor)) {
      return Status::corruption("KV tail: truncated at layer " + std::to_string(l));
    }
    MNEMO_RETURN_IF_ERROR(check_layer_tail(config, l, out.position, tl));
  }
  if (!r.done()) return Status::corruption("KV tail: trailing bytes");
  return out;
}

Result<std::string> write_kv_segment(const Model& model, const KvSegmentData& data) {
  const ModelConfig& config = model.config();
  if (data.from < 0 || data.to < data.from || data.layers.size() != static_cast<size_t>(config.num_hidden_layers)) {
    return Status::invalid_argument("KV segment: bad token range or layer count");
  }
  BinaryWriter w;
  put_header(w, kSegmentMagic, model);
  w.put(data.from);
  w.put(data.to);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    MNEMO_RETURN_IF_ERROR(check_segment_layer(config, l, data.from, data.to, data.layers[l], "KV segment"));
    w.put_floats(data.layers[l].entries);
    w.put_floats(data.layers[l].index_keys);
  }
  return w.take();
}

Result<std::string> write_kv_tail(const Model& model, const KvTailData& data) {
  const ModelConfig& config = model.config();
  if (data.layers.size() != static_cast<size_t>(config.num_hidden_layers)) {
    return Status::invalid_argument("KV tail: wrong layer count");
  }
  BinaryWriter w;
  put_header(w, kTailMagic, model);
  w.put(data.position);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    MNEMO_RETURN_IF_ERROR(check_layer_tail(config, l, data.position, data.layers[l]));
    w.put_floats(data.layers[l].ring);
    put_carry(w, data.layers[l].compressor);
    put_carry(w, data.layers[l].index_compressor);
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
    w.put_floats(ls.ring);
    put_carry(w, to_carry(ls.compressor));
    put_carry(w, to_carry(ls.index_compressor));
  }
  out.tail = w.take();
  return out;
}

Result<Sequence> Model::import_state(const std::vector<std::string>& segments, std::string_view tail) const {
  auto tail_data = read_kv_tail(*this, tail);
  if (!tail_data) return tail_data.status();
  const int64_t position = tail_data->position;
  v4::SequenceState st = impl_->model->new_sequence();
  for (size_t l = 0; l < tail_data->layers.size(); ++l) {
    KvTailLayer& tl = tail_data->layers[l];
    st.layers[l].ring = std::move(tl.ring);
    st.layers[l].compressor = from_carry(std::move(tl.compressor));
    st.layers[l].index_compressor = from_carry(std::move(tl.index_compressor));
  }
  int64_t covered = 0;
  for (size_t k = 0; k < segments.size(); ++k) {
    std::string what = "KV segment " + std::to_string(k);
    auto seg = read_segment(*this, segments[k], what);
    if (!seg) return seg.status();
    if (seg->from != covered || seg->to > position) {
      return Status::invalid_argument(what + " covers tokens [" + std::to_string(seg->from) + ", " +
                                      std::to_string(seg->to) + "), expected to start at " + std::to_string(covered) +
                                      " and end by " + std::to_string(position));
    }
    for (size_t l = 0; l < seg->layers.size(); ++l) {
      v4::LayerState& ls = st.layers[l];
      const KvSegmentLayer& sl = seg->layers[l];
      ls.entries.insert(ls.entries.end(), sl.entries.begin(), sl.entries.end());
      ls.index_keys.insert(ls.index_keys.end(), sl.index_keys.begin(), sl.index_keys.end());
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
