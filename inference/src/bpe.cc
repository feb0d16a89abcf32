// Byte-pair merging of one pre-token: repeatedly merge the adjacent pair of lowest rank (leftmost on
// ties), exactly the order HF tokenizers' BPE model follows.
#include <queue>

#include "tokenizer_impl.h"

namespace mnemo::inference {
namespace {

constexpr uint32_t kNoMerge = ~uint32_t{0};

// Short pieces (nearly all of them): a flat array, rescanned for the lowest rank after each merge.
void merge_short(const MergeTable& merges, std::vector<TokenId>& syms) {
  thread_local std::vector<MergeTable::Merge> pair;
  pair.resize(syms.size());
  auto lookup = [&](size_t k) {
    const MergeTable::Merge* m = merges.find(syms[k], syms[k + 1]);
    pair[k] = m ? *m : MergeTable::Merge{kNoMerge, -1};
  };
  for (size_t k = 0; k + 1 < syms.size(); ++k) lookup(k);
  while (syms.size() > 1) {
    size_t best = 0;
    uint32_t best_rank = kNoMerge;
    for (size_t k = 0; k + 1 < syms.size(); ++k) {
      if (pair[k].rank < best_rank) {
        best_rank = pair[k].rank;
        best = k;
      }
    }
    if (best_rank == kNoMerge) break;
    syms[best] = pair[best].merged;
    syms.erase(syms.begin() + static_cast<ptrdiff_t>(best) + 1);
    pair.erase(pair.begin() + static_cast<ptrdiff_t>(best) + 1);
    if (best + 1 < syms.size()) lookup(best);
    if (best > 0) lookup(best - 1);
  }
}

// Long pieces: a doubly linked list of symbols and a heap of candidate merges, O(n log n).
void merge_long(const MergeTable& merges, std::vector<TokenId>& syms) {
  size_t n = syms.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t k = 0; k < n; ++k) {
    prev[k] = static_cast<int32_t>(k) - 1;
    next[k] = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
  }
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    TokenId left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t k) {
    if (k < 0 || next[k] < 0) return;
    if (const MergeTable::Merge* m = merges.find(syms[k], syms[next[k]])) {
      heap.push({m->rank, k, syms[k], syms[next[k]], m->merged});
    }
  };
  for (size_t k = 0; k + 1 < n; ++k) push(static_cast<int32_t>(k));
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    int32_t k = c.pos;
    // Skip candidates made stale by an earlier merge of either symbol.
    if (!alive[k] || next[k] < 0 || syms[k] != c.left || syms[next[k]] != c.right) continue;
    int32_t r = next[k];
    syms[k] = c.merged;
    alive[r] = false;
    next[k] = next[r];
    if (next[r] >= 0) prev[next[r]] = k;
    push(prev[k]);
    push(k);
  }
  size_t w = 0;
  for (int32_t k = 0; k >= 0; k = next[k]) syms[w++] = syms[k];
  syms.resize(w);
}

}  // namespace

void Tokenizer::Impl::bpe(std::string_view piece, std::vector<TokenId>& out) const {
  thread_local std::vector<TokenId> syms;
  syms.clear();
  for (char b : piece) syms.push_back(byte_token[static_cast<unsigned char>(b)]);
  if (syms.size() <= 128) {
    merge_short(merges, syms);
  } else {
    merge_long(merges, syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
}

}  // namespace mnemo::inference
