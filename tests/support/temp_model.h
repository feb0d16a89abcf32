#pragma once
// A synthetic tiny model (`mnemo model init --preset tiny`, real vocabulary) shared by the cases of
// one process and removed at its exit.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "support/run_cli.h"

namespace mnemo::test {

inline std::string temp_tiny_model() {
  struct TempModel {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("mnemo-test-model-" + std::to_string(::getpid()));
    TempModel() {
      std::filesystem::remove_all(dir);
      auto r = run_cli("model init --preset tiny --out " + shell_quote(dir.string()));
      REQUIRE(r.status == 0);
    }
    ~TempModel() { std::filesystem::remove_all(dir); }
  };
  static const TempModel model;
  return model.dir.string();
}

}  // namespace mnemo::test
