// Number values of the tool-call constraint: JSON numbers, and numbers held digit by digit to a schema's
// bounds (minimum/maximum, exclusive or not) with the fewest digits that still reach the range.
#include <algorithm>

#include "constraint_impl.h"

namespace mnemo::inference::constraint {

using GImpl = ToolCallGrammar::Impl;

namespace {

int digits_of(uint64_t m) {
  int n = 1;
  while (m >= 10) m /= 10, ++n;
  return n;
}

// A bounded number's integer part so far: its magnitude m (n digits, m > 0), f.c = 1 when
// negative. The fewest digits that extend it to a value in [lo, hi], or -1.
int extension(const Schema& sc, bool neg, uint64_t m, int n) {
  uint64_t scale = 1;
  for (int k = 0; n + k <= 18; ++k, scale *= 10) {
    const auto a = static_cast<int64_t>(m * scale), b = static_cast<int64_t>(m * scale + scale - 1);
    if (neg ? (-b <= sc.hi && -a >= sc.lo) : (a <= sc.hi && b >= sc.lo)) return k;
  }
  return -1;
}

// A bounded number: the integer part is held to [lo, hi] digit by digit; no exponent, and a
// fraction only where the whole unit [v, v+1) lies within the bounds as written.
Step step_bounded_num(const Schema& sc, State& s, Sym sym) {
  Frame& f = s.top();
  const bool neg = f.c != 0;
  const int n = f.b - (neg ? 1 : 0);  // integer digits so far (phases 2, 3)
  auto in_range = [&](int64_t v) { return v >= sc.lo && v <= sc.hi; };
  auto digit = [&](uint64_t m, int digits) {
    if (extension(sc, neg, m, digits) < 0) return Step::kReject;
    f.seen = m;
    f.phase = 3;
    ++f.b;
    return Step::kConsumed;
  };
  switch (f.phase) {
    case 0:
      if (sym == '-') {
        if (sc.lo >= 0) return Step::kReject;
        f.c = 1;
        f.phase = 1;
        ++f.b;
        return Step::kConsumed;
      }
      [[fallthrough]];
    case 1:
      if (sym == '0') {
        if (!in_range(0)) return Step::kReject;
        f.seen = 0;
        f.phase = 2;
        ++f.b;
        return Step::kConsumed;
      }
      return is_digit(sym) ? digit(sym - '0', 1) : Step::kReject;
    case 2:
    case 3: {
      const auto v = neg ? -static_cast<int64_t>(f.seen) : static_cast<int64_t>(f.seen);
      if (f.phase == 3 && is_digit(sym)) {
        if (n >= 18) return Step::kReject;
        return digit(f.seen * 10 + (sym - '0'), n + 1);
      }
      if (!in_range(v)) return Step::kReject;
      if (sym == '.' && f.a == 0) {
        const double lo = neg ? -static_cast<double>(f.seen) - 1 : static_cast<double>(f.seen);
        const double hi = neg ? -static_cast<double>(f.seen) : static_cast<double>(f.seen) + 1;
        if (lo < sc.lo_real || hi > sc.hi_real) return Step::kReject;
        f.phase = 4;
        ++f.b;
        return Step::kConsumed;
      }
      --s.depth;
      return Step::kRetry;
    }
    case 4:
      if (!is_digit(sym)) return Step::kReject;
      f.phase = 5;
      ++f.b;
      return Step::kConsumed;
    case 5:
      if (is_digit(sym) && f.b < kMaxNumberDigits) {
        ++f.b;
        return Step::kConsumed;
      }
      --s.depth;
      return Step::kRetry;
  }
  return Step::kReject;
}

}  // namespace

int64_t bounded_num_cost(const Schema& sc, const Frame& f) {
  switch (f.phase) {
    case 0:
      return sc.min_len;
    case 1:  // after '-': the negative in range nearest zero
      return digits_of(static_cast<uint64_t>(-std::min<int64_t>(sc.hi, -1)));
    case 3:
      return extension(sc, f.c != 0, f.seen, f.b - (f.c != 0 ? 1 : 0));
    case 4:
      return 1;
    default:
      return 0;
  }
}

Step step_num(const GImpl& g, State& s, Sym sym) {
  Frame& f = s.top();
  if (g.schemas[f.ref].bounded) return step_bounded_num(g.schemas[f.ref], s, sym);
  const bool int_only = f.a != 0;
  auto to = [&](uint8_t phase) {
    f.phase = phase;
    ++f.b;
    return Step::kConsumed;
  };
  auto end = [&] {
    --s.depth;
    return Step::kRetry;
  };
  const bool room = f.b < kMaxNumberDigits;
  switch (f.phase) {
    case 0:
      if (sym == '-') return to(1);
      [[fallthrough]];
    case 1:
      if (sym == '0') return to(2);
      if (is_digit(sym)) return to(3);
      return Step::kReject;
    case 2:
    case 3:
      if (f.phase == 3 && is_digit(sym) && room) return to(3);
      if (!int_only && sym == '.') return to(4);
      if (!int_only && (sym == 'e' || sym == 'E')) return to(6);
      return end();
    case 4:
      return is_digit(sym) ? to(5) : Step::kReject;
    case 5:
      if (is_digit(sym) && room) return to(5);
      if (sym == 'e' || sym == 'E') return to(6);
      return end();
    case 6:
      if (sym == '+' || sym == '-') return to(7);
      return is_digit(sym) ? to(8) : Step::kReject;
    case 7:
      return is_digit(sym) ? to(8) : Step::kReject;
    case 8:
      return is_digit(sym) && room ? to(8) : end();
  }
  return Step::kReject;
}

}  // namespace mnemo::inference::constraint
