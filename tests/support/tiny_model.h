#pragma once
// golden-tiny for the engine tests: the model (loaded once per precision) and its token scenarios.
#include <mnemo/inference/model.h>

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/test_paths.h"

namespace mnemo::test {

inline std::string tiny_dir() { return data_path("deepseek_v4_tiny"); }

inline const inference::Model& tiny_model(inference::Precision precision = inference::Precision::kF32) {
  static std::map<inference::Precision, std::unique_ptr<inference::Model>> models;
  auto& slot = models[precision];
  if (!slot) {
    auto loaded = inference::Model::load(tiny_dir(), {precision});
    REQUIRE(loaded);
    slot = std::move(loaded).value();
  }
  return *slot;
}

// A token list of tokens.json: "sequence_337", "prefill_a_tokens", "greedy_c_generated", ...
inline std::vector<inference::TokenId> tiny_tokens(const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(!parser.load(tiny_dir() + "/tokens.json").get(doc));
  simdjson::dom::array arr;
  REQUIRE(!doc[key].get(arr));
  std::vector<inference::TokenId> out;
  for (simdjson::dom::element e : arr) {
    int64_t v = 0;
    REQUIRE(!e.get(v));
    out.push_back(static_cast<inference::TokenId>(v));
  }
  return out;
}

// Logits of decoding `steps` one token at a time, [steps.size(), vocab].
inline std::vector<float> decode_steps(const inference::Model& m, inference::Sequence& seq,
                                       std::span<const inference::TokenId> steps) {
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  std::vector<float> out(steps.size() * V);
  for (size_t i = 0; i < steps.size(); ++i) {
    REQUIRE(m.forward(seq, steps.subspan(i, 1), std::span<float>(out.data() + i * V, V)));
  }
  return out;
}

}  // namespace mnemo::test
