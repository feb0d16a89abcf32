// KV snapshots: exact restore, incremental commits, content addressing, and refusal of bad state.
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;
using inference::TokenId;
using test::small_chunks;

namespace {

// Commits a step with a snapshot of `seq` whose token ids are tokens[0, position).
StepCommit commit(Store& s, const std::string& session, const inference::Sequence& seq,
                  const std::vector<TokenId>& tokens, AtRest mode = AtRest::kExact) {
  SnapshotSource src{&test::tiny_model(), &seq,
                     std::span<const TokenId>(tokens.data(), static_cast<size_t>(seq.position())),
                     mode};
  std::vector<NewEvent> events{{"tool.result", "{\"ok\":true}"}};
  auto c = s.commit_step(session, events, &src);
  REQUIRE(c);
  return *c;
}

}  // namespace

TEST_CASE("a restored session decodes the same tokens as an uninterrupted one",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto tokens = test::long_tokens(330);
  std::span<const TokenId> all(tokens);
  for (int64_t p : {1, 127, 128, 129, 300}) {
    INFO("position " << p);
    std::string id = "s" + std::to_string(p);
    inference::Sequence live = m.new_sequence();
    test::run(m, live, all.first(static_cast<size_t>(p)));
    {
      auto store = Store::open(dir.path(), small_chunks());
      REQUIRE(store);
      REQUIRE((*store)->create_session(id, "acme"));
      StepCommit c = commit(**store, id, live, tokens);
      CHECK(c.snapshot == 1);
      CHECK(c.seqs.size() == 2);  // tool.result, step.committed
    }
    auto store = Store::open(dir.path(), small_chunks());
    REQUIRE(store);
    auto restored = (*store)->restore(m, id);
    REQUIRE(restored);
    CHECK(restored->sequence.position() == p);
    CHECK(restored->tokens == std::vector<TokenId>(tokens.begin(), tokens.begin() + p));
    auto steps = all.subspan(static_cast<size_t>(p), 20);
    CHECK(test::same_bits(test::decode_steps(m, restored->sequence, steps),
                          test::decode_steps(m, live, steps)));
    auto events = (*store)->read_events(id);
    REQUIRE(events);
    CHECK(events->back().type == "step.committed");
    CHECK(events->back().payload.find("\"snapshot\":1") != std::string::npos);
  }
}

TEST_CASE("a snapshot after a step writes only the new chunks and the new tail",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  REQUIRE(s.create_session("a", "acme"));
  auto tokens = test::long_tokens(420);
  std::span<const TokenId> all(tokens);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, all.first(300));
  CHECK(commit(s, "a", live, tokens).new_chunks == 2);
  test::run(m, live, all.subspan(300, 37));
  StepCommit second = commit(s, "a", live, tokens);
  CHECK(second.new_chunks == 0);
  test::run(m, live, all.subspan(337, 63));
  StepCommit third = commit(s, "a", live, tokens);
  CHECK(third.new_chunks == 1);
  CHECK(third.snapshot == 3);
  CHECK(s.stats()->chunks == 3);
  CHECK(s.stats()->snapshots == 2);  // keep_snapshots: the first is gone
  CHECK_FALSE(s.restore(m, "a", {.snapshot = 1}));
  auto restored = s.restore(m, "a");
  REQUIRE(restored);
  auto steps = all.subspan(400, 20);
  CHECK(test::same_bits(test::decode_steps(m, restored->sequence, steps),
                        test::decode_steps(m, live, steps)));
}

TEST_CASE("identical prefixes of one tenant are stored once, other tenants never share",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  auto tokens = test::long_tokens(260);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, tokens);
  REQUIRE(s.create_session("a", "acme"));
  REQUIRE(s.create_session("b", "acme"));
  REQUIRE(s.create_session("c", "other"));
  CHECK(commit(s, "a", live, tokens).new_chunks == 2);
  CHECK(commit(s, "b", live, tokens).new_chunks == 0);
  CHECK(commit(s, "c", live, tokens).new_chunks == 2);
  CHECK(s.stats()->chunks == 4);
  CHECK(s.restore(m, "b"));
  CHECK(s.restore(m, "c"));
}

TEST_CASE("a chunk whose bytes fail their hash is an error, never wrong output",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto tokens = test::long_tokens(200);
  {
    auto store = Store::open(dir.path(), small_chunks());
    REQUIRE(store);
    REQUIRE((*store)->create_session("a", "acme"));
    inference::Sequence live = m.new_sequence();
    test::run(m, live, tokens);
    commit(**store, "a", live, tokens);
  }
  test::edit_family(dir.path(), "kv_chunks", [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
    it->SeekToFirst();
    REQUIRE(it->Valid());
    std::string value = it->value().ToString();
    value[value.size() / 2] ^= 0x01;  // one bit of one float
    REQUIRE(db.Put(rocksdb::WriteOptions(), cf, it->key(), value).ok());
  });
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  auto restored = (*store)->restore(m, "a");
  REQUIRE_FALSE(restored);
  CHECK(restored.status().code() == StatusCode::kCorruption);
  CHECK(restored.status().message().find("SHA-256") != std::string::npos);
  auto report = (*store)->verify();
  REQUIRE(report);
  CHECK_FALSE(report->ok());
}

TEST_CASE("verify names the session whose snapshot chain is broken", "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto tokens = test::long_tokens(300);
  {
    auto store = Store::open(dir.path(), small_chunks());
    REQUIRE(store);
    REQUIRE((*store)->create_session("broken-one", "acme"));
    inference::Sequence live = m.new_sequence();
    test::run(m, live, tokens);
    commit(**store, "broken-one", live, tokens);
    auto report = (*store)->verify();
    REQUIRE(report);
    CHECK(report->ok());
  }
  // Two well-formed chunks under each other's keys: each passes its own hash, the chain does not.
  test::edit_family(dir.path(), "kv_chunks", [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
    std::vector<std::pair<std::string, std::string>> kv;
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      kv.emplace_back(it->key().ToString(), it->value().ToString());
    REQUIRE(kv.size() == 2);
    REQUIRE(db.Put(rocksdb::WriteOptions(), cf, kv[0].first, kv[1].second).ok());
    REQUIRE(db.Put(rocksdb::WriteOptions(), cf, kv[1].first, kv[0].second).ok());
  });
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  auto report = (*store)->verify();
  REQUIRE(report);
  REQUIRE_FALSE(report->ok());
  for (const std::string& p : report->problems) {
    INFO(p);
    CHECK(p.find("session broken-one snapshot 1, chunk") != std::string::npos);
  }
  CHECK_FALSE((*store)->restore(m, "broken-one"));
}

TEST_CASE("a missing chunk or another model's snapshot is refused", "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  const auto& serving = test::tiny_model(inference::Precision::kServing);
  test::TempDir dir;
  auto tokens = test::long_tokens(200);
  {
    auto store = Store::open(dir.path(), small_chunks());
    REQUIRE(store);
    REQUIRE((*store)->create_session("a", "acme"));
    inference::Sequence live = m.new_sequence();
    test::run(m, live, tokens);
    commit(**store, "a", live, tokens);
    auto other = (*store)->restore(serving, "a");
    REQUIRE_FALSE(other);
    CHECK(other.status().message().find("another model") != std::string::npos);
  }
  test::edit_family(dir.path(), "kv_chunks", [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
    it->SeekToFirst();
    REQUIRE(it->Valid());
    REQUIRE(db.Delete(rocksdb::WriteOptions(), cf, it->key()).ok());
  });
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  auto restored = (*store)->restore(m, "a");
  REQUIRE_FALSE(restored);
  CHECK(restored.status().message().find("missing") != std::string::npos);
}

TEST_CASE("exact resume refuses a compact snapshot unless lossy state is allowed",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  REQUIRE(s.create_session("a", "acme"));
  auto tokens = test::long_tokens(300);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, tokens);
  commit(s, "a", live, tokens, AtRest::kCompact);
  auto exact = s.restore(m, "a");
  REQUIRE_FALSE(exact);
  CHECK(exact.status().message().find("compact") != std::string::npos);
  auto lossy = s.restore(m, "a", {.allow_compact = true});
  REQUIRE(lossy);
  CHECK(lossy->sequence.position() == 300);
  CHECK(s.stats()->compact_chunks == 2);
  CHECK(s.verify()->ok());
}

TEST_CASE("a snapshot from a state exported beforehand restores like one from the live sequence",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  Store& s = **store;
  REQUIRE(s.create_session("a", "acme"));
  const int64_t span = s.chunk_tokens();
  auto tokens = test::long_tokens(420);
  std::span<const TokenId> all(tokens);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, all.first(300));
  CHECK(commit(s, "a", live, tokens).new_chunks == 2);
  test::run(m, live, all.subspan(300, 100));

  // Exported from the last snapshot's chunk boundary; the live sequence moves on before the commit.
  auto exported = m.export_state(live, 300 / span * span, span);
  REQUIRE(exported);
  std::vector<TokenId> held(tokens.begin(), tokens.begin() + 400);
  SnapshotSource src;
  src.model = &m;
  src.exported = &*exported;
  src.tokens = held;
  inference::Sequence reference = m.new_sequence();
  test::run(m, reference, all.first(400));
  test::run(m, live, all.subspan(400, 5));
  std::vector<NewEvent> events{{"tool.result", "{\"ok\":true}"}};
  auto c = s.commit_step("a", events, &src);
  REQUIRE(c);
  CHECK(c->snapshot_skipped.empty());
  CHECK(c->new_chunks == 1);
  auto restored = s.restore(m, "a");
  REQUIRE(restored);
  CHECK(restored->sequence.position() == 400);
  auto steps = all.subspan(400, 20);
  CHECK(test::same_bits(test::decode_steps(m, restored->sequence, steps),
                        test::decode_steps(m, reference, steps)));

  // Exported from too late a token for the chunks the store lacks: the events land, the snapshot
  // does not, and the commit says why.
  REQUIRE(s.create_session("b", "other"));  // another tenant: a shares none of its chunks
  auto late = m.export_state(reference, 2 * span, span);
  REQUIRE(late);
  src.exported = &*late;
  src.tokens = std::span<const TokenId>(tokens.data(), static_cast<size_t>(reference.position()));
  auto skipped = s.commit_step("b", events, &src);
  INFO(skipped.status().message());
  REQUIRE(skipped);
  CHECK(skipped->snapshot == 0);
  CHECK(skipped->snapshot_skipped.find("after the first chunk the store lacks") !=
        std::string::npos);
  CHECK(skipped->seqs.size() == 1);
  CHECK_FALSE(s.restore(m, "b"));
}

TEST_CASE("step.committed goes after the step's events and before those that end the run",
          "[memory][snapshot]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto store = Store::open(dir.path(), small_chunks());
  REQUIRE(store);
  REQUIRE((*store)->create_session("a", "acme"));
  auto tokens = test::long_tokens(40);
  inference::Sequence live = m.new_sequence();
  test::run(m, live, std::span<const TokenId>(tokens).first(40));
  SnapshotSource src{&m, &live, tokens, AtRest::kExact};
  std::vector<NewEvent> events{{"message", "{}"}, {"limit", "{}"}, {"run.finished", "{}"}};
  auto c = (*store)->commit_step("a", events, &src);
  REQUIRE(c);
  auto log = (*store)->read_events("a");
  REQUIRE(log);
  std::vector<std::string> types;
  for (const auto& e : *log) types.push_back(e.type);
  CHECK(types == std::vector<std::string>{"session.created", "message", "step.committed", "limit",
                                          "run.finished"});
  CHECK(c->committed_seq == 3);
  CHECK(c->seqs == std::vector<uint64_t>{2, 3, 4, 5});
}
