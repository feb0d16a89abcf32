#pragma once
// What a sandboxed command may see and use, and what came out of running it.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::sandbox {

// kNone runs the command without isolation (only limits, timeout and output caps): a job must ask
// for it.
enum class SandboxMode { kIsolated, kNone };

// The host uid a sandbox runs as when mnemo itself runs as root (never host root).
inline constexpr uid_t kDefaultSandboxUid = 61000;

struct Limits {
  uint64_t memory_bytes =
      512ull << 20;              // cgroup memory limit; RLIMIT_AS when no cgroup is writable
  uint32_t pids = 256;           // every process in the sandbox, its init included
  std::chrono::seconds cpu{60};  // RLIMIT_CPU of each process
  std::chrono::milliseconds timeout{60000};  // wall clock, kills the whole tree
  uint64_t file_size_bytes = 1ull << 30;     // RLIMIT_FSIZE
  uint32_t open_files = 1024;                // RLIMIT_NOFILE
  size_t stdout_cap = 8u << 20;
  size_t stderr_cap = 8u << 20;
};

struct Policy {
  SandboxMode mode = SandboxMode::kIsolated;
  std::string workspace;                     // host directory, read-write at /workspace
  std::vector<std::string> read_only_paths;  // extra host paths, bound read-only at the same path
  Limits limits;
  uid_t sandbox_uid = kDefaultSandboxUid;  // used only when mnemo runs as root
};

enum class OutputStream { kStdout, kStderr };

struct ExecRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in the sandbox's PATH when it has no '/'
  Policy policy;
  // Called on the runner's executor with each chunk kept (within the caps), as it arrives.
  std::function<void(OutputStream, std::string_view)> on_output;
};

enum class ExitReason {
  kExited,       // exit_status is the command's own
  kSignaled,     // killed by a signal it did not get from a limit
  kTimeout,      // wall-clock timeout: exit_status 124
  kMemoryLimit,  // the cgroup's OOM killer: exit_status 137
  kCpuLimit,     // RLIMIT_CPU: exit_status 137
};

struct ExecResult {
  int exit_status = 0;  // shell convention: status, 128+signal, 124 timeout, 137 limit
  ExitReason reason = ExitReason::kExited;
  int signal = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::chrono::nanoseconds wall{0};
  std::string warning;  // set when the command ran without isolation
};

std::string_view exit_reason_name(ExitReason reason);
// One line saying why the command stopped when it did not simply exit ("timed out after 10s").
std::string describe_stop(const ExecResult& result, const Limits& limits);

}  // namespace mnemo::sandbox
