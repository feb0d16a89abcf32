// The vocabulary side of the constraint: the byte tokens in a preorder trie (a mask is one pass
// over it that skips every subtree whose prefix the grammar rejects) and the cached text-state
// masks.
#include <algorithm>

#include <mnemo/inference/special_tokens.h>

#include "constraint_impl.h"

namespace mnemo::inference {

using constraint::Frame;

namespace {
// The text of each special symbol, in symbol order (kSymDsml, kSymEos, ...).
constexpr std::array<std::string_view, constraint::kSpecialSyms> kSpecialText = {
    tokens::kDsml,          tokens::kEos,
    tokens::kThinkEnd,      "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",  "<｜tool▁sep｜>"};
}  // namespace

ConstraintVocabulary::ConstraintVocabulary(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConstraintVocabulary::~ConstraintVocabulary() = default;
size_t ConstraintVocabulary::vocab_size() const { return impl_->vocab_size; }
TokenId ConstraintVocabulary::eos_token() const { return impl_->eos; }

Result<std::shared_ptr<const ConstraintVocabulary>> ConstraintVocabulary::build(
    const Tokenizer& tokenizer) {
  auto v = std::make_unique<Impl>();
  v->vocab_size = tokenizer.vocab_size();
  v->bytes.resize(v->vocab_size);
  std::vector<std::pair<std::string_view, TokenId>> items;
  items.reserve(v->vocab_size);
  std::array<bool, 256> single{};
  v->special.fill(-1);
  for (size_t i = 0; i < v->vocab_size; ++i) {
    const auto id = static_cast<TokenId>(i);
    std::string_view b = tokenizer.token_bytes(id);
    if (b.empty()) continue;
    // The V3 call tokens are added tokens not marked special: they are grammar symbols all the
    // same.
    auto known = std::find(kSpecialText.begin(), kSpecialText.end(), b);
    if (known != kSpecialText.end()) {
      v->special[static_cast<size_t>(known - kSpecialText.begin())] = id;
      continue;
    }
    if (tokenizer.is_special(id)) continue;
    v->bytes[i].assign(b);
    if (b.size() == 1) single[static_cast<unsigned char>(b[0])] = true;
    if (b.find('"') != std::string_view::npos) v->quote_tokens.push_back(id);
  }
  v->dsml = v->special[0];
  v->eos = v->special[1];
  if (v->dsml < 0 || v->eos < 0) {
    return Status::invalid_argument(
        "the tokenizer has no special ｜DSML｜ or end-of-sentence token: it is not a V4 tokenizer");
  }
  for (int b = 0; b < 256; ++b) {
    // The budget guarantee spends at most one token per byte of a completion.
    if (!single[static_cast<size_t>(b)]) {
      return Status::invalid_argument("the tokenizer has no token for the single byte " +
                                      std::to_string(b) + ": it is not byte-level");
    }
  }
  for (size_t i = 0; i < v->vocab_size; ++i) {
    if (!v->bytes[i].empty()) items.emplace_back(v->bytes[i], static_cast<TokenId>(i));
  }
  std::sort(items.begin(), items.end());
  // Sorted strings give the trie in preorder: each string adds nodes past its common prefix with
  // the previous one.
  std::vector<uint32_t> path;
  std::string_view prev;
  for (const auto& [s, id] : items) {
    size_t l = 0;
    while (l < s.size() && l < prev.size() && s[l] == prev[l]) ++l;
    if (l == s.size() && l == prev.size()) {
      v->duplicates[path.back()].push_back(id);
      continue;
    }
    if (s.size() > 255) return Status::invalid_argument("a token is longer than 255 bytes");
    path.resize(l);
    for (size_t d = l; d < s.size(); ++d) {
      v->sym.push_back(static_cast<uint8_t>(s[d]));
      v->depth.push_back(static_cast<uint8_t>(d + 1));
      v->token.push_back(-1);
      path.push_back(static_cast<uint32_t>(v->sym.size() - 1));
    }
    v->token[path.back()] = id;
    v->max_len = std::max(v->max_len, static_cast<int>(s.size()));
    prev = s;
  }
  const auto n = static_cast<uint32_t>(v->sym.size());
  v->end.assign(n, n);
  std::vector<uint32_t> open;
  for (uint32_t i = 0; i < n; ++i) {
    while (!open.empty() && v->depth[open.back()] >= v->depth[i]) {
      v->end[open.back()] = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  // The clean text states every value and reasoning starts in: computed now, not mid-request.
  for (auto kind :
       {constraint::FrameKind::kRaw, constraint::FrameKind::kJstr, constraint::FrameKind::kText}) {
    Frame f;
    f.kind = kind;
    v->text_mask(f);
  }
  return std::shared_ptr<const ConstraintVocabulary>(new ConstraintVocabulary(std::move(v)));
}

void ConstraintVocabulary::Impl::set_node_tokens(uint32_t node, std::vector<uint64_t>& mask) const {
  auto set = [&](TokenId t) { mask[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63); };
  set(token[node]);
  if (!duplicates.empty()) {
    if (auto it = duplicates.find(node); it != duplicates.end()) {
      for (TokenId t : it->second) set(t);
    }
  }
}

std::shared_ptr<const ConstraintVocabulary::Impl::TextMasks> ConstraintVocabulary::Impl::text_mask(
    const Frame& f) const {
  const uint64_t key = constraint::text_key(f);
  std::lock_guard lock(mutex);
  if (auto it = text_masks.find(key); it != text_masks.end()) return it->second;
  auto masks = std::make_shared<TextMasks>();
  auto mask_for = [&](int64_t cost) -> std::vector<uint64_t>& {
    for (auto& [c, m] : *masks) {
      if (c == cost) return m;
    }
    masks->emplace_back(cost, std::vector<uint64_t>((vocab_size + 63) / 64, 0));
    return masks->back().second;
  };
  std::vector<Frame> at(static_cast<size_t>(max_len) + 1);
  at[0] = f;
  const auto n = static_cast<uint32_t>(sym.size());
  for (uint32_t i = 0; i < n;) {
    const size_t d = depth[i];
    at[d] = at[d - 1];
    if (!constraint::text_byte(at[d], sym[i])) {
      i = end[i];
      continue;
    }
    if (token[i] >= 0) set_node_tokens(i, mask_for(constraint::text_cost(at[d])));
    ++i;
  }
  text_masks.emplace(key, masks);
  return masks;
}

}  // namespace mnemo::inference
