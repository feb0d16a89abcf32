#include <mnemo/base/check.h>
#include <mnemo/base/status.h>

#include <cstdio>
#include <cstdlib>

namespace mnemo {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kInternal: return "internal error";
    case StatusCode::kPermissionDenied: return "permission denied";
  }
  return "unknown";
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  return {code_, std::string(context) + ": " + message_};
}

namespace detail {
void check_failed(const char* expr, const char* file, int line, const char* message) {
  std::fprintf(stderr, "mnemo: CHECK failed at %s:%d: %s%s%s\n", file, line, expr,
               message ? ": " : "", message ? message : "");
  std::abort();
}
}  // namespace detail

}  // namespace mnemo
