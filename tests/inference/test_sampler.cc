#include <mnemo/inference/sampler.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <map>

using namespace mnemo::inference;

TEST_CASE("greedy sampling takes the largest logit, lowest id on ties", "[sampler]") {
  Sampler s({});
  std::vector<float> logits{0.5f, 2.0f, 2.0f, -1.0f};
  CHECK(s.sample(logits) == 1);
}

TEST_CASE("the same seed draws the same tokens, and restored state continues the stream", "[sampler]") {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) * 0.3f;
  SamplingParams p;
  p.temperature = 0.8f;
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<TokenId> first, second;
  for (int i = 0; i < 20; ++i) first.push_back(a.sample(logits));
  for (int i = 0; i < 20; ++i) second.push_back(b.sample(logits));
  CHECK(first == second);
  std::string state = a.export_state();
  std::vector<TokenId> next_a;
  for (int i = 0; i < 10; ++i) next_a.push_back(a.sample(logits));
  Sampler c(p);
  REQUIRE(c.import_state(state));
  std::vector<TokenId> next_c;
  for (int i = 0; i < 10; ++i) next_c.push_back(c.sample(logits));
  CHECK(next_a == next_c);
  CHECK_FALSE(c.import_state("short"));
}

TEST_CASE("top-k, top-p and min-p keep only the allowed tokens", "[sampler]") {
  std::vector<float> logits{3.0f, 2.9f, 2.8f, 0.0f, -5.0f};
  auto draws = [&](SamplingParams p) {
    Sampler s(p);
    std::map<TokenId, int> seen;
    for (int i = 0; i < 2000; ++i) ++seen[s.sample(logits)];
    return seen;
  };
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  auto k = draws(p);
  CHECK(k.size() == 2);
  CHECK(k.count(0) == 1);
  CHECK(k.count(1) == 1);
  p.top_k = 0;
  p.top_p = 0.5f;  // token 0 alone has about 0.36 of the mass; tokens 0 and 1 pass 0.5
  auto tp = draws(p);
  CHECK(tp.size() == 2);
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // exp(-3) * p0 is far below half of p0
  auto mp = draws(p);
  CHECK(mp.size() == 3);
  CHECK(mp.count(3) == 0);
  SamplingParams bad;
  bad.top_p = 0.0f;
  CHECK_FALSE(bad.validate());
}

TEST_CASE("top-k alone keeps exactly k tokens even beyond the first sorted block", "[sampler]") {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -static_cast<float>(i) * 0.001f;  // nearly flat
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 100;
  Sampler s(p);
  std::map<TokenId, int> seen;
  for (int i = 0; i < 20000; ++i) ++seen[s.sample(logits)];
  CHECK(seen.rbegin()->first == 99);   // the 100th most likely token is drawn
  CHECK(seen.size() == 100);
  p.top_k = 0;
  p.top_p = 0.5f;
  // The shortest prefix holding half the mass, computed directly.
  double total = 0, mass = 0;
  for (float l : logits) total += std::exp(static_cast<double>(l));
  int last = 0;
  for (; mass + std::exp(static_cast<double>(logits[last])) < 0.5 * total; ++last) mass += std::exp(static_cast<double>(logits[last]));
  Sampler nucleus(p);
  std::map<TokenId, int> kept;
  for (int i = 0; i < 20000; ++i) ++kept[nucleus.sample(logits)];
  CHECK(kept.rbegin()->first <= last);
  CHECK(kept.rbegin()->first >= last - 10);
}
