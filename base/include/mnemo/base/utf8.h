#pragma once
// UTF-8 helpers shared by the tokenizer, the chat codecs and every text-facing interface.
#include <cstddef>
#include <string>
#include <string_view>

#include <mnemo/base/status.h>

namespace mnemo::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at s[i] and advances i. The input must be valid UTF-8.
inline char32_t next(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  auto c = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  char32_t cp;
  if (b < 0xE0) {
    cp = (static_cast<char32_t>(b & 0x1F) << 6) | c(1);
    i += 2;
  } else if (b < 0xF0) {
    cp = (static_cast<char32_t>(b & 0x0F) << 12) | (c(1) << 6) | c(2);
    i += 3;
  } else {
    cp = (static_cast<char32_t>(b & 0x07) << 18) | (c(1) << 12) | (c(2) << 6) | c(3);
    i += 4;
  }
  return cp;
}

void append(std::string& out, char32_t cp);

// OK when s is valid UTF-8; otherwise names the byte offset of the first invalid sequence.
Status validate(std::string_view s);

// Length of the valid or definitely-invalid sequence at s[0] (1..4), or 0 when s is a proper prefix of
// a valid sequence (more bytes may complete it). `valid` tells which. Follows Unicode's "maximal
// subpart" rule, as Rust's from_utf8_lossy and HF tokenizers do.
size_t sequence_length(std::string_view s, bool& valid);

// Decodes bytes to valid UTF-8, replacing each maximal invalid subpart with U+FFFD. When `final` is
// false, an incomplete sequence at the end is left unconsumed; returns the bytes consumed.
size_t decode_lossy(std::string_view bytes, std::string& out, bool final);

inline std::string lossy(std::string_view bytes) {
  std::string out;
  decode_lossy(bytes, out, true);
  return out;
}

}  // namespace mnemo::utf8
