#pragma once
// Special-token strings of the DeepSeek V3 and V4 prompt formats (spec section 4, golden/chat README).
#include <string_view>

#include <mnemo/inference/tokenizer.h>

namespace mnemo::inference::tokens {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kThinkBegin = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
inline constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";

struct SpecialToken {
  std::string_view text;
  TokenId id;
};

// The tokens V4 adds to the V3 vocabulary, at the ids third-party code gives (spec section 4; not yet
// verified against an official V4 tokenizer.json).
inline constexpr SpecialToken kV4AddedTokens[] = {
    {kThinkBegin, 128821},
    {kThinkEnd, 128822},
    {kDsml, 128825},
    {kLatestReminder, 128828},
};

// Adds kV4AddedTokens to a V3 tokenizer, making the V4 tokenizer of the default model; a tokenizer
// that already has them at those ids is left as it is.
Status add_v4_tokens(Tokenizer& tokenizer);

}  // namespace mnemo::inference::tokens
