#pragma once
// How a test that cannot run here says so. CTest shows a test case that prints the marker as
// skipped, not passed (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), and the summary counts it.
// For missing hardware (a CPU feature). A missing peer (a Node.js package) is a failure in CI
// instead (tests/js, scripts/setup.sh).
#include <cstdio>
#include <string_view>

namespace mnemo::test {

// Marks the running test case skipped; the caller returns after it.
inline void skip_test(std::string_view why) {
  std::printf("MNEMO-SKIPPED: %.*s\n", static_cast<int>(why.size()), why.data());
  std::fflush(stdout);
}

}  // namespace mnemo::test
