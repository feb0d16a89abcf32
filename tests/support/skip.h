#pragma once
// How a test that cannot run here says so. CTest shows a test case that prints the marker as
// skipped, not passed (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), and the summary counts it.
// A missing peer (a Node.js package, a browser, an external server) is a failure in CI (CI=true),
// where setup installs every peer; only locally is it a skip. Missing hardware (a CPU feature) is a
// skip everywhere.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mnemo::test {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string_view(ci) != "false" && std::string_view(ci) != "0";
}

// Marks the running test case skipped; the caller returns after it.
inline void skip_test(std::string_view why) {
  std::printf("MNEMO-SKIPPED: %.*s\n", static_cast<int>(why.size()), why.data());
  std::fflush(stdout);
}

// A peer the test needs is missing: skipped locally, failed in CI.
inline void missing_peer(std::string_view what) {
  if (in_ci()) FAIL(std::string(what) + " is missing, and CI must run every test (scripts/setup.sh installs it)");
  skip_test(what);
}

}  // namespace mnemo::test
