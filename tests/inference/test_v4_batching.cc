// Batch invariance and chunking: a sequence's numbers never depend on what else runs or how its
// prefill is split (DESIGN.md, Determinism).
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "support/tiny_model.h"

using mnemo::inference::Model;
using mnemo::inference::Sequence;
using mnemo::inference::SequenceChunk;
using mnemo::inference::TokenId;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("decoding three sequences together gives each the same bits as alone", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  // Three different sequences at different positions: prefixes of different lengths, then 40 decode steps.
  std::vector<std::vector<TokenId>> prompts{{all.begin(), all.begin() + 37},
                                            {all.begin() + 100, all.begin() + 229},
                                            {all.begin() + 5, all.begin() + 6}};
  const int steps = 40;
  std::vector<std::vector<float>> alone(3);
  for (int s = 0; s < 3; ++s) {
    Sequence seq = m.new_sequence();
    std::vector<float> logits(prompts[s].size() * V);
    REQUIRE(m.forward(seq, prompts[s], logits));
    for (int k = 0; k < steps; ++k) {
      TokenId t = all[(50 + 7 * k + s) % all.size()];
      std::vector<float> row(V);
      REQUIRE(m.forward(seq, std::span<const TokenId>(&t, 1), row));
      alone[s].insert(alone[s].end(), row.begin(), row.end());
    }
  }
  std::vector<Sequence> seqs;
  for (int s = 0; s < 3; ++s) {
    seqs.push_back(m.new_sequence());
    std::vector<float> logits(prompts[s].size() * V);
    REQUIRE(m.forward(seqs[s], prompts[s], logits));
  }
  std::vector<std::vector<float>> together(3);
  for (int k = 0; k < steps; ++k) {
    TokenId t[3];
    std::vector<SequenceChunk> chunks;
    for (int s = 0; s < 3; ++s) {
      t[s] = all[(50 + 7 * k + s) % all.size()];
      chunks.push_back({&seqs[s], std::span<const TokenId>(&t[s], 1)});
    }
    std::vector<float> logits(3 * V);
    REQUIRE(m.forward_batch(chunks, logits));
    for (int s = 0; s < 3; ++s) together[s].insert(together[s].end(), logits.begin() + s * V, logits.begin() + (s + 1) * V);
  }
  for (int s = 0; s < 3; ++s) CHECK(same_bits(alone[s], together[s]));
}

TEST_CASE("a prefill chunk batched with decode tokens of other sequences keeps its bits", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  std::vector<TokenId> prompt(all.begin(), all.begin() + 64);
  Sequence solo = m.new_sequence();
  std::vector<float> want(prompt.size() * V);
  REQUIRE(m.forward(solo, prompt, want));

  Sequence a = m.new_sequence(), other = m.new_sequence();
  std::vector<float> tmp(20 * V);
  REQUIRE(m.forward(other, std::span<const TokenId>(all.data() + 200, 20), tmp));
  TokenId t = all[300];
  std::vector<SequenceChunk> chunks{{&other, std::span<const TokenId>(&t, 1)}, {&a, prompt}};
  std::vector<float> logits((1 + prompt.size()) * V);
  REQUIRE(m.forward_batch(chunks, logits));
  std::vector<float> got(logits.begin() + V, logits.end());
  CHECK(same_bits(got, want));
}

TEST_CASE("chunked prefill gives the one-shot logits for chunks of 1, 7, 64 and 300", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  std::vector<TokenId> prompt(all.begin(), all.begin() + 300);
  Sequence one = m.new_sequence();
  std::vector<float> want(prompt.size() * V);
  REQUIRE(m.forward(one, prompt, want));
  for (size_t chunk : {1, 7, 64, 300}) {
    Sequence seq = m.new_sequence();
    std::vector<float> got(prompt.size() * V);
    for (size_t at = 0; at < prompt.size(); at += chunk) {
      size_t len = std::min(chunk, prompt.size() - at);
      REQUIRE(m.forward(seq, std::span<const TokenId>(prompt.data() + at, len),
                        std::span<float>(got.data() + at * V, len * V)));
    }
    float max_abs = 0;
    for (size_t i = 0; i < got.size(); ++i) max_abs = std::max(max_abs, std::fabs(got[i] - want[i]));
    INFO("chunk " << chunk << ": max |dlogit| " << max_abs);
    CHECK(max_abs <= 1e-4f);
    CHECK(same_bits(got, want));  // the kernels' fixed reduction order makes it exact
  }
}

TEST_CASE("forward refuses out-of-vocabulary ids and a sequence twice in one step", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  Sequence seq = m.new_sequence();
  std::vector<float> logits(m.config().vocab_size);
  TokenId bad = static_cast<TokenId>(m.config().vocab_size);
  auto s = m.forward(seq, std::span<const TokenId>(&bad, 1), logits);
  REQUIRE_FALSE(s);
  CHECK(s.message().find("outside the vocabulary") != std::string::npos);
  CHECK(seq.position() == 0);
  TokenId ok = 5;
  std::vector<SequenceChunk> twice{{&seq, std::span<const TokenId>(&ok, 1)}, {&seq, std::span<const TokenId>(&ok, 1)}};
  std::vector<float> two(2 * m.config().vocab_size);
  CHECK_FALSE(m.forward_batch(twice, two));
}

TEST_CASE("asking for last-token logits only gives those rows' exact bits", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t V = m.config().vocab_size;
  auto all = mnemo::test::tiny_tokens("sequence_337");
  std::vector<TokenId> a_prompt(all.begin(), all.begin() + 40), b_prompt(all.begin() + 50, all.begin() + 57);
  Sequence a_full = m.new_sequence(), b_full = m.new_sequence();
  std::vector<float> full((a_prompt.size() + b_prompt.size()) * V);
  std::vector<SequenceChunk> chunks{{&a_full, a_prompt}, {&b_full, b_prompt}};
  REQUIRE(m.forward_batch(chunks, full));
  Sequence a_last = m.new_sequence(), b_last = m.new_sequence();
  std::vector<float> last(2 * V);
  std::vector<SequenceChunk> last_chunks{{&a_last, a_prompt, true}, {&b_last, b_prompt, true}};
  REQUIRE(m.forward_batch(last_chunks, last));
  CHECK(std::memcmp(last.data(), full.data() + (a_prompt.size() - 1) * V, V * sizeof(float)) == 0);
  CHECK(std::memcmp(last.data() + V, full.data() + (a_prompt.size() + b_prompt.size() - 1) * V, V * sizeof(float)) == 0);
  // The sequences' states are the same either way: the next token decodes identically.
  TokenId t = all[100];
  std::vector<float> x(V), y(V);
  REQUIRE(m.forward(a_full, std::span<const TokenId>(&t, 1), x));
  REQUIRE(m.forward(a_last, std::span<const TokenId>(&t, 1), y));
  CHECK(std::memcmp(x.data(), y.data(), V * sizeof(float)) == 0);
}

TEST_CASE("a sequence of another model or the MTP cache is refused, not read out of bounds", "[v4][batch]") {
  const Model& m = mnemo::test::tiny_model();
  const Model& other = mnemo::test::tiny_model(mnemo::inference::Precision::kServing);
  std::vector<float> logits(m.config().vocab_size);
  TokenId t = 5;
  Sequence foreign = other.new_sequence();
  auto s = m.forward(foreign, std::span<const TokenId>(&t, 1), logits);
  REQUIRE_FALSE(s);
  CHECK(s.message() == "the sequence belongs to another model");
  Sequence mtp = m.new_mtp_sequence();
  CHECK_FALSE(m.forward(mtp, std::span<const TokenId>(&t, 1), logits));
  CHECK_FALSE(m.export_state(foreign, 0));
  Sequence main_seq = m.new_sequence();
  std::vector<float> streams(static_cast<size_t>(m.config().hc_mult * m.config().hidden_size));
  CHECK_FALSE(m.mtp_forward(main_seq, streams, std::span<const TokenId>(&t, 1), logits));
}
