#pragma once
// MNEMO_CHECK guards invariants (programming errors), never user input: it aborts with a message.
namespace mnemo::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* message);
}  // namespace mnemo::detail

#define MNEMO_CHECK(cond)                                                         \
  do {                                                                            \
    if (!(cond)) ::mnemo::detail::check_failed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)
#define MNEMO_CHECK_MSG(cond, msg)                                             \
  do {                                                                         \
    if (!(cond)) ::mnemo::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
