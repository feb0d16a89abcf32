// Where JSON text goes wrong: simdjson's DOM says that a document is malformed but not where, and
// an error about a server's chunk should point at the byte.
#include <mnemo/inference/remote_client.h>

namespace mnemo::inference {
namespace {

class JsonScan {
 public:
  explicit JsonScan(std::string_view s) : s_(s) {}

  size_t error_offset() {
    skip_space();
    if (!value(0)) return i_;
    skip_space();
    return i_ == s_.size() ? std::string_view::npos : i_;
  }

 private:
  static constexpr int kMaxDepth = 1024;

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++i_;
  }

  bool value(int depth) {
    if (at_end() || depth > kMaxDepth) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return (peek() == '-' || is_digit(peek())) && number();
    }
  }

  bool object(int depth) {
    ++i_;
    skip_space();
    if (!at_end() && peek() == '}') return ++i_, true;
    while (true) {
      skip_space();
      if (at_end() || peek() != '"' || !string()) return false;
      skip_space();
      if (at_end() || peek() != ':') return false;
      ++i_;
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      if (peek() == '}') return ++i_, true;
      if (peek() != ',') return false;
      ++i_;
    }
  }

  bool array(int depth) {
    ++i_;
    skip_space();
    if (!at_end() && peek() == ']') return ++i_, true;
    while (true) {
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      if (peek() == ']') return ++i_, true;
      if (peek() != ',') return false;
      ++i_;
    }
  }

  bool string() {
    ++i_;
    while (!at_end()) {
      char c = peek();
      if (c == '"') return ++i_, true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        ++i_;
        continue;
      }
      ++i_;
      if (at_end()) return false;
      char e = peek();
      if (e == 'u') {
        ++i_;
        for (int k = 0; k < 4; ++k, ++i_) {
          if (at_end() || !is_hex(peek())) return false;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
        ++i_;
      } else {
        return false;
      }
    }
    return false;
  }

  bool digits() {
    if (at_end() || !is_digit(peek())) return false;
    while (!at_end() && is_digit(peek())) ++i_;
    return true;
  }

  bool number() {
    if (peek() == '-') ++i_;
    if (at_end()) return false;
    if (peek() == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (!at_end() && peek() == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++i_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }

  bool literal(std::string_view word) {
    for (char w : word) {
      if (at_end() || peek() != w) return false;
      ++i_;
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

size_t json_error_offset(std::string_view text) { return JsonScan(text).error_offset(); }

}  // namespace mnemo::inference
