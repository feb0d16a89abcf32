#include <mnemo/base/check.h>
#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels {

WeightView row_slice(const WeightView& w, int64_t row0, int64_t n_rows) {
  MNEMO_CHECK(row0 >= 0 && n_rows >= 0 && row0 + n_rows <= w.rows);
  WeightView s = w;
  s.rows = n_rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const auto* scale = static_cast<const uint8_t*>(w.scale);
  const int64_t scale_elem = w.scale_type == ScaleType::kF32 ? 4 : 1;
  switch (w.type) {
    case WeightType::kF32: s.data = base + row0 * w.cols * 4; break;
    case WeightType::kBF16: s.data = base + row0 * w.cols * 2; break;
    case WeightType::kF8E4M3Block128:
      s.data = base + row0 * w.cols;
      s.scale_row0 = w.scale_row0 + row0;
      break;
    case WeightType::kFP4E2M1Group32:
      s.data = base + row0 * (w.cols / 2);
      s.scale = scale + row0 * (w.cols / 32) * scale_elem;
      break;
  }
  return s;
}

}  // namespace mnemo::kernels
