#pragma once
// Private state of Tokenizer: the vocabulary as raw bytes, the merge table, the added-token matcher.
#include <mnemo/inference/tokenizer.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace mnemo::inference {

// Open-addressing map from an adjacent token pair to the rank of its merge and the merged token.
class MergeTable {
 public:
  struct Merge {
    uint32_t rank;
    TokenId merged;
  };
  void reserve(size_t n);
  // False when the pair already had a merge (the first, lowest rank, is kept).
  bool insert(TokenId left, TokenId right, Merge merge);
  const Merge* find(TokenId left, TokenId right) const {
    uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t pack(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Leftmost-longest matcher over the added tokens (a byte trie), as HF's AddedVocabulary splits.
class AddedTokenMatcher {
 public:
  void add(std::string_view content, TokenId id);
  bool empty() const { return nodes_.size() <= 1; }
  // Finds the leftmost-longest match at or after `from`; returns false when there is none.
  bool find(std::string_view text, size_t from, size_t& pos, size_t& len, TokenId& id) const;

 private:
  struct Node {
    TokenId token = -1;
    std::vector<std::pair<unsigned char, uint32_t>> children;
  };
  int32_t child(uint32_t node, unsigned char b) const;
  std::vector<Node> nodes_{Node{}};
  std::array<bool, 256> first_byte_{};
};

// The GPT-2 byte-level alphabet: each byte has a printable stand-in character in the vocabulary.
struct ByteLevel {
  ByteLevel();
  std::array<char32_t, 256> byte_to_char;
  std::unordered_map<char32_t, unsigned char> char_to_byte;
};
const ByteLevel& byte_level();

enum class TokenKind : uint8_t { kUnknown, kBpe, kAdded, kSpecial };

struct Tokenizer::Impl {
  std::vector<std::string> id_bytes;  // raw bytes each id decodes to
  std::vector<TokenKind> id_kind;
  std::array<TokenId, 256> byte_token{};
  MergeTable merges;
  AddedTokenMatcher added;
  std::unordered_map<std::string, TokenId> bpe_by_bytes;
  std::unordered_map<std::string, TokenId> added_by_text;

  void ensure_id(TokenId id) {
    if (static_cast<size_t>(id) >= id_bytes.size()) {
      id_bytes.resize(static_cast<size_t>(id) + 1);
      id_kind.resize(static_cast<size_t>(id) + 1, TokenKind::kUnknown);
    }
  }
  // Appends the BPE ids of one pre-token.
  void bpe(std::string_view piece, std::vector<TokenId>& out) const;
  Status add_added_token(std::string_view content, TokenId id, bool special);
};

}  // namespace mnemo::inference
