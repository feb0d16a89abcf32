#pragma once
// Constrained decoding of DeepSeek-V4 DSML tool calls (docs/constrained_decoding.md): a pushdown
// machine over the call syntax and each tool's JSON-schema parameters, turned into a per-token mask
// over the byte-level vocabulary. It is budget-aware: a token is allowed only when the shortest
// completion after it still fits in the tokens left, so a call is always complete and parseable.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/tokenizer.h>

namespace mnemo::inference {

// The vocabulary as the constraint sees it: every token's bytes in a preorder byte trie, the
// special tokens the grammar uses, and a cache of text-state masks. Built once per tokenizer,
// shared by every constraint (thread-safe).
class ConstraintVocabulary {
 public:
  static Result<std::shared_ptr<const ConstraintVocabulary>> build(const Tokenizer& tokenizer);
  ~ConstraintVocabulary();
  size_t vocab_size() const;
  TokenId eos_token() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit ConstraintVocabulary(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How calls are written: DeepSeek-V4 DSML tags, or the V3 family's special tokens with JSON
// arguments
// (`<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```
// <｜tool▁call▁end｜>` ... `<｜tool▁calls▁end｜>` EOS).
enum class ToolCallSyntax { kDsml, kV3 };

struct ToolCallGrammarOptions {
  ToolCallSyntax syntax = ToolCallSyntax::kDsml;
  // tool_choice naming one function: only it may be called. Absent: any declared tool ("required").
  std::optional<std::string> forced_tool;
  // Calls in the block: 0 = any number >= 1, 1 = exactly one (parallel_tool_calls false).
  int max_calls = 0;
  // Thinking mode (DSML only): free reasoning ended by </think> comes before the block.
  bool reasoning = false;
};

// The compiled grammar of one tool set: immutable, shareable between requests.
class ToolCallGrammar {
 public:
  // `tools`: OpenAI tool definitions as JSON text, either {"type": "function", "function": {...}}
  // or the bare function object {"name", "description", "parameters"}. Errors name the tool/field.
  static Result<std::shared_ptr<const ToolCallGrammar>> compile(
      std::span<const std::string> tools, const ToolCallGrammarOptions& options = {});
  ~ToolCallGrammar();

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit ToolCallGrammar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request's constraint: the completion after the prompt ("<｜Assistant｜></think>" in chat
// mode, "<｜Assistant｜><think>" with options.reasoning) is forced to be
// "\n\n<｜DSML｜tool_calls>\n" INVOKE+ "</｜DSML｜tool_calls>" EOS (V3: the calls right after
// "<｜Assistant｜>"). Add the EOS to stop_tokens.
class ToolCallConstraint final : public LogitsProcessor {
 public:
  ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar,
                     std::shared_ptr<const ConstraintVocabulary> vocab);
  ~ToolCallConstraint() override;

  // Bitset over the vocabulary (bit t of word t/64): tokens that keep the output a prefix of a
  // valid call which can still be finished within `remaining` tokens (this one included). When the
  // budget is below min_tokens(), the tokens on a shortest completion are allowed.
  void allowed(std::vector<uint64_t>& mask, int64_t remaining);
  // The same mask by walking the whole vocabulary trie, without the cached text-state masks: the
  // reference the fast path is tested against (milliseconds per call).
  void allowed_by_walk(std::vector<uint64_t>& mask, int64_t remaining);
  // Sets the logits of disallowed tokens (and ids past the vocabulary) to -infinity.
  void apply(float* logits, int64_t vocab, int64_t remaining) override;
  // Advances past a sampled token; a token the mask did not allow is an error (state unchanged).
  Status accept(TokenId token) override;
  // The block and its EOS are complete.
  bool done() const;
  // Tokens the shortest completion from here needs (an upper bound: one token per byte).
  int64_t min_tokens() const;
  // Symbols accepted so far, for diagnostics.
  int64_t accepted_tokens() const { return accepted_; }

  struct State;

 private:
  void compute(std::vector<uint64_t>& mask, int64_t remaining, bool fast);

  std::shared_ptr<const ToolCallGrammar> grammar_;
  std::shared_ptr<const ConstraintVocabulary> vocab_;
  std::unique_ptr<State> state_;
  std::vector<uint64_t> mask_;
  int64_t accepted_ = 0;
};

}  // namespace mnemo::inference
