// Cross-session prefix reuse, garbage collection (TTL, size cap) and verification.
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>
#include <thread>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;
using inference::TokenId;
using test::small_chunks;

namespace {

std::vector<TokenId> joined(const std::vector<TokenId>& head, size_t keep,
                            const std::vector<TokenId>& rest) {
  std::vector<TokenId> out(head.begin(), head.begin() + static_cast<ptrdiff_t>(keep));
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace

TEST_CASE("a prompt that starts with a stored prefix imports it instead of prefilling",
          "[memory][prefix]") {
  const auto& m = test::tiny_model();
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  auto a = test::long_tokens(600, 3);
  std::vector<float> last(V);
  auto first = s.prefill_with_reuse(m, "acme", a, last);
  REQUIRE(first);
  CHECK(first->reused_tokens == 0);
  CHECK(s.stats()->prefixes == 2);  // tails at 256 and 512

  auto b = joined(a, 520, test::long_tokens(180, 9));
  auto c = joined(a, 300, test::long_tokens(50, 11));
  std::vector<TokenId> exactly_512(a.begin(), a.begin() + 512);
  for (auto [prompt, reused] :
       {std::pair{&b, 512}, std::pair{&c, 256}, std::pair{&exactly_512, 256}}) {
    INFO("prompt of " << prompt->size() << " tokens");
    std::vector<float> got(V);
    auto resumed = s.prefill_with_reuse(m, "acme", *prompt, got);
    REQUIRE(resumed);
    CHECK(resumed->reused_tokens == reused);
    inference::Sequence plain = m.new_sequence();
    std::vector<float> want = test::run(m, plain, *prompt);
    CHECK(std::memcmp(got.data(), want.data() + want.size() - V, V * sizeof(float)) == 0);
    auto next = test::long_tokens(8, 21);
    CHECK(test::same_bits(test::decode_steps(m, resumed->sequence, next), test::decode_steps(m, plain, next)));
  }
  std::vector<float> other(V);
  auto stranger = s.prefill_with_reuse(m, "other", b, other);
  REQUIRE(stranger);
  CHECK(stranger->reused_tokens == 0);  // another tenant's salt: no shared chunk keys
}

TEST_CASE("gc drops expired snapshots and then every chunk nothing references", "[memory][gc]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  auto tokens = test::long_tokens(300);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, tokens);
  REQUIRE(s.create_session("a", "acme"));
  SnapshotSource src{&m, &live, tokens, AtRest::kExact};
  REQUIRE(s.commit_step("a", {}, &src));
  std::vector<float> last(static_cast<size_t>(m.config().vocab_size));
  REQUIRE(s.prefill_with_reuse(m, "acme", test::long_tokens(300, 5), last));

  auto kept = s.gc();
  REQUIRE(kept);
  CHECK(kept->chunks_deleted == 0);
  CHECK(kept->bytes_live > 0);
  CHECK(s.restore(m, "a"));

  auto expired = s.gc(
      {.now_unix_ms = s.snapshot_info("a")->created_unix_ms + 10'000, .snapshot_ttl_ms = 1000});
  REQUIRE(expired);
  CHECK(expired->snapshots_dropped == 1);
  CHECK(expired->prefixes_dropped == 1);
  CHECK(expired->chunks_deleted == 2);  // both share sequence_337's first 256 tokens
  CHECK(expired->bytes_live == 0);
  CHECK(s.stats()->chunks == 0);
  CHECK_FALSE(s.restore(m, "a"));  // the caller prefills
  CHECK(s.verify()->ok());
  CHECK(s.read_events("a")->size() == 2);  // the log outlives its snapshots
}

TEST_CASE("gc under a size cap drops the oldest snapshots first", "[memory][gc]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  for (const char* id : {"old", "new"}) {
    auto tokens = test::long_tokens(260, id[0]);
    inference::Sequence live = m.new_sequence();
    test::run(m, live, tokens);
    REQUIRE(s.create_session(id, id));  // own tenants: nothing shared
    SnapshotSource src{&m, &live, tokens, AtRest::kExact};
    REQUIRE(s.commit_step(id, {}, &src));
    // "new" is committed strictly after "old" on the store's clock (milliseconds since the epoch),
    // however fast the machine: wait for the clock to move rather than for a fixed time.
    const auto ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    for (const auto at = ms(); ms() <= at;) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto all = s.gc();
  REQUIRE(all);
  auto capped = s.gc({.max_bytes = all->bytes_live - 1});
  REQUIRE(capped);
  CHECK(capped->snapshots_dropped == 1);
  CHECK(capped->chunks_deleted == 2);
  CHECK(capped->bytes_live <= all->bytes_live / 2 + 1);
  CHECK_FALSE(s.restore(m, "old"));
  CHECK(s.restore(m, "new"));
  CHECK(s.verify()->ok());
}
