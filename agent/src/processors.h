#pragma once
// How tool_choice shapes an embedded turn (docs/agent.md): `none` bans the token that opens a call
// block; `auto` leaves the model free until it opens a call block, then decodes the block under the
// budget-aware tool-call constraint; `required` and a named tool use the constraint from the start.
#include <mnemo/inference/constraint.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/tokenizer.h>

#include <memory>
#include <vector>

namespace mnemo::agent::internal {

std::shared_ptr<inference::LogitsProcessor> make_ban_processor(
    std::vector<inference::TokenId> banned);

// `grammar` null: no tools, so no call may start (the DSML token is banned).
std::shared_ptr<inference::LogitsProcessor> make_auto_tool_processor(
    std::shared_ptr<const inference::ToolCallGrammar> grammar,
    std::shared_ptr<const inference::ConstraintVocabulary> vocab,
    const inference::Tokenizer& tokenizer, inference::TokenId dsml);

}  // namespace mnemo::agent::internal
