// Export/import of a sequence's KV state: a rebuilt sequence decodes bit-identically.
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "support/tiny_model.h"

using namespace mnemo::inference;

TEST_CASE("a sequence rebuilt from its exported state decodes bit-identically", "[v4][kv_state]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  // Just before and after 4- and 128-token block ends, and well after the 16-token window wraps.
  for (int64_t p : {1, 3, 4, 5, 15, 17, 127, 128, 129, 131, 132, 133, 255, 256, 257}) {
    std::vector<TokenId> prompt(all.begin(), all.begin() + p);
    std::vector<TokenId> steps(all.begin() + p, all.begin() + std::min<int64_t>(p + 20, 337));
    Sequence original = m.new_sequence();
    std::vector<float> logits(prompt.size() * V);
    REQUIRE(m.forward(original, prompt, logits));
    for (int64_t span : {0, 128}) {
      auto exported = m.export_state(original, 0, span);
      REQUIRE(exported);
      CHECK(exported->position == p);
      auto rebuilt = m.import_state(exported->segments, exported->tail);
      REQUIRE(rebuilt);
      CHECK(rebuilt->position() == p);
      Sequence reference = m.new_sequence();
      std::vector<float> ref_logits(prompt.size() * V);
      REQUIRE(m.forward(reference, prompt, ref_logits));
      auto want = mnemo::test::decode_steps(m, reference, steps);
      auto got = mnemo::test::decode_steps(m, *rebuilt, steps);
      INFO("position " << p << ", span " << span);
      CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("segments are addressed by token range and exported incrementally", "[v4][kv_state]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  Sequence seq = m.new_sequence();
  std::vector<float> logits(300 * V);
  REQUIRE(m.forward(seq, std::span<const TokenId>(all.data(), 130), std::span<float>(logits.data(), 130 * V)));
  auto first = m.export_state(seq, 0, 128);
  REQUIRE(first);
  REQUIRE(first->segments.size() == 2);  // [0, 128) and [128, 130)
  CHECK(kv_segment_range(first->segments[0])->to == 128);
  REQUIRE(m.forward(seq, std::span<const TokenId>(all.data() + 130, 170), std::span<float>(logits.data(), 170 * V)));
  // Only what follows the last full segment is exported again.
  auto later = m.export_state(seq, 128, 128);
  REQUIRE(later);
  CHECK(later->segments.size() == 2);  // [128, 256) and [256, 300)
  std::vector<std::string> segments{first->segments[0]};
  segments.insert(segments.end(), later->segments.begin(), later->segments.end());
  auto rebuilt = m.import_state(segments, later->tail);
  REQUIRE(rebuilt);
  std::vector<TokenId> steps(all.begin() + 300, all.end());
  auto got = mnemo::test::decode_steps(m, *rebuilt, steps);
  auto want = mnemo::test::decode_steps(m, seq, steps);
  CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
  CHECK_FALSE(m.export_state(seq, 100));  // not on a segment boundary
}

TEST_CASE("state of another model, a gap or a corrupt blob is refused", "[v4][kv_state]") {
  const Model& m = mnemo::test::tiny_model();
  const Model& serving = mnemo::test::tiny_model(Precision::kServing);
  auto all = mnemo::test::tiny_tokens("sequence_337");
  Sequence seq = m.new_sequence();
  std::vector<float> logits(200 * m.config().vocab_size);
  REQUIRE(m.forward(seq, std::span<const TokenId>(all.data(), 200), logits));
  auto ex = m.export_state(seq, 0, 128);
  REQUIRE(ex);
  auto other = serving.import_state(ex->segments, ex->tail);
  REQUIRE_FALSE(other);
  CHECK(other.status().message().find("precision") != std::string::npos);
  auto gap = m.import_state({ex->segments[1]}, ex->tail);
  REQUIRE_FALSE(gap);
  CHECK(gap.status().message().find("expected to start at 0") != std::string::npos);
  std::string cut = ex->tail.substr(0, ex->tail.size() / 2);
  CHECK_FALSE(m.import_state(ex->segments, cut));
  std::string flipped = ex->segments[0];
  flipped[10] ^= 0x20;  // inside the fingerprint
  CHECK_FALSE(m.import_state({flipped, ex->segments[1]}, ex->tail));
  CHECK(m.import_state(ex->segments, ex->tail));
}

TEST_CASE("typed segment and tail contents round-trip to the same blobs", "[v4][kv_state]") {
  const Model& m = mnemo::test::tiny_model();
  auto all = mnemo::test::tiny_tokens("sequence_337");
  Sequence seq = m.new_sequence();
  std::vector<float> logits(all.size() * m.config().vocab_size);
  REQUIRE(m.forward(seq, all, logits));
  auto ex = m.export_state(seq, 0, 128);
  REQUIRE(ex);
  auto seg = read_kv_segment(m, ex->segments[1]);
  REQUIRE(seg);
  CHECK(seg->from == 128);
  CHECK(seg->to == 256);
  REQUIRE(seg->layers.size() == static_cast<size_t>(m.config().num_hidden_layers));
  CHECK(seg->layers[2].ratio == 4);
  CHECK(seg->layers[2].entries.size() == 32 * static_cast<size_t>(m.config().head_dim));
  CHECK(seg->layers[2].index_keys.size() == 32 * static_cast<size_t>(m.config().index_head_dim));
  CHECK(seg->layers[3].entries.size() == static_cast<size_t>(m.config().head_dim));
  CHECK(seg->layers[0].entries.empty());
  CHECK(*write_kv_segment(m, *seg) == ex->segments[1]);
  auto tail = read_kv_tail(m, ex->tail);
  REQUIRE(tail);
  CHECK(tail->position == 337);
  CHECK(*write_kv_tail(m, *tail) == ex->tail);
  seg->layers[2].entries.pop_back();
  CHECK_FALSE(write_kv_segment(m, *seg));
  tail->layers[0].ring.clear();
  CHECK_FALSE(write_kv_tail(m, *tail));
}

TEST_CASE("the fingerprint covers tokenizer.json and the precision", "[v4][kv_state]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("mnemo-fingerprint-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::create_symlink(fs::path(mnemo::test::tiny_dir()) / f, dir / f);
  }
  auto plain = Model::load(dir.string());
  REQUIRE(plain);
  CHECK((*plain)->fingerprint() == mnemo::test::tiny_model().fingerprint());
  CHECK(mnemo::test::tiny_model(Precision::kServing).fingerprint() != mnemo::test::tiny_model().fingerprint());
  std::ofstream(dir / "tokenizer.json") << "{\"model\": {}}";
  auto with_tokenizer = Model::load(dir.string());
  REQUIRE(with_tokenizer);
  CHECK((*with_tokenizer)->fingerprint() != (*plain)->fingerprint());
  fs::remove_all(dir);
}
