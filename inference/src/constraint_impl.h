#pragma once
// Private parts of the tool-call constraint: the compiled grammar (schemas, literal tries), the
// pushdown machine's state and steps, and the vocabulary's byte trie.
#include <mnemo/inference/constraint.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace mnemo::inference::constraint {

// Grammar symbols: bytes, then the special tokens the grammar uses (each one symbol, one token).
using Sym = uint16_t;
inline constexpr Sym kSymDsml = 256;
inline constexpr Sym kSymEos = 257;
inline constexpr Sym kSymThinkEnd = 258;
inline constexpr Sym kSymCallsBegin = 259;  // the V3 call tokens
inline constexpr Sym kSymCallsEnd = 260;
inline constexpr Sym kSymCallBegin = 261;
inline constexpr Sym kSymCallEnd = 262;
inline constexpr Sym kSymSep = 263;
inline constexpr int kSpecialSyms = 8;  // 256..263
using Syms = std::vector<Sym>;

void append_text(Syms& out, std::string_view text);

// A small trie of literal alternatives (tool names, parameter headers, object keys, enum values);
// terminals are ids given by the builder.
struct Trie {
  struct Node {
    std::vector<std::pair<Sym, uint32_t>> children;
    int32_t terminal = -1;
    uint32_t depth = 0;
    uint32_t min_dist = ~uint32_t{0};  // symbols to the nearest terminal below
    std::vector<int32_t> below;        // terminals in this subtree
  };
  std::vector<Node> nodes{Node{}};
  std::vector<uint32_t> term_len;  // by terminal id

  int32_t child(uint32_t node, Sym s) const {
    for (const auto& [sym, n] : nodes[node].children) {
      if (sym == s) return static_cast<int32_t>(n);
    }
    return -1;
  }
  void add(const Syms& s, int32_t terminal);
};

enum class SchemaKind : uint8_t {
  kAny,
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kNull,
  kArray,
  kObject,
  kFreeObject,
  kEnum,
  kUnion,
};

struct Property {
  std::string name;
  uint32_t schema = 0;
  bool required = false;
  int64_t entry_cost = 0;  // the key (or DSML header) + the shortest value (+ DSML closing tag)
};

struct Schema {
  SchemaKind kind = SchemaKind::kAny;
  uint32_t items = 0;             // kArray
  std::vector<Property> props;    // kObject
  uint64_t required_mask = 0;     // kObject
  uint32_t trie = 0;              // kObject: keys `"k": `; kEnum: serialised values
  std::vector<uint32_t> members;  // kUnion
  int64_t min_len = 1;            // symbols of the shortest valid value
  uint16_t first = '0';           // the first symbol of that value
  // kString: minLength/maxLength in characters (code points; an escape is one).
  uint32_t min_chars = 0, max_chars = kUnbounded;
  // kArray: minItems/maxItems.
  uint32_t min_items = 0, max_items = kUnbounded;
  // kInteger, kNumber: the inclusive integer range the value's integer part is held to
  // (minimum/maximum, exclusiveMinimum/exclusiveMaximum); a bounded number has no exponent and a
  // fraction only where every fraction stays in range.
  bool bounded = false;
  int64_t lo = 0, hi = 0;
  double lo_real = 0, hi_real = 0;  // kNumber: the bounds as written

  static constexpr uint32_t kUnbounded = ~uint32_t{0};
};

struct Tool {
  std::string name;
  std::vector<Property> params;  // schema: the value's; entry_cost includes header and closing
  std::vector<bool> raw;         // string="true" parameters
  std::vector<int32_t> raw_enum_trie;  // -1 or a trie of `VALUE</｜DSML｜parameter>\n`
  uint64_t required_mask = 0;
  uint32_t trie_first = 0, trie_next = 0;  // headers + the invoke's closing tag (terminal = size)
  uint32_t args_schema = 0;                // V3: the arguments object
};

}  // namespace mnemo::inference::constraint

namespace mnemo::inference {

struct ToolCallGrammar::Impl {
  ToolCallGrammarOptions options;
  std::vector<constraint::Schema> schemas;  // [0] is "any JSON value"
  std::vector<constraint::Trie> tries;
  std::vector<constraint::Tool> tools;
  std::vector<constraint::Syms> literals;
  // Schema keywords the grammar does not enforce while decoding, as "PATH.KEYWORD" (the arguments
  // are validated against them before a call runs).
  std::vector<std::string> unenforced;
  uint32_t name_trie = 0;        // `NAME">\n` -> tool index
  uint32_t block_next_trie = 0;  // 0: another invoke, 1: the end of the block
  uint32_t block_end_trie = 0;   // only the end of the block
  uint32_t bool_trie = 0, null_trie = 0;
  uint32_t lit_open = 0;         // "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\""
  uint32_t lit_param_tail = 0;   // "parameter>\n" (after a raw value's "</｜DSML｜")
  uint32_t lit_param_close = 0;  // "</｜DSML｜parameter>\n"
  uint32_t lit_call_close = 0;   // V3: "\n```<｜tool▁call▁end｜>"
  int64_t block_close = 0;       // symbols of the block's end (terminal 1 of block_next_trie)
  int64_t min_invoke = 0;        // name + the shortest parameter list and closing tag
};

namespace constraint {

inline constexpr int kMaxDepth = 24;

enum class FrameKind : uint8_t {
  kRoot,
  kLit,
  kInvoke,
  kVal,
  kRaw,
  kText,
  kJstr,
  kNum,
  kTrie,
  kArr,
  kObj,
  kFreeObj,
};

// One pushdown frame; the meaning of the fields depends on the kind (constraint_machine.cc).
struct Frame {
  FrameKind kind = FrameKind::kRoot;
  uint8_t phase = 0;
  uint8_t a = 0;  // text: UTF-8 state; invoke: first parameter; num: integer only
  uint8_t b = 0;  // raw: "</" progress; jstr: escape state; num: length
  uint32_t node = 0;
  uint32_t ref = 0;
  uint32_t c = 0;  // text: marker (KMP) state; root: calls so far
  uint64_t seen = 0;
};

struct State {
  int depth = 0;
  std::array<Frame, kMaxDepth> f;
  Frame& top() { return f[static_cast<size_t>(depth - 1)]; }
  const Frame& top() const { return f[static_cast<size_t>(depth - 1)]; }
  void copy_from(const State& o) {
    depth = o.depth;
    std::copy(o.f.begin(), o.f.begin() + depth, f.begin());
  }
};

State initial_state(const ToolCallGrammar::Impl& g);

// One frame's reaction to a symbol: taken, refused, or the frame ended and its parent sees the symbol.
enum class Step { kConsumed, kReject, kRetry };
inline bool is_digit(Sym s) { return s >= '0' && s <= '9'; }
inline constexpr int kMaxNumberDigits = 20;
// A number frame's step (constraint_number.cc), and what a bounded one still needs.
Step step_num(const ToolCallGrammar::Impl& g, State& s, Sym sym);
int64_t bounded_num_cost(const Schema& sc, const Frame& f);
// Whether a value of `schema` may start with `sym` (a union dispatches on it).
bool schema_starts(const ToolCallGrammar::Impl& g, uint32_t schema, Sym sym);
// Consumes one symbol; false when the grammar does not allow it (s is then unspecified).
bool advance(const ToolCallGrammar::Impl& g, State& s, Sym sym);
// Symbols of the shortest completion (every byte has a token, so also a token count bound).
int64_t cost(const ToolCallGrammar::Impl& g, const State& s);
bool is_done(const State& s);
// A text frame's byte step that never leaves the frame (false also where the frame would end).
// Counts characters in f.node (kJstr, kRaw).
bool text_byte(Frame& f, uint8_t byte);
// Whether a string frame's minLength/maxLength decide which tokens fit (the cached text masks,
// which know nothing of lengths, then do not apply).
bool text_bounds_bind(const ToolCallGrammar::Impl& g, const Frame& f, int max_token_bytes);
// Key of a text frame's substate, for the vocabulary's mask cache.
uint64_t text_key(const Frame& f);
int64_t text_cost(const Frame& f);

}  // namespace constraint

struct ConstraintVocabulary::Impl {
  size_t vocab_size = 0;
  // The byte tokens in a preorder trie: node i's subtree is [i, end[i]).
  std::vector<uint8_t> sym;
  std::vector<uint8_t> depth;
  std::vector<TokenId> token;  // -1: no token ends here
  std::vector<uint32_t> end;
  std::unordered_map<uint32_t, std::vector<TokenId>> duplicates;  // more tokens with a node's bytes
  int max_len = 0;
  // Token of each special symbol (kSymDsml + i), -1 when the tokenizer has none.
  std::array<TokenId, constraint::kSpecialSyms> special{};
  TokenId dsml = -1, eos = -1;
  std::vector<TokenId> quote_tokens;  // byte tokens containing '"' (they may end a JSON string)
  std::vector<std::string> bytes;     // by id; empty for special tokens

  // The byte tokens that stay inside a text frame, split by the frame's completion cost after
  // them (so a tight budget needs no per-token walk), by text_key; filled on first use.
  using TextMasks = std::vector<std::pair<int64_t, std::vector<uint64_t>>>;
  mutable std::mutex mutex;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const TextMasks>> text_masks;

  std::shared_ptr<const TextMasks> text_mask(const constraint::Frame& f) const;
  void set_node_tokens(uint32_t node, std::vector<uint64_t>& mask) const;
};

}  // namespace mnemo::inference
