#pragma once
// The DeepSeek V3/V4 pre-tokenizer: three Split(Isolated) regexes applied in sequence, hand-compiled
// for speed with the exact semantics of the backtracking regex engine HF tokenizers uses.
#include <cstddef>
#include <string_view>

namespace mnemo::inference {

// The patterns this splitter implements, as tokenizer.json writes them.
inline constexpr std::string_view kDigitsPattern = "\\p{N}{1,3}";
inline constexpr std::string_view kCjkPattern = "[一-龥぀-ゟ゠-ヿ]+";
inline constexpr std::string_view kMainPattern =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

// Calls emit(piece) for each pre-token of text (valid UTF-8, no special tokens), in order; the
// pieces concatenate to text.
template <typename Emit>
void pretokenize(std::string_view text, Emit&& emit);

}  // namespace mnemo::inference

#include "pretokenizer_impl.h"
