// The byte-level alphabet, the merge table and the added-token trie.
#include "tokenizer_impl.h"

#include <algorithm>

namespace mnemo::inference {

ByteLevel::ByteLevel() {
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    byte_to_char[b] = printable ? static_cast<char32_t>(b) : next++;
    char_to_byte[byte_to_char[b]] = static_cast<unsigned char>(b);
  }
}

const ByteLevel& byte_level() {
  static const ByteLevel kByteLevel;
  return kByteLevel;
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

bool MergeTable::insert(TokenId left, TokenId right, Merge merge) {
  uint64_t key = pack(left, right);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return false;
    if (s.key == kEmpty) {
      s.key = key;
      s.merge = merge;
      return true;
    }
  }
}

int32_t AddedTokenMatcher::child(uint32_t node, unsigned char b) const {
  for (const auto& [byte, next] : nodes_[node].children) {
    if (byte == b) return static_cast<int32_t>(next);
  }
  return -1;
}

void AddedTokenMatcher::add(std::string_view content, TokenId id) {
  uint32_t node = 0;
  for (char ch : content) {
    auto b = static_cast<unsigned char>(ch);
    int32_t c = child(node, b);
    if (c < 0) {
      c = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(b, static_cast<uint32_t>(c));
      nodes_.emplace_back();
    }
    node = static_cast<uint32_t>(c);
  }
  nodes_[node].token = id;
  first_byte_[static_cast<unsigned char>(content[0])] = true;
}

bool AddedTokenMatcher::find(std::string_view text, size_t from, size_t& pos, size_t& len,
                             TokenId& id) const {
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) continue;
    uint32_t node = 0;
    size_t best = 0;
    for (size_t j = i; j < text.size(); ++j) {
      int32_t c = child(node, static_cast<unsigned char>(text[j]));
      if (c < 0) break;
      node = static_cast<uint32_t>(c);
      if (nodes_[node].token >= 0) {
        best = j + 1 - i;
        id = nodes_[node].token;
      }
    }
    if (best > 0) {
      pos = i;
      len = best;
      return true;
    }
  }
  return false;
}

}  // namespace mnemo::inference
