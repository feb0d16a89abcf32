#include <mnemo/inference/sampler.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mnemo::inference {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Status SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) return Status::invalid_argument("temperature must be >= 0");
  if (top_k < 0) return Status::invalid_argument("top_k must be >= 0");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return Status::invalid_argument("top_p must be in (0, 1]");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return Status::invalid_argument("min_p must be in [0, 1]");
  return Status::ok();
}

Sampler::Sampler(SamplingParams params) : params_(params) {
  uint64_t s = params.seed;
  for (auto& word : rng_) word = splitmix64(s);
}

double Sampler::next_uniform() {
  // xoshiro256**
  uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

TokenId Sampler::sample(std::span<const float> logits) {
  const auto n = static_cast<TokenId>(logits.size());
  if (n == 0) return 0;
  if (params_.temperature == 0.0f) {
    TokenId best = 0;
    for (TokenId i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  const double inv_t = 1.0 / params_.temperature;
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  const bool filtered = params_.top_k > 0 || params_.top_p < 1.0f || params_.min_p > 0.0f;
  if (!filtered) {
    // Plain temperature: draw over the ids in order, no sort needed.
    double total = 0;
    for (float l : logits) total += std::exp((static_cast<double>(l) - max_logit) * inv_t);
    double u = next_uniform() * total;
    for (TokenId i = 0; i < n; ++i) {
      u -= std::exp((static_cast<double>(logits[i]) - max_logit) * inv_t);
      if (u < 0) return i;
    }
    return n - 1;
  }
  // Candidates by descending logit, lowest id first on ties: the order every filter and the draw use.
  // Only as long a prefix is sorted as the filters need, growing it fourfold when they need more.
  candidates_.resize(logits.size());
  for (TokenId i = 0; i < n; ++i) candidates_[i] = {logits[i], i};
  auto by_logit = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  const size_t limit = params_.top_k > 0 ? std::min<size_t>(static_cast<size_t>(params_.top_k), logits.size())
                                         : logits.size();
  auto weight = [&](size_t i) { return std::exp((static_cast<double>(candidates_[i].first) - max_logit) * inv_t); };
  double limit_total = 0;  // mass of the top-k set (all tokens without top-k)
  if (limit == logits.size()) {
    for (float l : logits) limit_total += std::exp((static_cast<double>(l) - max_logit) * inv_t);
  }
  size_t sorted = std::min<size_t>(limit, 64);
  for (;;) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(sorted), candidates_.end(),
                      by_logit);
    if (limit < logits.size() && sorted == limit) {
      limit_total = 0;
      for (size_t i = 0; i < limit; ++i) limit_total += weight(i);
    }
    // min-p: the kept tokens are those at least min_p times as likely as the most likely one.
    const bool full = sorted == limit;
    const double w0 = weight(0);
    size_t cut = sorted;
    bool cut_found = full;
    if (params_.min_p > 0.0f) {
      for (size_t i = 1; i < sorted; ++i) {
        if (weight(i) < params_.min_p * w0) {
          cut = i;
          cut_found = true;
          break;
        }
      }
    }
    // top-p over what min-p keeps: the shortest prefix holding top_p of that mass.
    double kept_total = limit_total;
    if (params_.min_p > 0.0f && cut_found && cut < limit) {
      kept_total = 0;
      for (size_t i = 0; i < cut; ++i) kept_total += weight(i);
    }
    bool reached = full;
    if (params_.top_p < 1.0f) {
      double mass = 0;
      for (size_t i = 0; i < cut; ++i) {
        mass += weight(i);
        if (mass >= params_.top_p * kept_total) {
          cut = i + 1;
          reached = true;
          break;
        }
      }
    }
    // Without min-p or top-p only top-k limits the set, which needs the whole top-k prefix.
    const bool done = full || ((params_.min_p > 0.0f || params_.top_p < 1.0f) &&
                               (params_.min_p == 0.0f || cut_found) && (params_.top_p >= 1.0f || reached));
    if (done) {
      double total = 0;
      for (size_t i = 0; i < cut; ++i) total += weight(i);
      double u = next_uniform() * total;
      for (size_t i = 0; i < cut; ++i) {
        u -= weight(i);
        if (u < 0) return candidates_[i].second;
      }
      return candidates_[cut - 1].second;
    }
    sorted = std::min(limit, sorted * 4);
  }
}

std::string Sampler::export_state() const {
  std::string out(sizeof rng_, '\0');
  std::memcpy(out.data(), rng_.data(), sizeof rng_);
  return out;
}

Status Sampler::import_state(std::string_view state) {
  if (state.size() != sizeof rng_) return Status::invalid_argument("sampler state must be 32 bytes");
  std::memcpy(rng_.data(), state.data(), sizeof rng_);
  return Status::ok();
}

}  // namespace mnemo::inference
