#pragma once
// Helpers for the sandbox escape suite: a fresh workspace per test, the probe binary, and host-side
// views of what the sandbox left behind (processes found by a token in their command line).
#include <mnemo/sandbox/runner.h>
#include <mnemo/sandbox/workspace.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "support/processes.h"

namespace mnemo::test {

namespace fs = std::filesystem;

inline std::string probe_path() { return MNEMO_SANDBOX_PROBE; }

// A unique word to find this test's processes and files by.
inline std::string unique_token(const std::string& what) {
  static std::atomic<int> n{0};
  return "mnemo-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

struct Workspace {
  fs::path path;
  Workspace() {
    path = fs::temp_directory_path() / unique_token("ws");
    fs::create_directories(path);
  }
  ~Workspace() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

inline sandbox::ExecRequest request(const Workspace& ws, std::vector<std::string> argv) {
  sandbox::ExecRequest req;
  req.argv = std::move(argv);
  req.policy.workspace = ws.path.string();
  req.policy.read_only_paths = {probe_path()};
  req.policy.limits.timeout = std::chrono::seconds(10);
  return req;
}

inline sandbox::ExecRequest probe(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), probe_path());
  return request(ws, std::move(args));
}

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// "name=value" lines of a probe's report, as a lookup.
inline std::string field(const std::string& out, const std::string& name) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "=", 0) == 0) return line.substr(name.size() + 1);
  }
  return "<missing>";
}

}  // namespace mnemo::test
