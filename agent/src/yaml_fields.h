#pragma once
// Strict typed reads of yaml-cpp nodes whose errors carry "file:line:col: field ...". Callers must
// catch YAML::Exception; these helpers only report schema problems as Status.
#include <mnemo/base/status.h>

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mnemo::agent::yaml {

// The file name errors are labelled with.
struct Source {
  std::string file;
};

// "file:line:col" of a node (1-based); a node without a position reports 1:1.
std::string location(const Source& source, const YAML::Mark& mark);

// An invalid_argument status "file:line:col: message".
Status error_at(const Source& source, const YAML::Mark& mark, std::string_view message);

// "a.b" from a parent path and a key; the root's path is empty.
std::string join(std::string_view path, std::string_view key);

struct Field {
  YAML::Node key;
  YAML::Node value;
};

// A mapping's fields by name. Reading it rejects non-mappings, duplicate keys (which yaml-cpp keeps
// silently) and keys outside known, suggesting the closest known key.
class Fields {
 public:
  static Result<Fields> read(const Source& source, const YAML::Node& node, std::string_view path,
                             std::initializer_list<std::string_view> known);

  const Field* find(std::string_view key) const;
  const YAML::Mark& mark() const { return mark_; }
  const std::map<std::string, Field, std::less<>>& all() const { return fields_; }

 private:
  YAML::Mark mark_;
  std::map<std::string, Field, std::less<>> fields_;
};

// The known key closest to key by edit distance, or empty when none is close enough to be a typo.
std::string closest_key(std::string_view key, std::initializer_list<std::string_view> known);

Result<std::string> read_string(const Source& source, const YAML::Node& node,
                                std::string_view field);
Result<uint64_t> read_positive_int(const Source& source, const YAML::Node& node,
                                   std::string_view field, uint64_t max);
Result<uint64_t> read_unsigned(const Source& source, const YAML::Node& node,
                               std::string_view field);
Result<double> read_number(const Source& source, const YAML::Node& node, std::string_view field);
// 500ms, 30s, 5m, 2h; positive.
Result<std::chrono::milliseconds> read_duration(const Source& source, const YAML::Node& node,
                                                std::string_view field);
// Bytes, or a number with K, M, G or T (powers of 1024); positive.
Result<uint64_t> read_size(const Source& source, const YAML::Node& node, std::string_view field);
// One of choices; returns its index.
Result<size_t> read_enum(const Source& source, const YAML::Node& node, std::string_view field,
                         std::initializer_list<std::string_view> choices);

Result<bool> read_bool(const Source& source, const YAML::Node& node, std::string_view field);
// A YAML mapping/sequence/scalar as JSON text (Python json.dumps style): plain true/false/null and
// numbers keep their type, quoted scalars are strings. Anchors and tags beyond that are refused.
Result<std::string> to_json_text(const Source& source, const YAML::Node& node,
                                 std::string_view field);

// The text forms alone, without a node or a position.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace mnemo::agent::yaml
