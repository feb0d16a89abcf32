#pragma once
// Where tests find their data: everything a test needs is committed under tests/data or third_party.
#include <string>

namespace mnemo::test {

inline std::string data_path(const std::string& rel) { return std::string(MNEMO_TEST_DATA_DIR) + "/" + rel; }
inline std::string v3_tokenizer_path() {
  return std::string(MNEMO_SOURCE_DIR) + "/third_party/deepseek_v3_tokenizer/tokenizer.json";
}

}  // namespace mnemo::test
