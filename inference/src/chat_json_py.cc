#include <mnemo/base/json_text.h>
#include <mnemo/base/utf8.h>
#include <mnemo/inference/chat_json.h>

#include <charconv>
#include <cstdlib>
#include <limits>
#include <unordered_map>

namespace mnemo::inference {

PyJson PyJson::boolean(bool v) {
  PyJson j(Type::kBool);
  j.bool_ = v;
  return j;
}

PyJson PyJson::integer(std::string_view digits) {
  PyJson j(Type::kInt);
  // Python's int() has no negative zero: json.loads("-0") dumps as "0".
  j.text_ = digits == "-0" ? "0" : std::string(digits);
  return j;
}

PyJson PyJson::floating(double v) {
  PyJson j(Type::kFloat);
  j.float_ = v;
  return j;
}

PyJson PyJson::string(std::string v) {
  PyJson j(Type::kString);
  j.text_ = std::move(v);
  return j;
}

PyJson PyJson::object(std::vector<std::string> keys, std::vector<PyJson> values) {
  PyJson j(Type::kObject);
  j.keys_ = std::move(keys);
  j.items_ = std::move(values);
  return j;
}

void PyJson::set(std::string key, PyJson v) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) {
      items_[i] = std::move(v);
      return;
    }
  }
  keys_.push_back(std::move(key));
  items_.push_back(std::move(v));
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class PyJsonParser {
 public:
  PyJsonParser(std::string_view text, PyJsonParseOptions options) : s_(text), options_(options) {}

  Result<PyJson> parse_document() {
    skip_space();
    auto value = parse_value(0);
    if (!value.is_ok()) return value;
    skip_space();
    if (pos_ != s_.size()) return error("extra data after the JSON value");
    return value;
  }

 private:
  Status error(std::string_view what) const {
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(pos_) + ": " +
                                    std::string(what));
  }

  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Result<PyJson> parse_value(size_t depth) {
    if (pos_ >= s_.size()) return error("unexpected end of text");
    char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= options_.max_depth) return error("nested too deeply");
      return c == '{' ? parse_object(depth + 1) : parse_array(depth + 1);
    }
    if (c == '"') {
      auto s = parse_string();
      if (!s.is_ok()) return s.status();
      return PyJson::string(std::move(s).value());
    }
    if (consume("null")) return PyJson::null();
    if (consume("true")) return PyJson::boolean(true);
    if (consume("false")) return PyJson::boolean(false);
    if (options_.allow_nan) {
      if (consume("NaN")) return PyJson::floating(std::numeric_limits<double>::quiet_NaN());
      if (consume("Infinity")) return PyJson::floating(std::numeric_limits<double>::infinity());
      if (consume("-Infinity")) return PyJson::floating(-std::numeric_limits<double>::infinity());
    }
    if (c == '-' || is_digit(c)) return parse_number();
    return error("expected a value");
  }

  // Python's NUMBER_RE: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?; a fraction or exponent makes a
  // float.
  Result<PyJson> parse_number() {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size() || !is_digit(s_[pos_])) return error("expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    bool is_float = false;
    if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
      is_float = true;
      pos_ += 1;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t e = pos_ + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e < s_.size() && is_digit(s_[e])) {
        is_float = true;
        pos_ = e;
        while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
      }
    }
    std::string_view text = s_.substr(start, pos_ - start);
    if (!is_float) return PyJson::integer(text);
    double v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc()) {
      // Out of range: strtod gives what Python's float() gives (inf, or a rounded tiny value).
      v = std::strtod(std::string(text).c_str(), nullptr);
    }
    return PyJson::floating(v);
  }

  Result<std::string> parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      size_t run = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
             static_cast<unsigned char>(s_[pos_]) >= 0x20) {
        ++pos_;
      }
      out.append(s_.substr(run, pos_ - run));
      if (pos_ >= s_.size()) return error("unterminated string");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c != '\\') return error("invalid control character in string");
      if (pos_ + 1 >= s_.size()) return error("unterminated string");
      char e = s_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          int cp = read_hex4();
          if (cp < 0) return error("invalid \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
            size_t save = pos_;
            pos_ += 2;
            int lo = read_hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          // A lone surrogate cannot be written as UTF-8: it becomes U+FFFD.
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = utf8::kReplacement;
          utf8::append(out, static_cast<char32_t>(cp));
          break;
        }
        default: return error("invalid escape in string");
      }
    }
  }

  int read_hex4() {
    if (pos_ + 4 > s_.size()) return -1;
    int v = 0;
    for (size_t k = 0; k < 4; ++k) {
      int h = hex_value(s_[pos_ + k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    pos_ += 4;
    return v;
  }

  Result<PyJson> parse_array(size_t depth) {
    ++pos_;
    PyJson arr = PyJson::array();
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_space();
      auto item = parse_value(depth);
      if (!item.is_ok()) return item;
      arr.push_back(std::move(item).value());
      skip_space();
      if (pos_ >= s_.size()) return error("unterminated array");
      if (s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      if (s_[pos_] != ',') return error("expected ',' or ']'");
      ++pos_;
    }
  }

  Result<PyJson> parse_object(size_t depth) {
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return PyJson::object();
    }
    std::unordered_map<std::string, size_t> seen;
    std::vector<std::string> keys;
    std::vector<PyJson> values;
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') return error("expected a string key");
      auto key = parse_string();
      if (!key.is_ok()) return key.status();
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ':') return error("expected ':'");
      ++pos_;
      skip_space();
      auto value = parse_value(depth);
      if (!value.is_ok()) return value;
      auto [it, fresh] = seen.emplace(key.value(), keys.size());
      if (fresh) {
        keys.push_back(std::move(key).value());
        values.push_back(std::move(value).value());
      } else {
        values[it->second] = std::move(value).value();
      }
      skip_space();
      if (pos_ >= s_.size()) return error("unterminated object");
      if (s_[pos_] == '}') {
        ++pos_;
        break;
      }
      if (s_[pos_] != ',') return error("expected ',' or '}'");
      ++pos_;
    }
    return PyJson::object(std::move(keys), std::move(values));
  }

  std::string_view s_;
  PyJsonParseOptions options_;
  size_t pos_ = 0;
};

}  // namespace

Result<PyJson> parse_py_json(std::string_view text, PyJsonParseOptions options) {
  return PyJsonParser(text, options).parse_document();
}

void dump_py_json(const PyJson& value, std::string& out) {
  switch (value.type()) {
    case PyJson::Type::kNull: out.append("null"); break;
    case PyJson::Type::kBool: out.append(value.bool_value() ? "true" : "false"); break;
    case PyJson::Type::kInt: out.append(value.text()); break;
    case PyJson::Type::kFloat: out.append(json::python_float_repr(value.float_value())); break;
    case PyJson::Type::kString: json::append_string(out, value.text()); break;
    case PyJson::Type::kArray: {
      out.push_back('[');
      for (size_t i = 0; i < value.items().size(); ++i) {
        if (i) out.append(", ");
        dump_py_json(value.items()[i], out);
      }
      out.push_back(']');
      break;
    }
    case PyJson::Type::kObject: {
      out.push_back('{');
      for (size_t i = 0; i < value.keys().size(); ++i) {
        if (i) out.append(", ");
        json::append_string(out, value.keys()[i]);
        out.append(": ");
        dump_py_json(value.items()[i], out);
      }
      out.push_back('}');
      break;
    }
  }
}

}  // namespace mnemo::inference
