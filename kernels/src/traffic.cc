#include <mnemo/kernels/traffic.h>

namespace mnemo::kernels {
namespace {

thread_local Traffic* t_traffic = nullptr;

}  // namespace

void traffic_start() {
  delete t_traffic;
  t_traffic = new Traffic;
}

Traffic traffic_stop() {
  Traffic out;
  if (t_traffic) out = std::move(*t_traffic);
  delete t_traffic;
  t_traffic = nullptr;
  return out;
}

bool traffic_counting() { return t_traffic != nullptr; }

void count_weight_bytes(int64_t bytes) {
  if (t_traffic) t_traffic->weight_bytes += bytes;
}

void count_kv_bytes(int64_t bytes) {
  if (t_traffic) t_traffic->kv_bytes += bytes;
}

void count_matmul(const WeightView& w, int64_t tokens, int64_t ns) {
  Traffic* t = t_traffic;
  if (!t) return;
  t->weight_bytes += weight_bytes(w);
  t->matmul_flops += 2.0 * static_cast<double>(tokens) * static_cast<double>(w.rows) * static_cast<double>(w.cols);
  t->matmul_ns += ns;
  for (MatmulShape& s : t->shapes) {
    if (s.tokens == tokens && s.rows == w.rows && s.cols == w.cols) {
      ++s.calls;
      s.ns += ns;
      return;
    }
  }
  t->shapes.push_back({tokens, w.rows, w.cols, 1, ns});
}

int64_t weight_bytes(const WeightView& w) {
  const int64_t scale_elem = w.scale_type == ScaleType::kF32 ? 4 : 1;
  switch (w.type) {
    case WeightType::kF32: return w.rows * w.cols * 4;
    case WeightType::kBF16: return w.rows * w.cols * 2;
    case WeightType::kF8E4M3Block128: {
      const int64_t first = w.scale_row0 / 128, last = (w.scale_row0 + w.rows - 1) / 128;
      return w.rows * w.cols + (last - first + 1) * ((w.cols + 127) / 128) * scale_elem;
    }
    case WeightType::kFP4E2M1Group32: return w.rows * w.cols / 2 + w.rows * (w.cols / 32) * scale_elem;
  }
  return 0;
}

}  // namespace mnemo::kernels
