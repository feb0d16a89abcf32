// `mnemo bench sandbox`: spawn-to-exit latency of /bin/true under full isolation, mnemo's runner
// against bubblewrap with comparable isolation, measured in the same run.
#include <mnemo/sandbox/runner.h>
#include <mnemo/sandbox/support.h>
#include <mnemo/sandbox/workspace.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"

namespace mnemo::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct SandboxBenchOptions {
  int runs = 200;
  bool json = false;
  bool no_peer = false;
};

struct Latency {
  double p50_ms = 0;
  double p99_ms = 0;
};

Latency percentiles(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  return {at(0.50), at(0.99)};
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string find_in_path(const std::string& name) {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// bwrap with the isolation the issue names: every namespace, the same system links and binds.
std::vector<std::string> bwrap_argv(const std::string& bwrap, const std::string& workspace) {
  std::vector<std::string> a = {
      bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"};
  for (const char* dir : {"/bin", "/lib", "/lib64", "/sbin"}) {
    struct stat st {};
    if (lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(dir).string(), dir});
    } else {
      a.insert(a.end(), {"--ro-bind", dir, dir});
    }
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", workspace,
                     "/workspace", "--chdir", "/workspace", "/bin/true"});
  return a;
}

// One spawn-to-exit of argv; -1 when it did not exit 0.
double time_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return ms_since(t0);
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

int run_bench(const SandboxBenchOptions& opt) {
  if (opt.runs < 1) return fail("bench sandbox: --runs must be positive");
  std::string bwrap;
  if (!opt.no_peer) {
    bwrap = find_in_path("bwrap");
    if (bwrap.empty())
      return fail(
          "bench sandbox: bubblewrap (bwrap) not found: apt-get install bubblewrap, or pass "
          "--no-peer");
  }
  std::string tmpl = (fs::temp_directory_path() / "mnemo-bench-sandbox-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return fail("bench sandbox: cannot create a temporary workspace");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmpl};
  // bwrap keeps the caller's uid without capabilities, so it must be able to enter the workspace
  // too.
  chmod(tmpl.c_str(), 0755);
  sandbox::ExecRequest req;
  req.argv = {"/bin/true"};
  req.policy.workspace = tmpl;
  const bool tty = isatty(STDERR_FILENO) == 1;
  auto mnemo_once = [&]() -> double {
    auto t0 = Clock::now();
    auto r = sandbox::run(req);
    if (!r || r->exit_status != 0) return -1;
    return ms_since(t0);
  };
  auto bwrap_args = bwrap.empty() ? std::vector<std::string>{} : bwrap_argv(bwrap, tmpl);
  std::vector<double> mine, peer;
  // Interleaved, after a warm-up, so that neither side gets a quieter machine.
  for (int i = -5; i < opt.runs; ++i) {
    double m = mnemo_once();
    if (m < 0)
      return fail("bench sandbox: /bin/true failed in mnemo's sandbox (see `mnemo sandbox info`)");
    double b = bwrap.empty() ? 0 : time_process(bwrap_args);
    if (b < 0) return fail("bench sandbox: /bin/true failed under bwrap");
    if (i < 0) continue;
    mine.push_back(m);
    if (!bwrap.empty()) peer.push_back(b);
    if (tty && (i + 1) % 50 == 0)
      std::cerr << "bench sandbox: " << (i + 1) << "/" << opt.runs << " runs\n";
  }
  Latency m = percentiles(mine);
  auto support = sandbox::probe_support(sandbox::kDefaultSandboxUid);
  const char* cgroup = support.cgroup == sandbox::CgroupMode::kV2   ? "v2"
                       : support.cgroup == sandbox::CgroupMode::kV1 ? "v1"
                                                                    : "none";
  if (opt.json) {
    std::string line = "{\"bench\": \"sandbox\", \"runs\": " + std::to_string(opt.runs) +
                       ", \"p50_ms\": " + fixed(m.p50_ms) + ", \"p99_ms\": " + fixed(m.p99_ms) +
                       ", \"cgroup\": \"" + cgroup + "\"";
    if (!peer.empty()) {
      Latency b = percentiles(peer);
      line += ", \"bwrap_p50_ms\": " + fixed(b.p50_ms) + ", \"bwrap_p99_ms\": " + fixed(b.p99_ms) +
              ", \"ratio\": " + fixed(m.p50_ms / b.p50_ms);
    }
    std::cout << line << "}\n";
    return 0;
  }
  std::cout << "sandbox: spawn-to-exit of /bin/true, full isolation, " << opt.runs
            << " runs (cgroup " << cgroup << ")\n";
  std::cout << "  mnemo       p50 " << fixed(m.p50_ms) << " ms   p99 " << fixed(m.p99_ms)
            << " ms\n";
  if (!peer.empty()) {
    Latency b = percentiles(peer);
    std::cout << "  bubblewrap  p50 " << fixed(b.p50_ms) << " ms   p99 " << fixed(b.p99_ms)
              << " ms\n";
    std::cout << "  ratio (mnemo p50 / bubblewrap p50): " << fixed(m.p50_ms / b.p50_ms)
              << " (goal <= 1)\n";
  }
  return 0;
}

}  // namespace

void register_sandbox_bench(CLI::App& bench, CommandContext& ctx) {
  auto opt = std::make_shared<SandboxBenchOptions>();
  CLI::App* cmd =
      bench.add_subcommand("sandbox", "Sandbox spawn-to-exit latency against bubblewrap");
  cmd->add_option("--runs", opt->runs, "measured runs of each")->capture_default_str();
  cmd->add_flag("--json", opt->json, "print one JSON line");
  cmd->add_flag("--no-peer", opt->no_peer, "measure mnemo only (no bubblewrap)");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_bench(*opt); });
}

}  // namespace mnemo::app
