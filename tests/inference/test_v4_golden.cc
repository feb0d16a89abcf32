// The forward pass against golden-tiny: logits and intermediates of the official reference.
#include <mnemo/inference/model.h>

#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "support/npy.h"
#include "support/tiny_model.h"

using mnemo::inference::Model;
using mnemo::inference::TokenId;
using mnemo::test::load_npy;
using mnemo::test::NpyArray;
using mnemo::test::tiny_dir;

namespace {

size_t argmax(const float* v, size_t n) { return static_cast<size_t>(std::max_element(v, v + n) - v); }

// Max |a - b| over rows; also counts rows whose argmax differs.
struct Diff {
  float max_abs = 0;
  int argmax_mismatches = 0;
};

Diff compare_rows(const float* got, const NpyArray& want, int64_t rows, int64_t row_offset = 0) {
  Diff d;
  int64_t n = want.shape[1];
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = want.row(r + row_offset);
    const float* g = got + r * n;
    for (int64_t c = 0; c < n; ++c) d.max_abs = std::max(d.max_abs, std::fabs(g[c] - w[c]));
    if (argmax(g, static_cast<size_t>(n)) != argmax(w, static_cast<size_t>(n))) ++d.argmax_mismatches;
  }
  return d;
}

}  // namespace

TEST_CASE("fp32 prefill of 300 tokens matches the reference logits and intermediates", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model();
  auto toks = mnemo::test::tiny_tokens("prefill_a_tokens");
  const int64_t vocab = m.config().vocab_size;
  std::vector<float> logits(toks.size() * vocab);
  auto seq = m.new_sequence();
  mnemo::inference::ForwardOutputs out;
  out.keep_layers = true;
  REQUIRE(m.forward(seq, toks, logits, &out));

  auto check_rel = [](const std::vector<float>& got, const NpyArray& want, size_t count, const char* what) {
    double ss = 0, max_err = 0;
    for (size_t i = 0; i < count; ++i) {
      ss += static_cast<double>(want.data[i]) * want.data[i];
      max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - want.data[i])));
    }
    double rms = std::sqrt(ss / static_cast<double>(count));
    INFO(what << ": max error " << max_err << " vs rms " << rms);
    CHECK(max_err <= 1e-4 * rms * 10);
  };
  const size_t d = static_cast<size_t>(m.config().hidden_size);
  auto attn = load_npy(tiny_dir() + "/prefill300_layer_attn_out.npy");
  auto ffn = load_npy(tiny_dir() + "/prefill300_layer_ffn_out.npy");
  for (size_t l = 0; l < 6; ++l) {
    std::vector<float> want_attn(attn.data.begin() + l * 144 * d, attn.data.begin() + (l + 1) * 144 * d);
    NpyArray a{{144, static_cast<int64_t>(d)}, want_attn};
    check_rel(out.attn_out[l], a, 144 * d, "attention output");
    std::vector<float> want_ffn(ffn.data.begin() + l * 144 * d, ffn.data.begin() + (l + 1) * 144 * d);
    NpyArray f{{144, static_cast<int64_t>(d)}, want_ffn};
    check_rel(out.ffn_out[l], f, 144 * d, "moe output");
  }
  check_rel(out.hc_head_out, load_npy(tiny_dir() + "/prefill300_hc_head_out.npy"), 300 * d, "hc head");

  Diff diff = compare_rows(logits.data(), load_npy(tiny_dir() + "/prefill300_logits.npy"), 300);
  INFO("max |dlogit| " << diff.max_abs);
  CHECK(diff.max_abs <= 1e-3f);
  CHECK(diff.argmax_mismatches == 0);
}

TEST_CASE("fp32 token-by-token decode matches the reference logits", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t vocab = m.config().vocab_size;
  auto prefill = mnemo::test::tiny_tokens("decode_b_prefill_tokens");
  auto steps = mnemo::test::tiny_tokens("decode_b_step_tokens");
  auto seq = m.new_sequence();
  std::vector<float> logits(prefill.size() * vocab);
  REQUIRE(m.forward(seq, prefill, logits));
  std::vector<float> got = mnemo::test::decode_steps(m, seq, steps);
  Diff diff = compare_rows(got.data(), load_npy(tiny_dir() + "/decode_logits.npy"), 300);
  INFO("max |dlogit| " << diff.max_abs);
  CHECK(diff.max_abs <= 1e-3f);
  CHECK(diff.argmax_mismatches == 0);
}

TEST_CASE("fp32 greedy continuation gives the reference's 40 tokens", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t vocab = m.config().vocab_size;
  auto prompt = mnemo::test::tiny_tokens("greedy_c_prompt");
  auto expected = mnemo::test::tiny_tokens("greedy_c_generated");
  auto want = load_npy(tiny_dir() + "/greedy_logits.npy");
  auto seq = m.new_sequence();
  std::vector<float> logits(prompt.size() * vocab);
  REQUIRE(m.forward(seq, prompt, logits));
  std::vector<float> row(logits.end() - vocab, logits.end());
  std::vector<TokenId> generated;
  float max_abs = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    for (int64_t c = 0; c < vocab; ++c) max_abs = std::max(max_abs, std::fabs(row[c] - want.row(i)[c]));
    TokenId next = static_cast<TokenId>(argmax(row.data(), row.size()));
    generated.push_back(next);
    if (i + 1 < expected.size()) REQUIRE(m.forward(seq, std::span<const TokenId>(&next, 1), row));
  }
  CHECK(generated == expected);
  INFO("max |dlogit| " << max_abs);
  CHECK(max_abs <= 1e-3f);
}

TEST_CASE("fp32 MTP block matches the reference draft logits", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model();
  const int64_t vocab = m.config().vocab_size;
  auto toks = mnemo::test::tiny_tokens("prefill_a_tokens");
  auto next = mnemo::test::tiny_tokens("mtp_e_input_tokens");
  auto seq = m.new_sequence();
  std::vector<float> logits(toks.size() * vocab);
  mnemo::inference::ForwardOutputs out;
  REQUIRE(m.forward(seq, toks, logits, &out));
  auto mtp = m.new_mtp_sequence();
  std::vector<float> mtp_logits(next.size() * vocab);
  REQUIRE(m.mtp_forward(mtp, out.final_streams, next, mtp_logits));
  auto want = load_npy(tiny_dir() + "/mtp_logits_sub.npy");
  simdjson::dom::parser parser;
  simdjson::dom::element margins;
  REQUIRE(!parser.load(tiny_dir() + "/margins.json").get(margins));
  int64_t j = 0;
  float max_abs = 0;
  int mismatches = 0;
  for (simdjson::dom::element e : margins["mtp_sub_positions"].get_array()) {
    int64_t pos = 0;
    REQUIRE(!e.get(pos));
    const float* g = &mtp_logits[pos * vocab];
    for (int64_t c = 0; c < vocab; ++c) max_abs = std::max(max_abs, std::fabs(g[c] - want.row(j)[c]));
    if (argmax(g, vocab) != argmax(want.row(j), vocab)) ++mismatches;
    ++j;
  }
  CHECK(j == 79);
  INFO("max |dlogit| " << max_abs);
  CHECK(max_abs <= 1e-3f);
  CHECK(mismatches == 0);
}


// Median over positions of the per-position max |dlogit|.
float median_max_diff(const float* got, const NpyArray& want, int64_t rows) {
  std::vector<float> per_row(static_cast<size_t>(rows));
  int64_t n = want.shape[1];
  for (int64_t r = 0; r < rows; ++r) {
    float m = 0;
    for (int64_t c = 0; c < n; ++c) m = std::max(m, std::fabs(got[r * n + c] - want.row(r)[c]));
    per_row[r] = m;
  }
  std::nth_element(per_row.begin(), per_row.begin() + rows / 2, per_row.end());
  return per_row[rows / 2];
}

// The serving path rounds KV to FP8 and the indexer to FP4: a step function of the activations. One of
// golden-tiny's FP8 roundings (a kv element of token 84) lies within 1e-6 relative of a rounding boundary,
// closer than fp32 evaluation noise, and lands on the other side here (double-precision evaluation agrees
// with ours); forcing that one rounding reproduces the reference to 1e-5 everywhere. So the check is exact
// up to that token and statistical after it.
TEST_CASE("serving precision (FP8 KV, FP4 indexer) matches the reference's rounded path", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model(mnemo::inference::Precision::kServing);
  const int64_t vocab = m.config().vocab_size;
  auto toks = mnemo::test::tiny_tokens("prefill_a_tokens");
  std::vector<float> logits(toks.size() * vocab);
  auto seq = m.new_sequence();
  REQUIRE(m.forward(seq, toks, logits));
  auto want_prefill = load_npy(tiny_dir() + "/serving_prefill300_logits.npy");
  Diff exact_prefix = compare_rows(logits.data(), want_prefill, 84);
  INFO("max |dlogit| over positions 0..83: " << exact_prefix.max_abs);
  CHECK(exact_prefix.max_abs <= 1e-3f);
  Diff prefill = compare_rows(logits.data(), want_prefill, 300);
  float prefill_median = median_max_diff(logits.data(), want_prefill, 300);
  INFO("prefill: max |dlogit| " << prefill.max_abs << ", median " << prefill_median);
  CHECK(prefill.argmax_mismatches <= 3);
  CHECK(prefill_median <= 1e-2f);

  auto pre = mnemo::test::tiny_tokens("decode_b_prefill_tokens");
  auto steps = mnemo::test::tiny_tokens("decode_b_step_tokens");
  auto dseq = m.new_sequence();
  std::vector<float> tmp(pre.size() * vocab);
  REQUIRE(m.forward(dseq, pre, tmp));
  std::vector<float> got = mnemo::test::decode_steps(m, dseq, steps);
  auto want_decode = load_npy(tiny_dir() + "/serving_decode_logits.npy");
  Diff decode = compare_rows(got.data(), want_decode, 300);
  float decode_median = median_max_diff(got.data(), want_decode, 300);
  INFO("decode: max |dlogit| " << decode.max_abs << ", median " << decode_median);
  CHECK(decode.argmax_mismatches <= 3);
  CHECK(decode_median <= 1e-2f);
}

TEST_CASE("bf16 activations stay within the reference's own bf16 figures", "[v4][golden]") {
  const Model& m = mnemo::test::tiny_model(mnemo::inference::Precision::kBf16);
  const int64_t vocab = m.config().vocab_size;
  auto toks = mnemo::test::tiny_tokens("prefill_a_tokens");
  std::vector<float> logits(toks.size() * vocab);
  auto seq = m.new_sequence();
  REQUIRE(m.forward(seq, toks, logits));
  auto want = load_npy(tiny_dir() + "/prefill300_logits.npy");
  std::vector<float> per_row(300);
  int agree = 0;
  for (int64_t r = 0; r < 300; ++r) {
    float mx = 0;
    for (int64_t c = 0; c < vocab; ++c) mx = std::max(mx, std::fabs(logits[r * vocab + c] - want.row(r)[c]));
    per_row[r] = mx;
    if (argmax(&logits[r * vocab], vocab) == argmax(want.row(r), vocab)) ++agree;
  }
  std::sort(per_row.begin(), per_row.end());
  INFO("top-1 " << agree << "/300, median " << per_row[150] << ", p90 " << per_row[270]);
  CHECK(agree >= 264);  // 88%
  CHECK(per_row[150] <= 0.2f);
  CHECK(per_row[270] <= 0.4f);
}
