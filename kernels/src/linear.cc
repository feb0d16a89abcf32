#include <mnemo/kernels/linear.h>
#include <mnemo/kernels/thread_pool.h>
#include <mnemo/kernels/traffic.h>

#include <algorithm>
#include <chrono>

#include "cpu/linear_cpu.h"

namespace mnemo::kernels {

Status linear(const float* x, int64_t n_tokens, const WeightView& w, float* y) {
  if (n_tokens < 0 || w.rows <= 0 || w.cols <= 0 || !w.data || (n_tokens > 0 && (!x || !y))) {
    return Status::invalid_argument("linear: bad shapes or null buffers");
  }
  const bool quantised = w.type == WeightType::kF8E4M3Block128 || w.type == WeightType::kFP4E2M1Group32;
  if (quantised && (!w.scale || w.scale_type == ScaleType::kNone)) {
    return Status::invalid_argument("linear: FP8/FP4 weights need their scales");
  }
  if (w.type == WeightType::kFP4E2M1Group32 && w.cols % 32 != 0) {
    return Status::invalid_argument("linear: FP4 weights need a multiple of 32 inputs");
  }
  const bool counting = traffic_counting();
  const auto start = counting ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  // Rows are split across threads; each output element is still one fixed-order dot product.
  const int64_t work_per_row = n_tokens * w.cols;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(work_per_row, 1));
  parallel_for(w.rows, grain, [&](int64_t begin, int64_t end) { linear_rows(x, n_tokens, w, begin, end, y); });
  if (counting) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
    count_matmul(w, n_tokens, ns.count());
  }
  return Status::ok();
}

void linear_rows(const float* x, int64_t n_tokens, const WeightView& w, int64_t row_begin, int64_t row_end,
                 float* y) {
  cpu::linear_rows(x, n_tokens, w, row_begin, row_end, y);
}

}  // namespace mnemo::kernels
