#pragma once
// One process-wide pool of worker threads for the kernels: started once, no thread creation per op.
// parallel_for splits [0, n) into contiguous ranges; the calling thread takes part and returns when
// every range is done. Which thread computes a range never changes a result: each output element is
// computed by exactly one range in a fixed order.
#include <cstdint>
#include <functional>

namespace mnemo::kernels {

// Number of threads parallel_for uses (the caller included): MNEMO_THREADS, else all hardware threads.
int thread_count();

// Calls fn(begin, end) over disjoint ranges covering [0, n), each at least `grain` long (but the last).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace mnemo::kernels
