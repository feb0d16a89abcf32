// tool_choice on the embedded engine: `auto` lets the model write freely and only lets a call block
// open where the V4 format opens one and the budget can finish it; after that the call is
// constrained. `none` bans the DSML token.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <memory>

#include "processors.h"
#include "support/v4_tokenizer.h"

using namespace mnemo;
using namespace mnemo::inference;

namespace {

const Tokenizer& tokenizer() { return test::v4_tokenizer(); }

std::shared_ptr<const ConstraintVocabulary> vocab() {
  static auto v = *ConstraintVocabulary::build(tokenizer());
  return v;
}

std::shared_ptr<const ToolCallGrammar> grammar() {
  static auto g = *ToolCallGrammar::compile(std::vector<std::string>{
      R"({"name": "list_dir", "description": "List.", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}})"});
  return g;
}

TokenId dsml() { return *tokenizer().token_id(tokens::kDsml); }

bool dsml_allowed(LogitsProcessor& p, int64_t remaining) {
  std::vector<float> logits(tokenizer().vocab_size(), 0.0f);
  p.apply(logits.data(), static_cast<int64_t>(logits.size()), remaining);
  return std::isfinite(logits[static_cast<size_t>(dsml())]);
}

void feed(LogitsProcessor& p, std::string_view text) {
  auto ids = tokenizer().encode(text);
  REQUIRE(ids);
  for (TokenId t : *ids) REQUIRE(p.accept(t));
}

}  // namespace

TEST_CASE("auto: free text, a call block only where it may open and can be finished", "[agent]") {
  auto p = agent::internal::make_auto_tool_processor(grammar(), vocab(), tokenizer(), dsml());
  CHECK_FALSE(
      dsml_allowed(*p, 1000));  // not at the start of the turn: the block needs "\n\n<" first
  feed(*p, "Let me look.");
  CHECK_FALSE(dsml_allowed(*p, 1000));
  feed(*p, "\n\n<");
  CHECK(dsml_allowed(*p, 1000));
  CHECK_FALSE(dsml_allowed(*p, 5));  // too few tokens left to finish any call
  REQUIRE(p->accept(dsml()));
  // From here the block is constrained: the rest of a valid call is accepted, anything else is not.
  CHECK_FALSE(p->accept(*tokenizer().encode("hello")->begin()));
  feed(*p, "tool_calls>\n<");
  REQUIRE(p->accept(dsml()));
  feed(*p, "invoke name=\"list_dir\">\n<");
  REQUIRE(p->accept(dsml()));
  feed(*p, "parameter name=\"path\" string=\"true\">src</");
  REQUIRE(p->accept(dsml()));
  feed(*p, "parameter>\n</");
  REQUIRE(p->accept(dsml()));
  feed(*p, "invoke>\n</");
  REQUIRE(p->accept(dsml()));
  feed(*p, "tool_calls>");
  auto parsed = parse_v4_completion(
      "Let me look.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke "
      "name=\"list_dir\">\n<｜DSML｜parameter name=\"path\" "
      "string=\"true\">src</｜DSML｜parameter>\n</｜DSML｜invoke>\n</"
      "｜DSML｜tool_calls><｜end▁of▁sentence｜>",
      ThinkingMode::kChat);
  REQUIRE(parsed);
  CHECK(parsed->tool_calls.size() == 1);
}

TEST_CASE("none and no tools: the DSML token is banned", "[agent]") {
  auto none = agent::internal::make_ban_processor({dsml()});
  CHECK_FALSE(dsml_allowed(*none, 1000));
  CHECK_FALSE(none->accept(dsml()));
  auto no_tools = agent::internal::make_auto_tool_processor(nullptr, vocab(), tokenizer(), dsml());
  feed(*no_tools, "\n\n<");
  CHECK_FALSE(dsml_allowed(*no_tools, 1000));
  CHECK_FALSE(no_tools->accept(dsml()));
}
