// Export and import of a sequence's KV state: segments of completed compressed entries and indexer
// keys by token range, and the tail (window rings, compressor carry) at the sequence's position.
#include <mnemo/inference/kv_state.h>

#include "kv_blob.h"
#include "model_impl.h"

namespace mnemo::inference {
namespace {

constexpr uint32_t kSegmentMagic = 0x534B4E4D;  // "MNKS"
constexpr uint32_t kTailMagic = 0x544B4E4D;     // "MNKT"
constexpr uint64_t kMaxFloats = uint64_t{1} << 34;

void put_header(BlobWriter& w, uint32_t magic, const Model::Impl& m) {
  w.put(magic);
  w.put(kKvFormatVersion);
  w.put_bytes(m.fingerprint);  // 64 hex chars
  w.put(static_cast<uint8_t>(m.precision));
}

Status check_header(BlobReader& r, uint32_t magic, const Model::Impl& m, const char* what) {
  uint32_t got_magic = 0, version = 0;
  std::string fingerprint;
  uint8_t precision = 0;
  if (!r.get(got_magic) || got_magic != magic) return Status::corruption(std::string(what) + ": not a mnemo KV blob");
  if (!r.get(version) || version != kKvFormatVersion) {
    return Status::unsupported(std::string(what) + ": KV format version " + std::to_string(version) +
                               ", this build reads version " + std::to_string(kKvFormatVersion));
  }
  if (!r.get_bytes(m.fingerprint.size(), fingerprint) || !r.get(precision)) {
    return Status::corruption(std::string(what) + ": truncated header");
  }
  if (fingerprint != m.fingerprint) {
    return Status::invalid_argument(std::string(what) + ": KV state of another model (fingerprint " +
                                    fingerprint.substr(0, 12) + "..., this model " + m.fingerprint.substr(0, 12) +
                                    "...)");
  }
  if (precision != static_cast<uint8_t>(m.precision)) {
    return Status::invalid_argument(std::string(what) + ": KV state of " +
                                    std::string(precision_name(static_cast<Precision>(precision))) +
                                    " precision, this engine runs " + std::string(precision_name(m.precision)));
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

std::string export_segment(const Model::Impl& m, const v4::SequenceState& st, int64_t from, int64_t to) {
  const v4::Dims& dims = m.model->dims();
  BlobWriter w;
  put_header(w, kSegmentMagic, m);
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

void put_compressor(BlobWriter& w, const v4::CompressorState& c) {
  w.put_floats(c.kv);
  w.put_floats(c.score);
  w.put_floats(c.prev_kv);
  w.put_floats(c.prev_score);
}

bool get_compressor(BlobReader& r, v4::CompressorState& c) {
  return r.get_floats(c.kv, kMaxFloats) && r.get_floats(c.score, kMaxFloats) && r.get_floats(c.prev_kv, kMaxFloats) &&
         r.get_floats(c.prev_score, kMaxFloats);
}

// Sizes every part of a layer's tail must have at position p, so a corrupt or foreign tail is refused.
Status check_layer_tail(const v4::Dims& dims, int layer, int64_t p, const v4::LayerState& ls) {
  const int r = dims.ratios[layer];
  auto fail = [&](const char* part) {
    return Status::corruption("KV tail: layer " + std::to_string(layer) + " " + part + " has the wrong size");
  };
  size_t ring = p == 0 ? 0 : static_cast<size_t>(dims.window) * dims.head_dim;
  if (ls.ring.size() != ring) return fail("window ring");
  auto check = [&](const v4::CompressorState& c, int width, bool overlap) -> bool {
    size_t row = static_cast<size_t>(overlap ? 2 * width : width);
    size_t partial = static_cast<size_t>(p % r) * row;
    size_t prev = overlap && p >= r ? static_cast<size_t>(r) * row : 0;
    return c.kv.size() == partial && c.score.size() == partial && c.prev_kv.size() == prev &&
           c.prev_score.size() == prev;
  };
  if (r > 0 && !check(ls.compressor, dims.head_dim, r == 4)) return fail("compressor carry");
  if (r == 4 && !check(ls.index_compressor, dims.index_dim, true)) return fail("indexer compressor carry");
  return Status::ok();
}

}  // namespace

Result<KvSegmentRange> kv_segment_range(std::string_view segment) {
  BlobReader r(segment);
  uint32_t magic = 0, version = 0;
  std::string fingerprint;
  uint8_t precision;
  KvSegmentRange range;
  if (!r.get(magic) || magic != kSegmentMagic || !r.get(version) || !r.get_bytes(64, fingerprint) ||
      !r.get(precision) || !r.get(range.from) || !r.get(range.to)) {
    return Status::corruption("not a mnemo KV segment");
  }
  return range;
}

Result<KvExport> Model::export_state(const Sequence& seq, int64_t from, int64_t segment_span) const {
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
  for (int64_t at = from; at < st.pos;) {
    int64_t to = segment_span == 0 ? st.pos : std::min(st.pos, at + segment_span);
    out.segments.push_back(export_segment(*impl_, st, at, to));
    at = to;
  }
  const v4::Dims& dims = impl_->model->dims();
  BlobWriter w;
  put_header(w, kTailMagic, *impl_);
  w.put(st.pos);
  for (int l = 0; l < dims.n_layers; ++l) {
    const v4::LayerState& ls = st.layers[l];
    w.put_floats(ls.ring);
    put_compressor(w, ls.compressor);
    put_compressor(w, ls.index_compressor);
  }
  out.tail = w.take();
  return out;
}

Result<Sequence> Model::import_state(const std::vector<std::string>& segments, std::string_view tail) const {
  const v4::Dims& dims = impl_->model->dims();
  v4::SequenceState st = impl_->model->new_sequence();
  BlobReader tr(tail);
  MNEMO_RETURN_IF_ERROR(check_header(tr, kTailMagic, *impl_, "KV tail"));
  int64_t position = 0;
  if (!tr.get(position) || position < 0 || position > impl_->config.max_position_embeddings) {
    return Status::corruption("KV tail: bad position");
  }
  for (int l = 0; l < dims.n_layers; ++l) {
    v4::LayerState& ls = st.layers[l];
    if (!tr.get_floats(ls.ring, kMaxFloats) || !get_compressor(tr, ls.compressor) ||
        !get_compressor(tr, ls.index_compressor)) {
      return Status::corruption("KV tail: truncated at layer " + std::to_string(l));
    }
    MNEMO_RETURN_IF_ERROR(check_layer_tail(dims, l, position, ls));
  }
  if (!tr.done()) return Status::corruption("KV tail: trailing bytes");

  int64_t covered = 0;
  for (size_t k = 0; k < segments.size(); ++k) {
    std::string what = "KV segment " + std::to_string(k);
    BlobReader r(segments[k]);
    MNEMO_RETURN_IF_ERROR(check_header(r, kSegmentMagic, *impl_, what.c_str()));
    int64_t from = 0, to = 0;
    if (!r.get(from) || !r.get(to)) return Status::corruption(what + ": truncated");
    if (from != covered || to < from || to > position) {
      return Status::invalid_argument(what + " covers tokens [" + std::to_string(from) + ", " + std::to_string(to) +
                                      "), expected to start at " + std::to_string(covered) + " and end by " +
                                      std::to_string(position));
    }
    for (int l = 0; l < dims.n_layers; ++l) {
      std::vector<float> entries, keys;
      if (!r.get_floats(entries, kMaxFloats) || !r.get_floats(keys, kMaxFloats)) {
        return Status::corruption(what + ": truncated at layer " + std::to_string(l));
      }
      auto rows = entry_range(dims.ratios[l], from, to);
      size_t n = rows.second - rows.first;
      size_t n_keys = dims.ratios[l] == 4 ? n : 0;
      if (entries.size() != n * dims.head_dim || keys.size() != n_keys * dims.index_dim) {
        return Status::corruption(what + ": layer " + std::to_string(l) + " has the wrong number of entries");
      }
      v4::LayerState& ls = st.layers[l];
      ls.entries.insert(ls.entries.end(), entries.begin(), entries.end());
      ls.index_keys.insert(ls.index_keys.end(), keys.begin(), keys.end());
    }
    if (!r.done()) return Status::corruption(what + ": trailing bytes");
    covered = to;
  }
  if (covered != position) {
    return Status::invalid_argument("KV segments cover tokens [0, " + std::to_string(covered) +
                                    ") but the tail is at position " + std::to_string(position));
  }
  st.pos = position;
  return Sequence(std::make_unique<Sequence::Impl>(Sequence::Impl{std::move(st)}));
}

}  // namespace mnemo::inference
