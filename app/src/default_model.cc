#include "default_model.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include <mnemo/inference/model_init.h>

#include "paths.h"

namespace mnemo::app {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTokenizerRel = "third_party/deepseek_v3_tokenizer";

bool has_tokenizer(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "tokenizer.json", ec) &&
         fs::is_regular_file(dir / "tokenizer_config.json", ec);
}

bool model_complete(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "config.json", ec) &&
         fs::is_regular_file(dir / "model.safetensors", ec) &&
         fs::is_regular_file(dir / "tokenizer.json", ec);
}

}  // namespace

Result<std::string> find_v3_tokenizer_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  // An installed binary: PREFIX/bin/mnemo with PREFIX/share/mnemo/deepseek_v3_tokenizer.
  fs::path installed = exe.parent_path().parent_path() / "share/mnemo/deepseek_v3_tokenizer";
  if (!ec && has_tokenizer(installed)) return installed.string();
  auto tree = find_source_tree({std::string(kTokenizerRel) + "/tokenizer.json",
                                std::string(kTokenizerRel) + "/tokenizer_config.json"});
  if (!tree) return tree.status();
  return (*tree / kTokenizerRel).string();
}

std::function<void(uint64_t, uint64_t)> stderr_progress(const std::string& label) {
  if (!::isatty(STDERR_FILENO)) return {};
  struct State {
    std::chrono::steady_clock::time_point last{};
    int last_percent = -1;
  };
  auto state = std::make_shared<State>();
  return [label, state](uint64_t done, uint64_t total) {
    int percent = total ? static_cast<int>(done * 100 / total) : 100;
    auto now = std::chrono::steady_clock::now();
    if (percent == state->last_percent ||
        (percent < 100 && now - state->last < std::chrono::milliseconds(100))) {
      return;
    }
    state->last = now;
    state->last_percent = percent;
    std::fprintf(stderr, "\r%s %3d%% (%.1f of %.1f MB)%s", label.c_str(), percent, done / 1e6,
                 total / 1e6, percent == 100 ? "\n" : "");
    std::fflush(stderr);
  };
}

Result<std::string> ensure_default_model() {
  const fs::path dir = default_model_dir();
  if (model_complete(dir)) return dir.string();
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  if (ec)
    return Status::io_error("cannot create " + dir.parent_path().string() + ": " + ec.message());
  // Two processes starting at once: the second waits for the first and reuses its model.
  std::string lock_path = dir.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot open " + lock_path);
  ::flock(fd, LOCK_EX);
  auto unlock = std::unique_ptr<int, void (*)(int*)>(&fd, [](int* f) { ::close(*f); });
  if (model_complete(dir)) return dir.string();
  auto tokenizer_dir = find_v3_tokenizer_dir();
  if (!tokenizer_dir) return tokenizer_dir.status();
  std::cerr << "mnemo: creating the default model (preset tiny) in " << dir.string() << " (once)\n";
  inference::InitOptions options;
  options.progress = stderr_progress("mnemo: writing model.safetensors");
  auto config = inference::preset_config(inference::ModelPreset::kTiny);
  MNEMO_RETURN_IF_ERROR(inference::init_model(dir.string(), config, options, *tokenizer_dir));
  return dir.string();
}

Result<std::string> model_dir_or_default(const std::string& dir) {
  if (!dir.empty()) return dir;
  return ensure_default_model();
}

Result<LoadedModel> load_model(const std::string& dir, inference::Precision precision) {
  auto resolved = model_dir_or_default(dir);
  if (!resolved) return resolved.status();
  LoadedModel out;
  out.dir = *resolved;
  auto tokenizer = inference::Tokenizer::load(out.dir + "/tokenizer.json");
  if (!tokenizer) return tokenizer.status();
  out.tokenizer = std::make_unique<inference::Tokenizer>(std::move(tokenizer).value());
  auto model = inference::Model::load(out.dir, {precision});
  if (!model) return model.status();
  out.model = std::move(model).value();
  return out;
}

}  // namespace mnemo::app
