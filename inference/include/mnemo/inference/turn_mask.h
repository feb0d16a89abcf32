#pragma once
// The tokens a generated assistant turn must never contain. The V4 chat format gives most special
// tokens no place in a reply (role markers, BOS, <think> once the prompt has opened or closed it,
// the many <｜place▁holder▁no▁N｜> reservations), and the model's vocabulary is padded beyond the
// tokenizer's; a model that samples one writes garbage into content. Every turn, constrained or not,
// bans them before sampling.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/tokenizer.h>

#include <memory>
#include <vector>

namespace mnemo::inference {

// Sorted ids below `model_vocab` that a turn may not sample: every special token and every
// <｜...｜> marker (flagged special or not) except EOS (it
// ends the turn), `</think>` in thinking mode (it ends the reasoning) and ｜DSML｜ (it opens a
// tool-call block, which the turn's own processor allows or bans), and every id the tokenizer
// does not know.
// `eos` is the model's own end of turn (config.json's eos_token_id).
std::vector<TokenId> tokens_banned_in_turns(const Tokenizer& tokenizer, int64_t model_vocab,
                                            ThinkingMode mode, TokenId eos);

// A processor that bans `banned` and then applies `inner` (none: only the ban). A banned token
// that is sampled anyway (all logits banned) is refused in accept().
std::shared_ptr<LogitsProcessor> with_banned_tokens(
    std::shared_ptr<const std::vector<TokenId>> banned, std::shared_ptr<LogitsProcessor> inner);

}  // namespace mnemo::inference
