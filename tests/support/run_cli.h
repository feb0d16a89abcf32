#pragma once
// Runs the built `mnemo` binary as a user would: arguments, stdin text, captured stdout and status.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace mnemo::test {

struct CliResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// args are passed through /bin/sh quoted one by one; stdin comes from a temporary file.
inline CliResult run_cli(const std::string& args, const std::string& input = "",
                         const std::string& env = "") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("mnemo-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path in = dir / "stdin", out = dir / "stdout", err = dir / "stderr";
  std::ofstream(in, std::ios::binary) << input;
  std::string cmd = env + " " + shell_quote(MNEMO_BINARY) + " " + args + " <" + in.string() + " >" +
                    out.string() + " 2>" + err.string();
  int raw = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove_all(dir);
  return r;
}

}  // namespace mnemo::test
