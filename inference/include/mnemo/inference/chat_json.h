#pragma once
// JSON as Python's json module sees it, for the V4 codec, whose official encoder re-serialises tool
// schemas and tool-call arguments with json.dumps(ensure_ascii=False): integers keep every digit,
// floats print as Python's repr, duplicate keys keep the first position and the last value.
#include <mnemo/base/status.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemo::inference {

class PyJson {
 public:
  enum class Type { kNull, kBool, kInt, kFloat, kString, kArray, kObject };

  static PyJson null() { return PyJson(Type::kNull); }
  static PyJson boolean(bool v);
  // `digits`: an integer's decimal text, as JSON writes it.
  static PyJson integer(std::string_view digits);
  static PyJson floating(double v);
  static PyJson string(std::string v);
  static PyJson array() { return PyJson(Type::kArray); }
  static PyJson object() { return PyJson(Type::kObject); }
  // An object from distinct keys and their values, in order.
  static PyJson object(std::vector<std::string> keys, std::vector<PyJson> values);

  Type type() const { return type_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_object() const { return type_ == Type::kObject; }
  // The string of kString, the digits of kInt.
  const std::string& text() const { return text_; }
  bool bool_value() const { return bool_; }
  double float_value() const { return float_; }

  // Array items, or object values (parallel to keys()).
  const std::vector<PyJson>& items() const { return items_; }
  const std::vector<std::string>& keys() const { return keys_; }
  void push_back(PyJson v) { items_.push_back(std::move(v)); }
  // Like a Python dict: a repeated key keeps its first position and takes the new value.
  void set(std::string key, PyJson v);

 private:
  explicit PyJson(Type type) : type_(type) {}
  Type type_;
  bool bool_ = false;
  double float_ = 0;
  std::string text_;
  std::vector<std::string> keys_;
  std::vector<PyJson> items_;
};

struct PyJsonParseOptions {
  // Python accepts NaN, Infinity and -Infinity; strict JSON does not.
  bool allow_nan = true;
  size_t max_depth = 512;
};

// Parses text as json.loads does (surrounding whitespace allowed, nothing else after the value).
// Errors give the byte offset.
Result<PyJson> parse_py_json(std::string_view text, PyJsonParseOptions options = {});

// Appends json.dumps(value, ensure_ascii=False): ", " and ": " separators, keys in order.
void dump_py_json(const PyJson& value, std::string& out);
inline std::string dump_py_json(const PyJson& value) {
  std::string out;
  dump_py_json(value, out);
  return out;
}

}  // namespace mnemo::inference
