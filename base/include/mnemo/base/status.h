#pragma once
// Status and Result<T>: the error currency of every mnemo library API (no exceptions cross a module).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mnemo {

// kPermissionDenied: a valid request that policy refuses (an operator's ceiling or grant).
enum class StatusCode {
  kOk, kInvalidArgument, kNotFound, kIoError, kCorruption, kUnsupported, kInternal, kPermissionDenied
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status permission_denied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Adds context in front of the message: "loading tokenizer.json: " + message.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : value_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool is_ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const& { return is_ok() ? value() : std::move(fallback); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace mnemo

// Returns the status from the enclosing function when it is an error.
#define MNEMO_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::mnemo::Status _mnemo_st = (expr);      \
    if (!_mnemo_st.is_ok()) return _mnemo_st; \
  } while (0)

// The same inside a coroutine returning an awaitable of Status.
#define MNEMO_CO_RETURN_IF_ERROR(expr)          \
  do {                                          \
    ::mnemo::Status _mnemo_st = (expr);         \
    if (!_mnemo_st.is_ok()) co_return _mnemo_st; \
  } while (0)
