#pragma once
// What a forward pass reads and computes, counted on the calling thread while a benchmark (or its test)
// asks for it: weight bytes of every matmul, KV bytes attended, matmul flops and time, matmul shapes.
// Off by default; when off each hook is one thread-local load.
#include <cstdint>
#include <vector>

#include <mnemo/kernels/weight_view.h>

namespace mnemo::kernels {

struct MatmulShape {
  int64_t tokens = 0, rows = 0, cols = 0;
  int64_t calls = 0;
  int64_t ns = 0;  // wall time of those calls
};

struct Traffic {
  int64_t weight_bytes = 0;  // matmul weights (with their scales) and embedding rows
  int64_t kv_bytes = 0;      // KV entries and indexer keys attended or scored
  double matmul_flops = 0;   // 2 * tokens * rows * cols over every matmul
  int64_t matmul_ns = 0;     // wall time inside the matmuls
  std::vector<MatmulShape> shapes;  // distinct (tokens, rows, cols), in first-seen order
};

// Starts counting on this thread (from zero); stop returns the counts and ends counting.
void traffic_start();
Traffic traffic_stop();
bool traffic_counting();

void count_weight_bytes(int64_t bytes);
void count_kv_bytes(int64_t bytes);
void count_matmul(const WeightView& w, int64_t tokens, int64_t ns);

// Bytes of w's data and the scales it uses.
int64_t weight_bytes(const WeightView& w);

}  // namespace mnemo::kernels
