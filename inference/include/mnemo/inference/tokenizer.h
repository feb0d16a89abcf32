#pragma once
// Byte-level BPE tokenizer loaded from a HuggingFace tokenizer.json (the DeepSeek V3/V4 vocabulary):
// added/special tokens matched first, then the Split pre-tokenizers, byte-level mapping, BPE merges.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>

namespace mnemo::inference {

using TokenId = int32_t;

class Tokenizer {
 public:
  // Loads PATH (a tokenizer.json). Errors name the file and what in it is wrong.
  static Result<Tokenizer> load(const std::string& path);
  // Parses tokenizer.json text; `origin` names it in errors.
  static Result<Tokenizer> from_json(std::string_view json, std::string_view origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of text, without BOS; special tokens in the text become their single ids.
  // Invalid UTF-8 is an error naming the byte offset.
  Result<std::vector<TokenId>> encode(std::string_view text) const;
  // Text of ids, special tokens included; byte sequences that are not UTF-8 become U+FFFD.
  // Unknown ids are an error.
  Result<std::string> decode(std::span<const TokenId> ids) const;

  // The raw bytes a token stands for (its text for added tokens); empty for unknown ids.
  std::string_view token_bytes(TokenId id) const;
  bool is_special(TokenId id) const;
  std::optional<TokenId> token_id(std::string_view token_text) const;
  // One past the highest id.
  size_t vocab_size() const;

  // Adds a special token (matched before pre-tokenization) at a free id.
  Status add_special_token(std::string_view content, TokenId id);

  struct Impl;  // private state, defined in inference/src

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Incremental detokenizer for streaming: text comes out only at UTF-8 character boundaries, and the
// concatenation of everything emitted (after finish) equals Tokenizer::decode of all the ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  // Text completed by this token (may be empty while a character is incomplete).
  Result<std::string> push(TokenId id);
  // Flushes an incomplete character at the end as U+FFFD.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace mnemo::inference
