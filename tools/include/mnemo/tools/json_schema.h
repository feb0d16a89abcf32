#pragma once
// A validator for the JSON-schema subset tool parameters use: type (object, string, integer, number,
// boolean, array), properties, required, additionalProperties (false), items, enum, minLength,
// maxLength, minimum, maximum, minItems, maxItems. Errors name the field ("arguments.path: ...").
#include <mnemo/base/status.h>

#include <memory>
#include <string_view>

namespace mnemo::tools {

class JsonSchema {
 public:
  // Refuses a schema outside the subset (unknown type or keyword), naming where.
  static Result<JsonSchema> parse(std::string_view schema_json);
  ~JsonSchema();
  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;

  // OK when the JSON text is a value the schema accepts; else the first problem, naming the field.
  Status validate(std::string_view value_json) const;

  struct Impl;

 private:
  explicit JsonSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnemo::tools
