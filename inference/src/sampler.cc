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
  if (params_.temperature == 0.0f) {
    TokenId best = 0;
    for (TokenId i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  // Candidates by descending logit, lowest id first on ties: the order every filter and the draw use.
  candidates_.clear();
  for (TokenId i = 0; i < n; ++i) candidates_.emplace_back(logits[i], i);
  auto by_logit = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep), candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  std::vector<double> prob(keep);
  const double inv_t = 1.0 / params_.temperature;
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    prob[i] = std::exp((static_cast<double>(candidates_[i].first) - candidates_[0].first) * inv_t);
    total += prob[i];
  }
  // min-p relative to the top probability, then the nucleus.
  size_t cut = keep;
  for (size_t i = 1; i < keep; ++i) {
    if (prob[i] < params_.min_p * prob[0]) {
      cut = i;
      break;
    }
  }
  double mass = 0, kept_total = 0;
  for (size_t i = 0; i < cut; ++i) kept_total += prob[i];
  if (params_.top_p < 1.0f) {
    for (size_t i = 0; i < cut; ++i) {
      mass += prob[i] / total;
      if (mass >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    kept_total = 0;
    for (size_t i = 0; i < cut; ++i) kept_total += prob[i];
  }
  double u = next_uniform() * kept_total;
  for (size_t i = 0; i < cut; ++i) {
    u -= prob[i];
    if (u < 0) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;
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
