// The tokens no generated turn may contain (inference/turn_mask.h), on the V4 tokenizer.
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/turn_mask.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "support/v4_tokenizer.h"

using namespace mnemo::inference;

namespace {

const Tokenizer& v4() { return mnemo::test::v4_tokenizer(); }

TokenId id_of(std::string_view text) {
  auto id = v4().token_id(text);
  REQUIRE(id);
  return *id;
}

bool has(const std::vector<TokenId>& v, TokenId t) { return std::binary_search(v.begin(), v.end(), t); }

}  // namespace

TEST_CASE("a turn may not sample role markers, placeholders or unknown ids", "[turn_mask]") {
  const int64_t vocab = 129280;  // the V4 model's padded vocabulary
  const TokenId eos = id_of(tokens::kEos);
  auto chat = tokens_banned_in_turns(v4(), vocab, ThinkingMode::kChat, eos);
  auto thinking = tokens_banned_in_turns(v4(), vocab, ThinkingMode::kThinking, eos);
  CHECK(std::is_sorted(chat.begin(), chat.end()));
  // What ends or shapes a reply stays.
  CHECK_FALSE(has(chat, eos));
  CHECK_FALSE(has(chat, id_of(tokens::kDsml)));
  CHECK(has(chat, id_of(tokens::kThinkEnd)));
  CHECK_FALSE(has(thinking, id_of(tokens::kThinkEnd)));
  // What has no place in one goes.
  for (std::string_view t : {tokens::kBos, tokens::kUser, tokens::kAssistant, tokens::kThinkBegin,
                             tokens::kLatestReminder}) {
    INFO(t);
    CHECK(has(chat, id_of(t)));
    CHECK(has(thinking, id_of(t)));
  }
  CHECK(has(chat, id_of("<｜place▁holder▁no▁343｜>")));
  CHECK(has(chat, vocab - 1));  // past the tokenizer's vocabulary
  // Plain text is untouched: "Hello" encodes to tokens none of which is banned.
  auto hello = v4().encode("Hello, world: <b>bold</b>\n\n<");
  REQUIRE(hello);
  for (TokenId t : *hello) CHECK_FALSE(has(chat, t));
}

TEST_CASE("the ban applies before the turn's own processor and refuses a banned token",
          "[turn_mask]") {
  auto banned = std::make_shared<const std::vector<TokenId>>(std::vector<TokenId>{2, 5});
  struct Count final : LogitsProcessor {
    int applied = 0;
    void apply(float*, int64_t, int64_t) override { ++applied; }
    mnemo::Status accept(TokenId) override { return mnemo::Status::ok(); }
  };
  auto inner = std::make_shared<Count>();
  auto p = with_banned_tokens(banned, inner);
  std::vector<float> logits(8, 1.0f);
  p->apply(logits.data(), 8, 10);
  CHECK(inner->applied == 1);
  CHECK(logits[2] == -std::numeric_limits<float>::infinity());
  CHECK(logits[5] == -std::numeric_limits<float>::infinity());
  CHECK(logits[3] == 1.0f);
  CHECK(p->accept(3));
  CHECK_FALSE(p->accept(5));
}
