#pragma once
// One cgroup per sandbox run (memory and pids limits), under whichever hierarchy we may write to.
#include <sys/types.h>

#include <memory>
#include <string>

#include <mnemo/base/status.h>
#include <mnemo/sandbox/policy.h>
#include <mnemo/sandbox/support.h>

namespace mnemo::sandbox::internal {

// Where per-run cgroups go, probed once per process by creating and removing one.
struct CgroupLocation {
  CgroupMode mode = CgroupMode::kNone;
  std::string memory_dir;  // v2: the one parent directory; v1: the memory hierarchy's
  std::string pids_dir;    // v1 only
  std::string detail;
};

const CgroupLocation& cgroup_location();

class Cgroup {
 public:
  // Returns null when no cgroup hierarchy is writable (limits then fall back to rlimits).
  static Result<std::unique_ptr<Cgroup>> create(const Limits& limits);
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  Status attach(pid_t pid);
  // Whether the kernel's OOM killer killed a process of this cgroup.
  bool oom_killed() const;

 private:
  Cgroup() = default;
  CgroupMode mode_ = CgroupMode::kNone;
  std::string memory_path_;
  std::string pids_path_;
};

}  // namespace mnemo::sandbox::internal
