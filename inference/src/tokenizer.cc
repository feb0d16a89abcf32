// Encoding and decoding: added tokens split first, then pre-tokens through BPE; decoding maps ids back
// to bytes and replaces what is not UTF-8 with U+FFFD.
#include <mnemo/base/utf8.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>

#include <cstdint>

#include "pretokenizer.h"
#include "tokenizer_impl.h"

namespace mnemo::inference {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<std::vector<TokenId>> Tokenizer::encode(std::string_view text) const {
  if (text.size() >= (uint64_t{1} << 32)) {
    return Status::invalid_argument("text of " + std::to_string(text.size()) + " bytes is over the 4 GiB limit");
  }
  MNEMO_RETURN_IF_ERROR(utf8::validate(text));
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 1);
  auto encode_plain = [&](std::string_view segment) {
    pretokenize(segment, [&](std::string_view piece) { impl_->bpe(piece, ids); });
  };
  size_t from = 0, pos = 0, len = 0;
  TokenId id = -1;
  while (!impl_->added.empty() && impl_->added.find(text, from, pos, len, id)) {
    if (pos > from) encode_plain(text.substr(from, pos - from));
    ids.push_back(id);
    from = pos + len;
  }
  if (from < text.size()) encode_plain(text.substr(from));
  return ids;
}

Result<std::string> Tokenizer::decode(std::span<const TokenId> ids) const {
  std::string bytes;
  for (TokenId id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_kind.size() ||
        impl_->id_kind[id] == TokenKind::kUnknown) {
      return Status::invalid_argument("unknown token id " + std::to_string(id));
    }
    bytes += impl_->id_bytes[id];
  }
  return utf8::lossy(bytes);
}

std::string_view Tokenizer::token_bytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->id_bytes.size()) return {};
  return impl_->id_bytes[id];
}

bool Tokenizer::is_special(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->id_kind.size() &&
         impl_->id_kind[id] == TokenKind::kSpecial;
}

std::optional<TokenId> Tokenizer::token_id(std::string_view token_text) const {
  std::string key(token_text);
  if (auto it = impl_->added_by_text.find(key); it != impl_->added_by_text.end()) return it->second;
  if (auto it = impl_->bpe_by_bytes.find(key); it != impl_->bpe_by_bytes.end()) return it->second;
  return std::nullopt;
}

size_t Tokenizer::vocab_size() const { return impl_->id_kind.size(); }

Status Tokenizer::add_special_token(std::string_view content, TokenId id) {
  if (id < 0 || id >= (1 << 24)) return Status::invalid_argument("token id " + std::to_string(id) + " out of range");
  return impl_->add_added_token(content, id, true);
}

Result<std::string> StreamDecoder::push(TokenId id) {
  const auto& impl = *tokenizer_->impl_;
  if (id < 0 || static_cast<size_t>(id) >= impl.id_kind.size() || impl.id_kind[id] == TokenKind::kUnknown) {
    return Status::invalid_argument("unknown token id " + std::to_string(id));
  }
  pending_ += impl.id_bytes[id];
  std::string out;
  size_t used = utf8::decode_lossy(pending_, out, false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  utf8::decode_lossy(pending_, out, true);
  pending_.clear();
  return out;
}

Status tokens::add_v4_tokens(Tokenizer& tokenizer) {
  for (const SpecialToken& t : kV4AddedTokens) {
    if (tokenizer.token_id(t.text) == t.id) continue;  // already a V4 tokenizer
    MNEMO_RETURN_IF_ERROR(tokenizer.add_special_token(t.text, t.id));
  }
  return Status::ok();
}

}  // namespace mnemo::inference
