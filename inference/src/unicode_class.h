#pragma once
// Unicode classes the tokenizer's pre-tokenizer regexes use, one flag byte per code point.
#include <cstdint>

namespace mnemo::inference::unicode {

enum : uint8_t {
  kLetter = 1,   // \p{L}
  kMark = 2,     // \p{M}
  kNumber = 4,   // \p{N}
  kPunct = 8,    // \p{P}
  kSymbol = 16,  // \p{S}
  kSpace = 32,   // \s (White_Space)
  kCjk = 64,     // [一-龥぀-ゟ゠-ヿ]
};

extern const uint16_t kBlockIndex[0x1100];
extern const uint8_t kBlocks[][256];

inline uint8_t flags(char32_t cp) {
  if (cp >= 0x110000) return 0;
  return kBlocks[kBlockIndex[cp >> 8]][cp & 0xFF];
}

}  // namespace mnemo::inference::unicode
