#include "processors.h"

#include <mnemo/inference/chat_dsml.h>

#include <limits>
#include <string>

namespace mnemo::agent::internal {

using inference::TokenId;

namespace {

constexpr float kBanned = -std::numeric_limits<float>::infinity();

class BanProcessor final : public inference::LogitsProcessor {
 public:
  explicit BanProcessor(std::vector<TokenId> banned) : banned_(std::move(banned)) {}
  void apply(float* logits, int64_t vocab, int64_t) override {
    for (TokenId t : banned_) {
      if (t >= 0 && t < vocab) logits[t] = kBanned;
    }
  }
  Status accept(TokenId token) override {
    for (TokenId t : banned_) {
      if (t == token)
        return Status::invalid_argument("token " + std::to_string(token) + " is banned here");
    }
    return Status::ok();
  }

 private:
  std::vector<TokenId> banned_;
};

// Free text until the model writes "\n\n<" and then the DSML token: from there on the rest of the
// block is constrained. The DSML token is allowed only right after "\n\n<" and only while the
// budget still holds a complete call, so a call is never malformed or cut short.
class AutoToolProcessor final : public inference::LogitsProcessor {
 public:
  AutoToolProcessor(std::shared_ptr<const inference::ToolCallGrammar> grammar,
                    std::shared_ptr<const inference::ConstraintVocabulary> vocab,
                    const inference::Tokenizer& tokenizer, TokenId dsml)
      : grammar_(std::move(grammar)), vocab_(std::move(vocab)), tokenizer_(tokenizer), dsml_(dsml) {
    if (grammar_ && dsml_ >= 0) {
      inference::ToolCallConstraint probe(grammar_, vocab_);
      if (probe.accept_text(kOpening).is_ok() && probe.accept(dsml_).is_ok()) {
        call_min_ = probe.min_tokens();
      } else {
        grammar_.reset();  // the grammar does not start the way the codec writes a block
      }
    }
  }

  void apply(float* logits, int64_t vocab, int64_t remaining) override {
    if (call_) {
      call_->apply(logits, vocab, remaining);
      return;
    }
    if (dsml_ < 0 || dsml_ >= vocab) return;
    const bool opening =
        tail_.size() >= kOpening.size() &&
        tail_.compare(tail_.size() - kOpening.size(), kOpening.size(), kOpening) == 0;
    if (!grammar_ || !opening || remaining - 1 < call_min_) logits[dsml_] = kBanned;
  }

  Status accept(TokenId token) override {
    if (call_) return call_->accept(token);
    if (token == dsml_ && dsml_ >= 0) {
      if (!grammar_) return Status::invalid_argument("a tool call started where none may");
      call_ = std::make_unique<inference::ToolCallConstraint>(grammar_, vocab_);
      MNEMO_RETURN_IF_ERROR(call_->accept_text(kOpening));
      return call_->accept(token);
    }
    tail_ += tokenizer_.token_bytes(token);
    if (tail_.size() > 16) tail_.erase(0, tail_.size() - 16);
    return Status::ok();
  }

 private:
  static constexpr std::string_view kOpening = "\n\n<";
  std::shared_ptr<const inference::ToolCallGrammar> grammar_;
  std::shared_ptr<const inference::ConstraintVocabulary> vocab_;
  const inference::Tokenizer& tokenizer_;
  TokenId dsml_;
  int64_t call_min_ = std::numeric_limits<int64_t>::max() / 2;
  std::string tail_;  // the last bytes of the free text
  std::unique_ptr<inference::ToolCallConstraint> call_;
};

}  // namespace

std::shared_ptr<inference::LogitsProcessor> make_ban_processor(std::vector<TokenId> banned) {
  return std::make_shared<BanProcessor>(std::move(banned));
}

std::shared_ptr<inference::LogitsProcessor> make_auto_tool_processor(
    std::shared_ptr<const inference::ToolCallGrammar> grammar,
    std::shared_ptr<const inference::ConstraintVocabulary> vocab,
    const inference::Tokenizer& tokenizer, TokenId dsml) {
  return std::make_shared<AutoToolProcessor>(std::move(grammar), std::move(vocab), tokenizer, dsml);
}

}  // namespace mnemo::agent::internal
