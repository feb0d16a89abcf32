#include <mnemo/sandbox/policy.h>

#include <string.h>

namespace mnemo::sandbox {

std::string_view exit_reason_name(ExitReason reason) {
  switch (reason) {
    case ExitReason::kExited:
      return "exited";
    case ExitReason::kSignaled:
      return "signaled";
    case ExitReason::kTimeout:
      return "timeout";
    case ExitReason::kMemoryLimit:
      return "memory_limit";
    case ExitReason::kCpuLimit:
      return "cpu_limit";
  }
  return "unknown";
}

std::string describe_stop(const ExecResult& r, const Limits& limits) {
  auto ms = limits.timeout.count();
  std::string timeout =
      ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
  switch (r.reason) {
    case ExitReason::kExited:
      return {};
    case ExitReason::kTimeout:
      return "timed out after " + timeout + "; the whole process tree was killed";
    case ExitReason::kMemoryLimit:
      return "killed by the memory limit (" + std::to_string(limits.memory_bytes >> 20) + " MiB)";
    case ExitReason::kCpuLimit:
      return "killed by the CPU time limit (" + std::to_string(limits.cpu.count()) + "s)";
    case ExitReason::kSignaled:
      return "killed by signal " + std::to_string(r.signal) + " (" + sigabbrev_np(r.signal) + ")";
  }
  return {};
}

}  // namespace mnemo::sandbox
