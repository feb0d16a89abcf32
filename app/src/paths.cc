#include "paths.h"

#include <cstdlib>
#include <filesystem>

namespace mnemo::app {

std::string mnemo_home() {
  if (const char* home = std::getenv("MNEMO_HOME"); home && *home) return home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return std::string(xdg) + "/mnemo";
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.local/share/mnemo";
}

std::string default_model_dir() { return mnemo_home() + "/models/tiny"; }

std::string resolve_tokenizer(const std::string& tokenizer, const std::string& model, std::string& error) {
  namespace fs = std::filesystem;
  std::string path = !tokenizer.empty() ? tokenizer
                     : !model.empty()   ? model + "/tokenizer.json"
                                        : default_model_dir() + "/tokenizer.json";
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!tokenizer.empty()) {
    error = "tokenizer file " + path + " does not exist";
  } else if (!model.empty()) {
    error = "model directory " + model + " has no tokenizer.json";
  } else {
    error = "no tokenizer given and the default model (" + default_model_dir() +
            ") has none; pass --tokenizer FILE or --model DIR";
  }
  return {};
}

}  // namespace mnemo::app
