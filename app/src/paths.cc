#include "paths.h"

#include "default_model.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

namespace mnemo::app {

std::string mnemo_home() {
  if (const char* home = std::getenv("MNEMO_HOME"); home && *home) return home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return std::string(xdg) + "/mnemo";
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.local/share/mnemo";
}

std::string default_model_dir() { return mnemo_home() + "/models/tiny"; }

Result<std::string> resolve_tokenizer(const std::string& tokenizer, const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!tokenizer.empty()) {
    if (fs::is_regular_file(tokenizer, ec)) return tokenizer;
    return Status::not_found("tokenizer file " + tokenizer + " does not exist");
  }
  std::string dir = model;
  if (dir.empty()) {
    auto made = ensure_default_model();
    if (!made) return made.status();
    dir = *made;
  }
  std::string path = dir + "/tokenizer.json";
  if (fs::is_regular_file(path, ec)) return path;
  return Status::not_found("model directory " + dir + " has no tokenizer.json");
}

namespace {

// The source directory a CMake build tree at DIR was configured from, read from its CMakeCache.txt.
std::optional<std::filesystem::path> cmake_home_of(const std::filesystem::path& dir) {
  std::ifstream cache(dir / "CMakeCache.txt");
  constexpr std::string_view kKey = "CMAKE_HOME_DIRECTORY:INTERNAL=";
  for (std::string line; std::getline(cache, line);) {
    if (line.starts_with(kKey)) return std::filesystem::path(line.substr(kKey.size()));
  }
  return std::nullopt;
}

}  // namespace

Result<std::filesystem::path> find_source_tree(std::initializer_list<std::string_view> required) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MNEMO_SOURCE_DIR"); env && *env) candidates.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty(); dir = dir.parent_path()) {
      candidates.push_back(dir);
      if (auto home = cmake_home_of(dir)) candidates.push_back(*home);
      if (dir == dir.root_path()) break;
    }
  }
  for (fs::path dir = fs::current_path(ec); !ec && !dir.empty(); dir = dir.parent_path()) {
    candidates.push_back(dir);
    if (dir == dir.root_path()) break;
  }
  for (const fs::path& dir : candidates) {
    bool all = true;
    for (std::string_view rel : required) all = all && fs::exists(dir / rel, ec);
    if (all) return dir;
  }
  std::string names;
  for (std::string_view rel : required) names += (names.empty() ? "" : ", ") + std::string(rel);
  return Status::not_found("cannot find the mnemo source tree (a directory with " + names +
                           ") from $MNEMO_SOURCE_DIR, the executable's location or the current directory; "
                           "set MNEMO_SOURCE_DIR");
}

}  // namespace mnemo::app
