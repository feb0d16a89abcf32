#include "yaml_fields.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <mnemo/base/json_text.h>

namespace mnemo::agent::yaml {
namespace {

// Quoted scalars carry the non-specific tag "!": a quoted "30" is a string, not a number.
bool is_plain_scalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

std::optional<uint64_t> parse_digits(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string location(const Source& source, const YAML::Mark& mark) {
  int line = mark.is_null() ? 1 : mark.line + 1;
  int column = mark.is_null() ? 1 : mark.column + 1;
  return source.file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Status error_at(const Source& source, const YAML::Mark& mark, std::string_view message) {
  return Status::invalid_argument(location(source, mark) + ": " + std::string(message));
}

std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string closest_key(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : known) {
    size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  // Beyond a third of the key's length the "suggestion" is noise rather than a likely typo.
  size_t allowed = std::max<size_t>(2, key.size() / 3);
  return best_distance <= allowed ? best : std::string();
}

Result<Fields> Fields::read(const Source& source, const YAML::Node& node, std::string_view path,
                            std::initializer_list<std::string_view> known) {
  if (!node.IsMap()) return error_at(source, node.Mark(), std::string(path) + " must be a mapping");
  Fields fields;
  fields.mark_ = node.Mark();
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar())
      return error_at(source, key.Mark(),
                      "field names in " + std::string(path) + " must be strings");
    const std::string& name = key.Scalar();
    std::string full = join(path, name);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string message = "unknown field " + full;
      std::string suggestion = closest_key(name, known);
      if (!suggestion.empty()) {
        message += " (did you mean " + join(path, suggestion) + "?)";
      } else {
        message += " (known:";
        for (std::string_view k : known) message += " " + std::string(k);
        message += ")";
      }
      return error_at(source, key.Mark(), message);
    }
    if (fields.fields_.count(name)) return error_at(source, key.Mark(), "duplicate field " + full);
    fields.fields_.emplace(name, Field{key, entry.second});
  }
  return fields;
}

const Field* Fields::find(std::string_view key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? nullptr : &it->second;
}

Result<std::string> read_string(const Source& source, const YAML::Node& node,
                                std::string_view field) {
  if (!node.IsScalar())
    return error_at(source, node.Mark(), std::string(field) + " must be a string");
  return node.Scalar();
}

Result<uint64_t> read_positive_int(const Source& source, const YAML::Node& node,
                                   std::string_view field, uint64_t max) {
  std::optional<uint64_t> value;
  if (is_plain_scalar(node)) value = parse_digits(node.Scalar());
  if (!value || *value == 0) {
    return error_at(source, node.Mark(), std::string(field) + " must be a positive integer");
  }
  if (*value > max) {
    return error_at(source, node.Mark(),
                    std::string(field) + " must be at most " + std::to_string(max));
  }
  return *value;
}

Result<uint64_t> read_unsigned(const Source& source, const YAML::Node& node,
                               std::string_view field) {
  std::optional<uint64_t> value;
  if (is_plain_scalar(node)) value = parse_digits(node.Scalar());
  if (!value)
    return error_at(source, node.Mark(), std::string(field) + " must be a non-negative integer");
  return *value;
}

Result<double> read_number(const Source& source, const YAML::Node& node, std::string_view field) {
  if (is_plain_scalar(node)) {
    const std::string& text = node.Scalar();
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!text.empty() && ec == std::errc() && end == text.data() + text.size() &&
        std::isfinite(value)) {
      return value;
    }
  }
  return error_at(source, node.Mark(), std::string(field) + " must be a number");
}

Result<bool> read_bool(const Source& source, const YAML::Node& node, std::string_view field) {
  if (is_plain_scalar(node)) {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  return error_at(source, node.Mark(), std::string(field) + " must be true or false");
}

namespace {

Status append_json(const Source& source, const YAML::Node& node, const std::string& field,
                   int depth, std::string& out) {
  if (depth > 64) return error_at(source, node.Mark(), field + " is nested too deeply");
  if (node.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        return error_at(source, kv.first.Mark(), field + " has a non-string key");
      if (!first) out += ", ";
      first = false;
      json::append_string(out, kv.first.Scalar());
      out += ": ";
      MNEMO_RETURN_IF_ERROR(
          append_json(source, kv.second, join(field, kv.first.Scalar()), depth + 1, out));
    }
    out += '}';
  } else if (node.IsSequence()) {
    out += '[';
    for (size_t i = 0; i < node.size(); ++i) {
      if (i) out += ", ";
      MNEMO_RETURN_IF_ERROR(
          append_json(source, node[i], field + "[" + std::to_string(i) + "]", depth + 1, out));
    }
    out += ']';
  } else if (node.IsNull()) {
    out += "null";
  } else if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (is_plain_scalar(node)) {
      if (text == "true" || text == "false" || text == "null") {
        out += text;
        return Status::ok();
      }
      double value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (!text.empty() && ec == std::errc() && end == text.data() + text.size() &&
          std::isfinite(value)) {
        if (parse_digits(text)) {
          out += text;
        } else {
          out += json::python_float_repr(value);
        }
        return Status::ok();
      }
    }
    json::append_string(out, text);
  } else {
    return error_at(source, node.Mark(), field + " is not a YAML value JSON can hold");
  }
  return Status::ok();
}

}  // namespace

Result<std::string> to_json_text(const Source& source, const YAML::Node& node,
                                 std::string_view field) {
  std::string out;
  MNEMO_RETURN_IF_ERROR(append_json(source, node, std::string(field), 0, out));
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::optional<uint64_t> value = parse_digits(text.substr(0, digits));
  if (!value || *value == 0) return std::nullopt;
  std::string_view unit = text.substr(digits);
  uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else
    return std::nullopt;
  // A year is far beyond any sane job; the cap also keeps the multiplication from overflowing.
  constexpr uint64_t kMaxMs = 366ull * 24 * 3'600'000;
  if (*value > kMaxMs / factor) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(*value * factor));
}

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::optional<uint64_t> value = parse_digits(text.substr(0, digits));
  if (!value || *value == 0) return std::nullopt;
  std::string_view unit = text.substr(digits);
  int shift = 0;
  if (unit.empty())
    shift = 0;
  else if (unit == "K")
    shift = 10;
  else if (unit == "M")
    shift = 20;
  else if (unit == "G")
    shift = 30;
  else if (unit == "T")
    shift = 40;
  else
    return std::nullopt;
  if (*value > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
  return *value << shift;
}

Result<std::chrono::milliseconds> read_duration(const Source& source, const YAML::Node& node,
                                                std::string_view field) {
  std::optional<std::chrono::milliseconds> value;
  // Quoted too: JSON jobs can only write "30s" as a string, and the text is unambiguous.
  if (node.IsScalar()) value = parse_duration(node.Scalar());
  if (!value)
    return error_at(source, node.Mark(),
                    std::string(field) + " must be a duration like 30s, 5m or 2h");
  return *value;
}

Result<uint64_t> read_size(const Source& source, const YAML::Node& node, std::string_view field) {
  std::optional<uint64_t> value;
  if (node.IsScalar()) value = parse_size(node.Scalar());
  if (!value)
    return error_at(source, node.Mark(), std::string(field) + " must be a size like 256M or 1G");
  return *value;
}

Result<size_t> read_enum(const Source& source, const YAML::Node& node, std::string_view field,
                         std::initializer_list<std::string_view> choices) {
  if (node.IsScalar()) {
    size_t index = 0;
    for (std::string_view choice : choices) {
      if (node.Scalar() == choice) return index;
      ++index;
    }
  }
  std::string message = std::string(field) + " must be one of:";
  size_t index = 0;
  for (std::string_view choice : choices) message += (index++ ? ", " : " ") + std::string(choice);
  return error_at(source, node.Mark(), message);
}

}  // namespace mnemo::agent::yaml
