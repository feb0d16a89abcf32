// ToolCallConstraint: the grammar state of one request, the per-step token mask (a fast path for
// text states, a pruned walk of the vocabulary trie otherwise) and the budget rule.
#include <algorithm>
#include <limits>

#include "constraint_impl.h"

namespace mnemo::inference {

namespace cs = constraint;

namespace {

void set_bit(std::vector<uint64_t>& mask, TokenId t) {
  mask[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63);
}
}  // namespace

struct ToolCallConstraint::State {
  cs::State now;
  cs::State scratch;
  std::vector<cs::State> path;  // the trie walk's state at each depth
};

ToolCallConstraint::ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar,
                                       std::shared_ptr<const ConstraintVocabulary> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), state_(std::make_unique<State>()) {
  state_->now = cs::initial_state(grammar_->impl());
  state_->path.resize(static_cast<size_t>(vocab_->impl().max_len) + 1);
}

ToolCallConstraint::~ToolCallConstraint() = default;

bool ToolCallConstraint::done() const { return cs::is_done(state_->now); }

int64_t ToolCallConstraint::min_tokens() const { return cs::cost(grammar_->impl(), state_->now); }

void ToolCallConstraint::allowed(std::vector<uint64_t>& mask, int64_t remaining) {
  compute(mask, remaining, true);
}

void ToolCallConstraint::allowed_by_walk(std::vector<uint64_t>& mask, int64_t remaining) {
  compute(mask, remaining, false);
}

void ToolCallConstraint::compute(std::vector<uint64_t>& mask, int64_t remaining, bool fast) {
  const auto& v = vocab_->impl();
  const auto& g = grammar_->impl();
  const cs::State& now = state_->now;
  cs::State& tmp = state_->scratch;
  mask.assign((v.vocab_size + 63) / 64, 0);
  if (cs::is_done(now)) {
    set_bit(mask, v.eos);
    return;
  }
  const int64_t c = cs::cost(g, now);
  // Out of budget the shortest completion still goes on: it is the best output left.
  const int64_t limit = std::max(remaining - 1, c - 1);
  auto fits = [&](const cs::State& s) { return cs::cost(g, s) <= limit; };
  for (size_t k = 0; k < v.special.size(); ++k) {
    if (v.special[k] < 0) continue;
    tmp.copy_from(now);
    if (cs::advance(g, tmp, static_cast<cs::Sym>(cs::kSymDsml + k)) && fits(tmp)) {
      set_bit(mask, v.special[k]);
    }
  }
  const cs::Frame& top = now.top();
  const bool text = top.kind == cs::FrameKind::kRaw || top.kind == cs::FrameKind::kText ||
                    top.kind == cs::FrameKind::kJstr;
  if (text && fast && !cs::text_bounds_bind(g, top, v.max_len)) {
    // A token inside the text changes only the text frame's share of the cost.
    const int64_t rest = c - cs::text_cost(top);
    for (const auto& [local_cost, local] : *v.text_mask(top)) {
      if (rest + local_cost > limit) continue;
      for (size_t w = 0; w < mask.size(); ++w) mask[w] |= local[w];
    }
    if (top.kind != cs::FrameKind::kJstr) return;
    // Only a token holding '"' can end a JSON string and go on in the enclosing frames.
    for (TokenId t : v.quote_tokens) {
      tmp.copy_from(now);
      bool ok = true;
      for (char ch : v.bytes[static_cast<size_t>(t)]) {
        if (!cs::advance(g, tmp, static_cast<unsigned char>(ch))) {
          ok = false;
          break;
        }
      }
      if (ok && fits(tmp)) set_bit(mask, t);
    }
    return;
  }
  auto& path = state_->path;
  path[0].copy_from(now);
  const auto n = static_cast<uint32_t>(v.sym.size());
  for (uint32_t i = 0; i < n;) {
    const size_t d = v.depth[i];
    cs::State& s = path[d];
    s.copy_from(path[d - 1]);
    if (!cs::advance(g, s, v.sym[i])) {
      i = v.end[i];
      continue;
    }
    if (v.token[i] >= 0 && fits(s)) v.set_node_tokens(i, mask);
    ++i;
  }
}

void ToolCallConstraint::apply(float* logits, int64_t vocab, int64_t remaining) {
  allowed(mask_, remaining);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const auto known = static_cast<int64_t>(vocab_->vocab_size());
  for (int64_t w = 0; w * 64 < vocab; ++w) {
    const uint64_t bits = w * 64 < known ? mask_[static_cast<size_t>(w)] : 0;
    const int64_t hi = std::min<int64_t>(vocab, (w + 1) * 64);
    if (bits == ~uint64_t{0} && hi <= known) continue;
    for (int64_t t = w * 64; t < hi; ++t) {
      if (t >= known || !((bits >> (t & 63)) & 1)) logits[t] = kNegInf;
    }
  }
}

Status ToolCallConstraint::accept(TokenId token) {
  const auto& v = vocab_->impl();
  const auto& g = grammar_->impl();
  if (token < 0 || static_cast<size_t>(token) >= v.vocab_size) {
    return Status::invalid_argument("tool-call constraint: token " + std::to_string(token) +
                                    " is outside the vocabulary");
  }
  if (cs::is_done(state_->now)) {
    if (token == v.eos) return Status::ok();
    return Status::invalid_argument("tool-call constraint: token " + std::to_string(token) +
                                    " after the end of the tool calls");
  }
  cs::State& tmp = state_->scratch;
  tmp.copy_from(state_->now);
  bool ok = true;
  auto special = std::find(v.special.begin(), v.special.end(), token);
  if (special != v.special.end()) {
    ok = cs::advance(g, tmp, static_cast<cs::Sym>(cs::kSymDsml + (special - v.special.begin())));
  } else {
    const std::string& b = v.bytes[static_cast<size_t>(token)];
    ok = !b.empty();
    for (size_t i = 0; ok && i < b.size(); ++i) {
      ok = cs::advance(g, tmp, static_cast<unsigned char>(b[i]));
    }
  }
  if (!ok) {
    return Status::invalid_argument("tool-call constraint: token " + std::to_string(token) +
                                    " does not fit the tool-call grammar here");
  }
  state_->now.copy_from(tmp);
  ++accepted_;
  return Status::ok();
}

Status ToolCallConstraint::accept_text(std::string_view text) {
  const auto& v = vocab_->impl();
  const auto& g = grammar_->impl();
  static constexpr std::string_view kDsmlText = "｜DSML｜";
  cs::State& tmp = state_->scratch;
  tmp.copy_from(state_->now);
  bool ok = true;
  for (size_t i = 0; ok && i < text.size();) {
    if (text.compare(i, kDsmlText.size(), kDsmlText) == 0) {
      ok = cs::advance(g, tmp, static_cast<cs::Sym>(cs::kSymDsml));
      i += kDsmlText.size();
    } else {
      ok = cs::advance(g, tmp, static_cast<unsigned char>(text[i]));
      ++i;
    }
  }
  (void)v;
  if (!ok) return Status::invalid_argument("tool-call constraint: the text does not fit the tool-call grammar");
  state_->now.copy_from(tmp);
  return Status::ok();
}

}  // namespace mnemo::inference
