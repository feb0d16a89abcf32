// The pushdown machine of the tool-call constraint: one symbol at a time, and the exact length of
// the shortest completion (the sum over frames of what each still needs once its child is done).
#include <algorithm>
#include <limits>

#include "constraint_impl.h"

namespace mnemo::inference::constraint {
namespace {

using GImpl = ToolCallGrammar::Impl;

// Root phases.
constexpr uint8_t kRootAfterInvoke = 0, kRootNeedEos = 1, kRootDone = 2;
// Invoke phases.
constexpr uint8_t kInvokeName = 0, kInvokeParams = 1;
// Array, object and free-object phases.
constexpr uint8_t kArrFirst = 0, kArrAfterItem = 1, kArrComma = 2;
constexpr uint8_t kObjFirst = 0, kObjKey = 1, kObjAfterValue = 2, kObjComma = 3;
constexpr uint8_t kFreeFirst = 0, kFreeKeyDone = 1, kFreeColon = 2, kFreeAfterValue = 3,
                  kFreeComma = 4, kFreeNeedKey = 5;
// A param value's closing "</｜DSML｜parameter>\n" and an invoke's "</｜DSML｜invoke>\n".
constexpr int64_t kInvokeClose = 11;

// Every DeepSeek special token's text has this bar (｜DSML｜, <｜tool▁call▁end｜>, ...): text
// never spells it in bytes, so no value can read as a tag or a special token.
constexpr std::string_view kMarker = "｜";

struct MarkerDfa {
  std::array<std::array<uint8_t, 256>, kMarker.size()> next{};
  MarkerDfa() {
    std::array<size_t, kMarker.size()> fail{};
    for (size_t i = 1, k = 0; i < kMarker.size(); ++i) {
      while (k > 0 && kMarker[i] != kMarker[k]) k = fail[k - 1];
      if (kMarker[i] == kMarker[k]) ++k;
      fail[i] = k;
    }
    for (size_t s = 0; s < kMarker.size(); ++s) {
      for (int b = 0; b < 256; ++b) {
        size_t k = s;
        while (k > 0 && static_cast<unsigned char>(kMarker[k]) != b) k = fail[k - 1];
        if (static_cast<unsigned char>(kMarker[k]) == b) ++k;
        next[s][static_cast<size_t>(b)] = static_cast<uint8_t>(k);
      }
    }
  }
};
const MarkerDfa& marker_dfa() {
  static const MarkerDfa dfa;
  return dfa;
}

// UTF-8 validity: low 2 bits = continuation bytes still needed, bits 2.. = the next byte's range.
bool utf8_step(uint8_t& st, uint8_t b) {
  const int need = st & 3;
  if (need > 0) {
    static constexpr uint8_t kLo[] = {0x80, 0xA0, 0x80, 0x90, 0x80};
    static constexpr uint8_t kHi[] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    const int r = st >> 2;
    if (b < kLo[r] || b > kHi[r]) return false;
    st = static_cast<uint8_t>(need - 1);
    return true;
  }
  if (b < 0x80) return true;
  if (b >= 0xC2 && b <= 0xDF)
    st = 1;
  else if (b == 0xE0)
    st = 2 | (1 << 2);
  else if (b == 0xED)
    st = 2 | (2 << 2);
  else if (b >= 0xE1 && b <= 0xEF)
    st = 2;
  else if (b == 0xF0)
    st = 3 | (3 << 2);
  else if (b >= 0xF1 && b <= 0xF3)
    st = 3;
  else if (b == 0xF4)
    st = 3 | (4 << 2);
  else
    return false;
  return true;
}

bool is_hex(Sym s) { return is_digit(s) || (s >= 'a' && s <= 'f') || (s >= 'A' && s <= 'F'); }

Frame make(FrameKind kind, uint32_t ref = 0, uint8_t phase = 0) {
  Frame f;
  f.kind = kind;
  f.ref = ref;
  f.phase = phase;
  return f;
}

bool push(State& s, const Frame& f) {
  if (s.depth >= kMaxDepth) return false;
  s.f[static_cast<size_t>(s.depth++)] = f;
  return true;
}

// Whether a keyed trie's subtree still holds a terminal the frame may pick.
bool any_allowed(const Trie& t, uint32_t node, uint64_t seen, uint64_t required, int32_t close) {
  for (int32_t term : t.nodes[node].below) {
    if (term == close ? (required & ~seen) == 0 : !((seen >> term) & 1)) return true;
  }
  return false;
}

// A value frame decides what it is from its first symbol and replaces itself.
Step step_val(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  const uint32_t schema = f.ref;
  const Schema& sc = g.schemas[schema];
  const bool nest_ok = s.depth + 2 < kMaxDepth;
  SchemaKind kind = sc.kind;
  if (kind == SchemaKind::kUnion) {
    for (uint32_t m : sc.members) {
      if (schema_starts(g, m, sym)) {
        f.ref = m;
        return Step::kRetry;
      }
    }
    return Step::kReject;
  }
  if (kind == SchemaKind::kAny) {
    if (sym == '"')
      kind = SchemaKind::kString;
    else if (sym == '-' || is_digit(sym))
      kind = SchemaKind::kNumber;
    else if (sym == 't' || sym == 'f')
      kind = SchemaKind::kBoolean;
    else if (sym == 'n')
      kind = SchemaKind::kNull;
    else if (sym == '[')
      kind = SchemaKind::kArray;
    else if (sym == '{')
      kind = SchemaKind::kFreeObject;
    else
      return Step::kReject;
  }
  switch (kind) {
    case SchemaKind::kString:
      if (sym != '"') return Step::kReject;
      f = make(FrameKind::kJstr, schema);  // ref: the schema's length bounds
      return Step::kConsumed;
    case SchemaKind::kInteger:
    case SchemaKind::kNumber:
      f = make(FrameKind::kNum, schema);
      f.a = kind == SchemaKind::kInteger;
      return Step::kRetry;
    case SchemaKind::kBoolean:
      f = make(FrameKind::kTrie, g.bool_trie);
      return Step::kRetry;
    case SchemaKind::kNull:
      f = make(FrameKind::kTrie, g.null_trie);
      return Step::kRetry;
    case SchemaKind::kEnum:
      f = make(FrameKind::kTrie, sc.trie);
      return Step::kRetry;
    case SchemaKind::kArray:
      if (sym != '[' || !nest_ok) return Step::kReject;
      f = make(FrameKind::kArr, sc.kind == SchemaKind::kAny ? 0 : sc.items, kArrFirst);
      f.c = sc.kind == SchemaKind::kAny ? 0 : schema;  // its item bounds; node counts the items
      return Step::kConsumed;
    case SchemaKind::kObject:
      if (sym != '{' || !nest_ok) return Step::kReject;
      f = make(FrameKind::kObj, schema, kObjFirst);
      return Step::kConsumed;
    case SchemaKind::kFreeObject:
      if (sym != '{' || !nest_ok) return Step::kReject;
      f = make(FrameKind::kFreeObj, 0, kFreeFirst);
      return Step::kConsumed;
    default:
      return Step::kReject;
  }
}

Step step_trie(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  const Trie& t = g.tries[f.ref];
  int32_t n = t.child(f.node, sym);
  if (n < 0) {
    if (t.nodes[f.node].terminal < 0) return Step::kReject;
    --s.depth;
    return Step::kRetry;
  }
  f.node = static_cast<uint32_t>(n);
  const Trie::Node& node = t.nodes[f.node];
  if (node.terminal >= 0 && node.children.empty()) --s.depth;
  return Step::kConsumed;
}

Step step_invoke(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  if (f.phase == kInvokeName) {
    const Trie& t = g.tries[g.name_trie];
    int32_t n = t.child(f.node, sym);
    if (n < 0) return Step::kReject;
    f.node = static_cast<uint32_t>(n);
    if (t.nodes[f.node].terminal >= 0 && g.options.syntax == ToolCallSyntax::kV3) {
      // V3: the arguments are one JSON object, then the call's closing token.
      const Tool& tool = g.tools[static_cast<size_t>(t.nodes[f.node].terminal)];
      f = make(FrameKind::kLit, g.lit_call_close);
      push(s, make(FrameKind::kVal, tool.args_schema));
      return Step::kConsumed;
    }
    if (t.nodes[f.node].terminal >= 0) {
      f.ref = static_cast<uint32_t>(t.nodes[f.node].terminal);
      f.phase = kInvokeParams;
      f.node = 0;
      f.a = 1;
    }
    return Step::kConsumed;
  }
  const Tool& tool = g.tools[f.ref];
  const Trie& t = g.tries[f.a ? tool.trie_first : tool.trie_next];
  const auto close = static_cast<int32_t>(tool.params.size());
  int32_t n = t.child(f.node, sym);
  if (n < 0 || !any_allowed(t, static_cast<uint32_t>(n), f.seen, tool.required_mask, close)) {
    return Step::kReject;
  }
  f.node = static_cast<uint32_t>(n);
  const int32_t term = t.nodes[f.node].terminal;
  if (term < 0) return Step::kConsumed;
  if (term == close) {
    --s.depth;
    return Step::kConsumed;
  }
  f.seen |= uint64_t{1} << term;
  f.node = 0;
  f.a = 0;
  const auto p = static_cast<size_t>(term);
  if (tool.raw[p]) {
    if (tool.raw_enum_trie[p] >= 0) {
      push(s, make(FrameKind::kTrie, static_cast<uint32_t>(tool.raw_enum_trie[p])));
    } else {
      push(s, make(FrameKind::kRaw, tool.params[p].schema));
    }
  } else {
    push(s, make(FrameKind::kLit, g.lit_param_close));
    push(s, make(FrameKind::kVal, tool.params[p].schema));
  }
  return Step::kConsumed;
}

Step step_obj(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  const Schema& sc = g.schemas[f.ref];
  const bool may_close = (sc.required_mask & ~f.seen) == 0;
  switch (f.phase) {
    case kObjFirst:
      if (sym == '}' && may_close) {
        --s.depth;
        return Step::kConsumed;
      }
      f.phase = kObjKey;
      f.node = 0;
      return Step::kRetry;
    case kObjKey: {
      const Trie& t = g.tries[sc.trie];
      int32_t n = t.child(f.node, sym);
      if (n < 0 || !any_allowed(t, static_cast<uint32_t>(n), f.seen, 0, -1)) return Step::kReject;
      f.node = static_cast<uint32_t>(n);
      const int32_t term = t.nodes[f.node].terminal;
      if (term < 0) return Step::kConsumed;
      f.seen |= uint64_t{1} << term;
      f.phase = kObjAfterValue;
      return push(s, make(FrameKind::kVal, sc.props[static_cast<size_t>(term)].schema))
                 ? Step::kConsumed
                 : Step::kReject;
    }
    case kObjAfterValue: {
      const uint64_t all =
          sc.props.size() >= 64 ? ~uint64_t{0} : (uint64_t{1} << sc.props.size()) - 1;
      if (sym == ',' && (f.seen & all) != all) {
        f.phase = kObjComma;
        return Step::kConsumed;
      }
      if (sym == '}' && may_close) {
        --s.depth;
        return Step::kConsumed;
      }
      return Step::kReject;
    }
    case kObjComma:
      if (sym != ' ') return Step::kReject;
      f.phase = kObjKey;
      f.node = 0;
      return Step::kConsumed;
  }
  return Step::kReject;
}

Step step_free_obj(State& s, Sym sym) {
  Frame& f = s.top();
  auto go = [&](uint8_t phase) {
    f.phase = phase;
    return Step::kConsumed;
  };
  switch (f.phase) {
    case kFreeFirst:
    case kFreeNeedKey:
      if (f.phase == kFreeFirst && sym == '}') {
        --s.depth;
        return Step::kConsumed;
      }
      if (sym != '"') return Step::kReject;
      f.phase = kFreeKeyDone;
      return push(s, make(FrameKind::kJstr)) ? Step::kConsumed : Step::kReject;
    case kFreeKeyDone:
      return sym == ':' ? go(kFreeColon) : Step::kReject;
    case kFreeColon:
      if (sym != ' ') return Step::kReject;
      f.phase = kFreeAfterValue;
      return push(s, make(FrameKind::kVal, 0)) ? Step::kConsumed : Step::kReject;
    case kFreeAfterValue:
      if (sym == ',') return go(kFreeComma);
      if (sym == '}') {
        --s.depth;
        return Step::kConsumed;
      }
      return Step::kReject;
    case kFreeComma:
      return sym == ' ' ? go(kFreeNeedKey) : Step::kReject;
  }
  return Step::kReject;
}

Step step_frame(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  switch (f.kind) {
    case FrameKind::kRoot: {
      if (f.phase == kRootNeedEos) {
        if (sym != kSymEos) return Step::kReject;
        f.phase = kRootDone;
        return Step::kConsumed;
      }
      if (f.phase != kRootAfterInvoke) return Step::kReject;
      const bool more =
          g.options.max_calls <= 0 || f.c < static_cast<uint32_t>(g.options.max_calls);
      const Trie& t = g.tries[more ? g.block_next_trie : g.block_end_trie];
      int32_t n = t.child(f.node, sym);
      if (n < 0) return Step::kReject;
      f.node = static_cast<uint32_t>(n);
      const int32_t term = t.nodes[f.node].terminal;
      if (term == 0) {
        ++f.c;
        f.node = 0;
        push(s, make(FrameKind::kInvoke, 0, kInvokeName));
      } else if (term == 1) {
        f.phase = kRootNeedEos;
      }
      return Step::kConsumed;
    }
    case FrameKind::kLit: {
      const Syms& lit = g.literals[f.ref];
      if (lit[f.node] != sym) return Step::kReject;
      if (++f.node == lit.size()) --s.depth;
      return Step::kConsumed;
    }
    case FrameKind::kInvoke:
      return step_invoke(g, s, sym);
    case FrameKind::kVal:
      return step_val(g, s, sym);
    case FrameKind::kRaw: {
      // f.node counts the characters, a pending "</" (f.b of them) included.
      const Schema& sc = g.schemas[f.ref];
      if (sym == kSymDsml) {
        if (f.b != 2 || f.node - 2 < sc.min_chars) return Step::kReject;
        f = make(FrameKind::kLit, g.lit_param_tail);
        return Step::kConsumed;
      }
      return sym < 256 && text_byte(f, static_cast<uint8_t>(sym)) && f.node - f.b <= sc.max_chars
                 ? Step::kConsumed
                 : Step::kReject;
    }
    case FrameKind::kText:
      if (sym == kSymThinkEnd) {
        if (f.a != 0) return Step::kReject;
        --s.depth;
        return Step::kConsumed;
      }
      return sym < 256 && text_byte(f, static_cast<uint8_t>(sym)) ? Step::kConsumed : Step::kReject;
    case FrameKind::kJstr: {
      const Schema& sc = g.schemas[f.ref];
      if (sym == '"' && f.a == 0 && f.b == 0) {
        if (f.node < sc.min_chars) return Step::kReject;
        --s.depth;
        return Step::kConsumed;
      }
      return sym < 256 && text_byte(f, static_cast<uint8_t>(sym)) && f.node <= sc.max_chars
                 ? Step::kConsumed
                 : Step::kReject;
    }
    case FrameKind::kNum:
      return step_num(g, s, sym);
    case FrameKind::kTrie:
      return step_trie(g, s, sym);
    case FrameKind::kArr: {
      // f.node counts the items begun; f.c is the array's schema (its item bounds).
      const Schema& sc = g.schemas[f.c];
      if (f.phase == kArrComma) {
        if (sym != ' ') return Step::kReject;
        f.phase = kArrAfterItem;
        ++f.node;
        return push(s, make(FrameKind::kVal, f.ref)) ? Step::kConsumed : Step::kReject;
      }
      if (sym == ']') {
        if (f.node < sc.min_items) return Step::kReject;
        --s.depth;
        return Step::kConsumed;
      }
      if (f.phase == kArrAfterItem) {
        if (sym != ',' || f.node >= sc.max_items) return Step::kReject;
        f.phase = kArrComma;
        return Step::kConsumed;
      }
      if (sc.max_items == 0) return Step::kReject;
      f.phase = kArrAfterItem;
      ++f.node;
      return push(s, make(FrameKind::kVal, f.ref)) ? Step::kRetry : Step::kReject;
    }
    case FrameKind::kObj:
      return step_obj(g, s, sym);
    case FrameKind::kFreeObj:
      return step_free_obj(s, sym);
  }
  return Step::kReject;
}

// The cheapest way through a keyed trie from `node`: symbols to the terminal plus what the pick
// costs afterwards (`after(term)`); terminals already used are skipped.
template <class After>
int64_t trie_min(const Trie& t, uint32_t node, uint64_t seen, uint64_t required, int32_t close,
                 After after) {
  int64_t best = std::numeric_limits<int64_t>::max() / 4;
  const uint32_t d = t.nodes[node].depth;
  for (int32_t term : t.nodes[node].below) {
    const bool ok = term == close ? (required & ~seen) == 0 : !((seen >> term) & 1);
    if (!ok) continue;
    best = std::min(best,
                    static_cast<int64_t>(t.term_len[static_cast<size_t>(term)] - d) + after(term));
  }
  return best;
}

// Σ over the required properties not yet seen, and how many there are.
std::pair<int64_t, int64_t> required_rest(const std::vector<Property>& props, uint64_t seen) {
  int64_t sum = 0, n = 0;
  for (size_t i = 0; i < props.size(); ++i) {
    if (props[i].required && !((seen >> i) & 1)) {
      sum += props[i].entry_cost;
      ++n;
    }
  }
  return {sum, n};
}

// What an object still needs after its current key/value: the missing required entries and "}".
int64_t obj_after(const Schema& sc, uint64_t seen) {
  auto [sum, n] = required_rest(sc.props, seen);
  return sum + 2 * n + 1;
}

// What an invoke's parameter list needs from the trie root: missing required parameters, closing.
int64_t params_after(const Tool& tool, uint64_t seen, bool first) {
  auto [sum, n] = required_rest(tool.params, seen);
  return n > 0 ? sum + kInvokeClose : kInvokeClose + (first ? 1 : 0);
}

int64_t frame_cost(const GImpl& g, const Frame& f) {
  switch (f.kind) {
    case FrameKind::kRoot: {
      if (f.phase == kRootDone) return 0;
      if (f.phase == kRootNeedEos) return 1;
      const bool more =
          g.options.max_calls <= 0 || f.c < static_cast<uint32_t>(g.options.max_calls);
      const Trie& t = g.tries[more ? g.block_next_trie : g.block_end_trie];
      return trie_min(t, f.node, 0, 0, -1, [&](int32_t term) {
        return term == 0 ? g.min_invoke + g.block_close + 1 : int64_t{1};
      });
    }
    case FrameKind::kLit:
      return static_cast<int64_t>(g.literals[f.ref].size() - f.node);
    case FrameKind::kInvoke: {
      if (f.phase == kInvokeName) {
        const Trie& t = g.tries[g.name_trie];
        return trie_min(t, f.node, 0, 0, -1, [&](int32_t term) {
          const Tool& tool = g.tools[static_cast<size_t>(term)];
          if (g.options.syntax == ToolCallSyntax::kV3) {
            return g.schemas[tool.args_schema].min_len +
                   static_cast<int64_t>(g.literals[g.lit_call_close].size());
          }
          return params_after(tool, 0, true);
        });
      }
      const Tool& tool = g.tools[f.ref];
      const Trie& t = g.tries[f.a ? tool.trie_first : tool.trie_next];
      const auto close = static_cast<int32_t>(tool.params.size());
      return trie_min(t, f.node, f.seen, tool.required_mask, close, [&](int32_t term) {
        if (term == close) return int64_t{0};
        const Property& p = tool.params[static_cast<size_t>(term)];
        const auto header = static_cast<int64_t>(t.term_len[static_cast<size_t>(term)]);
        return p.entry_cost - header + params_after(tool, f.seen | (uint64_t{1} << term), false);
      });
    }
    case FrameKind::kVal:
      return g.schemas[f.ref].min_len;
    case FrameKind::kRaw: {
      const Schema& sc = g.schemas[f.ref];
      if (f.node - f.b >= sc.min_chars) return text_cost(f);
      // Too short: the pending "</" stays text, more characters, then the whole closing tag.
      return (f.a & 3) + (sc.min_chars > f.node ? sc.min_chars - f.node : 0) + 14;
    }
    case FrameKind::kJstr: {
      const Schema& sc = g.schemas[f.ref];
      return text_cost(f) + (f.node < sc.min_chars ? sc.min_chars - f.node : 0);
    }
    case FrameKind::kText:
      return text_cost(f);
    case FrameKind::kNum:
      if (g.schemas[f.ref].bounded) return bounded_num_cost(g.schemas[f.ref], f);
      return (f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8) ? 0 : 1;
    case FrameKind::kTrie:
      return g.tries[f.ref].nodes[f.node].min_dist;
    case FrameKind::kArr: {
      // The items still required after the current one, each ", " and its shortest value.
      const Schema& sc = g.schemas[f.c];
      const int64_t item = g.schemas[f.ref].min_len;
      const int64_t have = f.node + (f.phase == kArrComma ? 1 : 0);
      const int64_t more = sc.min_items > have ? sc.min_items - have : 0;
      if (f.phase == kArrComma) return 1 + item + more * (2 + item) + 1;
      if (f.phase == kArrFirst && sc.min_items > 0)
        return sc.min_items * item + 2 * (sc.min_items - 1) + 1;
      return more * (2 + item) + 1;
    }
    case FrameKind::kObj: {
      const Schema& sc = g.schemas[f.ref];
      switch (f.phase) {
        case kObjFirst: {
          auto [sum, n] = required_rest(sc.props, f.seen);
          return n > 0 ? sum + 2 * (n - 1) + 1 : 1;
        }
        case kObjAfterValue:
          return obj_after(sc, f.seen);
        default: {
          const Trie& t = g.tries[sc.trie];
          const int64_t keys =
              trie_min(t, f.phase == kObjKey ? f.node : 0, f.seen, 0, -1, [&](int32_t term) {
                const Property& p = sc.props[static_cast<size_t>(term)];
                return p.entry_cost - static_cast<int64_t>(t.term_len[static_cast<size_t>(term)]) +
                       obj_after(sc, f.seen | (uint64_t{1} << term));
              });
          return keys + (f.phase == kObjComma ? 1 : 0);
        }
      }
    }
    case FrameKind::kFreeObj: {
      static constexpr int64_t kFree[] = {1, 4, 3, 1, 7, 6};
      return kFree[f.phase];
    }
  }
  return 0;
}

}  // namespace

bool schema_starts(const GImpl& g, uint32_t schema, Sym sym) {
  const Schema& sc = g.schemas[schema];
  switch (sc.kind) {
    case SchemaKind::kAny:
      return sym == '"' || sym == '-' || is_digit(sym) || sym == 't' || sym == 'f' || sym == 'n' ||
             sym == '[' || sym == '{';
    case SchemaKind::kString:
      return sym == '"';
    case SchemaKind::kInteger:
    case SchemaKind::kNumber:
      return sym == '-' || is_digit(sym);
    case SchemaKind::kBoolean:
      return sym == 't' || sym == 'f';
    case SchemaKind::kNull:
      return sym == 'n';
    case SchemaKind::kArray:
      return sym == '[';
    case SchemaKind::kObject:
    case SchemaKind::kFreeObject:
      return sym == '{';
    case SchemaKind::kEnum:
      return g.tries[sc.trie].child(0, sym) >= 0;
    case SchemaKind::kUnion:
      return std::any_of(sc.members.begin(), sc.members.end(),
                         [&](uint32_t m) { return schema_starts(g, m, sym); });
  }
  return false;
}

bool text_byte(Frame& f, uint8_t b) {
  // A character begins at a byte that is not a UTF-8 continuation, or at an escape's backslash.
  const bool starts = (f.a & 3) == 0 && (f.kind != FrameKind::kJstr || f.b == 0);
  if (starts) ++f.node;  // a refused byte leaves the frame unused
  if (f.kind == FrameKind::kJstr && f.b != 0) {  // inside an escape: \X or \u00XX
    switch (f.b) {
      case 1:
        if (b == 'u') {
          f.b = 2;
          return true;
        }
        if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' ||
            b == 't') {
          f.b = 0;
          return true;
        }
        return false;
      case 2:
      case 3:
        return b == '0' ? (++f.b, true) : false;
      case 4:
        return (b == '0' || b == '1') ? (++f.b, true) : false;
      default:
        return is_hex(b) ? (f.b = 0, true) : false;
    }
  }
  if (f.kind == FrameKind::kJstr) {
    if (b < 0x20 || (f.a == 0 && b == '"')) return false;
    if (b == '\\' && f.a == 0) {
      f.b = 1;
      f.c = 0;
      return true;
    }
  } else if (b < 0x20 && b != '\n' && b != '\t' && b != '\r') {
    return false;
  }
  if (!utf8_step(f.a, b)) return false;
  f.c = marker_dfa().next[f.c][b];
  if (f.c == kMarker.size()) return false;
  if (f.kind == FrameKind::kRaw) f.b = b == '<' ? 1 : (b == '/' && f.b == 1) ? 2 : 0;
  return true;
}

bool text_bounds_bind(const GImpl& g, const Frame& f, int max_token_bytes) {
  if (f.kind != FrameKind::kJstr && f.kind != FrameKind::kRaw) return false;
  const Schema& sc = g.schemas[f.ref];
  const uint32_t have = f.kind == FrameKind::kRaw ? f.node - f.b : f.node;
  return have < sc.min_chars ||
         (sc.max_chars != Schema::kUnbounded &&
          static_cast<uint64_t>(f.node) + static_cast<uint64_t>(max_token_bytes) > sc.max_chars);
}

uint64_t text_key(const Frame& f) {
  return (static_cast<uint64_t>(f.kind) << 32) | (static_cast<uint64_t>(f.a) << 24) |
         (static_cast<uint64_t>(f.b) << 16) | f.c;
}

int64_t text_cost(const Frame& f) {
  const int64_t pending = f.a & 3;
  switch (f.kind) {
    case FrameKind::kRaw:
      return pending + (2 - f.b) + 1 + 11;
    case FrameKind::kText:
      return pending + 1;
    default: {
      static constexpr int64_t kEscape[] = {0, 1, 4, 3, 2, 1};
      return pending + kEscape[f.b] + 1;
    }
  }
}

State initial_state(const GImpl& g) {
  State s;
  Frame root = make(FrameKind::kRoot, 0, kRootAfterInvoke);
  root.c = 1;
  push(s, root);
  push(s, make(FrameKind::kInvoke, 0, kInvokeName));
  push(s, make(FrameKind::kLit, g.lit_open));
  if (g.options.reasoning) push(s, make(FrameKind::kText));
  return s;
}

bool advance(const GImpl& g, State& s, Sym sym) {
  for (int guard = 0; guard < 4 * kMaxDepth; ++guard) {
    if (s.depth == 0) return false;
    switch (step_frame(g, s, sym)) {
      case Step::kConsumed:
        return true;
      case Step::kReject:
        return false;
      case Step::kRetry:
        break;
    }
  }
  return false;
}

int64_t cost(const GImpl& g, const State& s) {
  int64_t total = 0;
  for (int i = 0; i < s.depth; ++i) total += frame_cost(g, s.f[static_cast<size_t>(i)]);
  return total;
}

bool is_done(const State& s) {
  return s.depth == 1 && s.f[0].kind == FrameKind::kRoot && s.f[0].phase == kRootDone;
}

}  // namespace mnemo::inference::constraint
