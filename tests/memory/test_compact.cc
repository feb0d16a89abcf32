// The compact at-rest mode: lossy, but close enough that decoding from it agrees with the exact
// path.
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;
using inference::TokenId;

namespace {

size_t argmax(const float* row, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}

}  // namespace

TEST_CASE("compact snapshots agree with the exact path over a thousand decode positions",
          "[memory][compact]") {
  const auto& m = test::tiny_model();
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  const size_t n = static_cast<size_t>(m.config().max_position_embeddings);  // 1024
  auto tokens = test::long_tokens(n, 7);
  std::span<const TokenId> all(tokens);
  // The exact path: one uninterrupted sequence (prefill in one chunk gives the decode bits).
  inference::Sequence exact = m.new_sequence();
  std::vector<float> want = test::run(m, exact, all);

  test::TempDir dir;
  StoreOptions o;
  o.chunk_tokens = 128;
  auto store = Store::open(dir.path(), o);
  REQUIRE(store);
  Store& s = **store;
  size_t agree = 0, positions = 0;
  double abs_sum = 0;
  // Two restore points, each after at least one lossy chunk; every position after them is compared.
  for (size_t at : {size_t{128}, size_t{384}}) {
    std::string id = "c" + std::to_string(at);
    REQUIRE(s.create_session(id, "acme"));
    inference::Sequence live = m.new_sequence();
    test::run(m, live, all.first(at));
    SnapshotSource src{&m, &live, all.first(at), AtRest::kCompact};
    REQUIRE(s.commit_step(id, {}, &src));
    auto restored = s.restore(m, id, {.allow_compact = true});
    REQUIRE(restored);
    REQUIRE(restored->info.chunk_keys.size() == at / 128);
    const size_t end = n;
    std::vector<float> got = test::run(m, restored->sequence, all.subspan(at, end - at));
    for (size_t p = at; p < end; ++p) {
      const float* w = want.data() + p * V;
      const float* g = got.data() + (p - at) * V;
      agree += argmax(w, V) == argmax(g, V);
      for (size_t v = 0; v < V; ++v) abs_sum += std::fabs(w[v] - g[v]);
      ++positions;
    }
  }
  const double top1 = static_cast<double>(agree) / static_cast<double>(positions);
  const double mean_abs = abs_sum / static_cast<double>(positions * V);
  INFO("positions " << positions << ", top-1 agreement " << top1 << ", mean |dlogit| " << mean_abs);
  CHECK(positions >= 1000);
  CHECK(top1 >= 0.95);
  CHECK(mean_abs <= 0.05);
  CHECK(mean_abs > 0);  // lossy indeed: the codec is not a no-op
}
