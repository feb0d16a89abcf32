#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/turn_mask.h>

#include <algorithm>
#include <limits>
#include <string>

namespace mnemo::inference {

std::vector<TokenId> tokens_banned_in_turns(const Tokenizer& tokenizer, int64_t model_vocab,
                                            ThinkingMode mode, TokenId eos) {
  std::vector<TokenId> allowed{eos};
  for (std::string_view text : {tokens::kEos, tokens::kDsml}) {
    if (auto id = tokenizer.token_id(text)) allowed.push_back(*id);
  }
  if (mode == ThinkingMode::kThinking) {
    if (auto id = tokenizer.token_id(tokens::kThinkEnd)) allowed.push_back(*id);
  }
  std::vector<TokenId> banned;
  for (int64_t i = 0; i < model_vocab; ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string_view bytes = tokenizer.token_bytes(id);
    // DeepSeek's markers, <｜...｜>, whether the tokenizer flags them special or not (V3 leaves
    // <｜User｜>, <｜Assistant｜>, the FIM and V3 tool-call markers unflagged).
    const bool marker = bytes.size() > 6 && bytes.starts_with("<｜") && bytes.ends_with("｜>");
    const bool text = !tokenizer.is_special(id) && !bytes.empty() && !marker;  // ordinary text
    if (text) continue;
    if (std::find(allowed.begin(), allowed.end(), id) != allowed.end()) continue;
    banned.push_back(id);
  }
  return banned;
}

namespace {

class BannedTokens final : public LogitsProcessor {
 public:
  BannedTokens(std::shared_ptr<const std::vector<TokenId>> banned,
               std::shared_ptr<LogitsProcessor> inner)
      : banned_(std::move(banned)), inner_(std::move(inner)) {}

  void apply(float* logits, int64_t vocab, int64_t remaining) override {
    for (TokenId t : *banned_) {
      if (t < vocab) logits[t] = -std::numeric_limits<float>::infinity();
    }
    if (inner_) inner_->apply(logits, vocab, remaining);
  }

  Status accept(TokenId token) override {
    if (std::binary_search(banned_->begin(), banned_->end(), token)) {
      return Status::invalid_argument("token " + std::to_string(token) +
                                      " has no place in a reply (a special or unknown token)");
    }
    return inner_ ? inner_->accept(token) : Status::ok();
  }

 private:
  std::shared_ptr<const std::vector<TokenId>> banned_;
  std::shared_ptr<LogitsProcessor> inner_;
};

}  // namespace

std::shared_ptr<LogitsProcessor> with_banned_tokens(
    std::shared_ptr<const std::vector<TokenId>> banned, std::shared_ptr<LogitsProcessor> inner) {
  return std::make_shared<BannedTokens>(std::move(banned), std::move(inner));
}

}  // namespace mnemo::inference
