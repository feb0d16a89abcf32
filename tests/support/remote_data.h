#pragma once
// The recorded llama-server answers in tests/data/remote (see the README there).
#include <mnemo/base/file.h>

#include <catch2/catch.hpp>
#include <string>

#include "support/test_paths.h"

namespace mnemo::test {

inline std::string remote_data(const std::string& name) {
  auto text = mnemo::read_file(data_path("remote/" + name));
  INFO(name);
  REQUIRE(text);
  return std::move(*text);
}

// An error recording: the body the server sent and the HTTP status the recorder added as a last
// line.
struct RecordedError {
  std::string body;
  long status = 0;
};

inline RecordedError remote_error_data(const std::string& name) {
  std::string text = remote_data(name);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t last_line = text.rfind('\n');
  REQUIRE(last_line != std::string::npos);
  std::string trailer = text.substr(last_line + 1);
  REQUIRE(trailer.rfind("HTTP ", 0) == 0);
  return RecordedError{text.substr(0, last_line), std::stol(trailer.substr(5))};
}

}  // namespace mnemo::test
