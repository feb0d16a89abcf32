#pragma once
// The V4 tokenizer of the default model (the committed V3 tokenizer.json plus the V4 special
// tokens), loaded once per test binary.
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>

#include <catch2/catch.hpp>
#include <memory>

#include "support/test_paths.h"

namespace mnemo::test {

inline const inference::Tokenizer& v4_tokenizer() {
  static std::unique_ptr<inference::Tokenizer> tok = [] {
    auto t = inference::Tokenizer::load(v3_tokenizer_path());
    REQUIRE(t);
    REQUIRE(inference::tokens::add_v4_tokens(*t));
    return std::make_unique<inference::Tokenizer>(std::move(t).value());
  }();
  return *tok;
}

}  // namespace mnemo::test
