#pragma once
// Token sampling: greedy, temperature, top-k, top-p, min-p. Seeded and deterministic; its state (the
// random generator) can be exported and restored, so a resumed session draws the same tokens.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/tokenizer.h>

namespace mnemo::inference {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // nucleus mass kept
  float min_p = 0.0f;        // drop tokens below min_p * the most likely one's probability
  uint64_t seed = 0;

  Status validate() const;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  TokenId sample(std::span<const float> logits);
  const SamplingParams& params() const { return params_; }

  // 32 bytes of generator state; restoring it continues the same stream of draws.
  std::string export_state() const;
  Status import_state(std::string_view state);

 private:
  double next_uniform();  // [0, 1)

  SamplingParams params_;
  std::array<uint64_t, 4> rng_{};
  std::vector<std::pair<float, TokenId>> candidates_;
};

}  // namespace mnemo::inference
