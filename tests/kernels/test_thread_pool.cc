// The thread pool under many short back-to-back regions (a decode step runs hundreds): no range is
// lost, run twice, or run after its region returned.
#include <mnemo/kernels/thread_pool.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <vector>

TEST_CASE("thousands of short parallel regions each cover their indices exactly once", "[kernels][threads]") {
  std::vector<std::atomic<int>> hits(64);
  for (int region = 0; region < 20000; ++region) {
    const int64_t n = 1 + region % 13;
    for (int64_t i = 0; i < n; ++i) hits[i].store(0);
    mnemo::kernels::parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += hits[i].load() != 1;
    REQUIRE(bad == 0);
  }
}

TEST_CASE("a parallel_for inside a parallel region runs inline instead of deadlocking", "[kernels][threads]") {
  std::vector<std::atomic<int>> hits(40 * 40);
  mnemo::kernels::parallel_for(40, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      mnemo::kernels::parallel_for(40, 1, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) hits[i * 40 + j].fetch_add(1);
      });
    }
  });
  for (auto& h : hits) REQUIRE(h.load() == 1);
}
