#pragma once
// Everything the cloned child needs, computed by the parent before clone(): the child touches no
// allocator (another thread of the parent may hold its lock), only this plan and system calls.
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mnemo/sandbox/policy.h>

namespace mnemo::sandbox::internal {

inline constexpr uid_t kInnerUid = 1000;
inline constexpr gid_t kInnerGid = 1000;
// Exit status of the sandbox's init when its setup failed (the reason is on the error pipe).
inline constexpr int kSetupFailedExit = 125;

struct MountOp {
  enum class Kind {
    kMkdir,
    kSymlink,
    kBindReadOnly,
    kBindReadWrite,
    kBindDevice,
    kTouch,
    kTmpfs,
    kProc
  };
  Kind kind;
  std::string src;   // bind source (below /oldroot) or symlink target
  std::string dst;   // below /newroot
  std::string data;  // tmpfs options
  int tree_fd = -1;  // binds: a detached mount tree the parent opened, attached with move_mount
};

// What the child reports on the error pipe when a setup step fails.
struct SetupError {
  char stage[160];
  int error;
};

struct ChildPlan {
  SandboxMode mode = SandboxMode::kIsolated;
  std::vector<MountOp> mounts;
  std::vector<std::string> exec_candidates;  // argv[0] resolved against PATH, tried in order
  std::vector<char*> argv;                   // null-terminated, points into request strings
  std::vector<char*> envp;                   // null-terminated, points into env_storage
  std::vector<std::string> env_storage;
  std::string workdir;
  std::vector<std::pair<int, rlimit>> rlimits;
  const sock_filter* filter = nullptr;
  unsigned short filter_len = 0;
  int cap_last = 40;
  bool drop_groups = false;  // setgroups(0) is allowed (the parent did not write "deny")
  int sync_fd = -1;          // read end: one byte means "ids mapped, go"; EOF means the parent died
  int sync_write_fd = -1;    // the parent's end, closed first so that EOF can be seen
  int error_fd = -1;         // write end of the setup error pipe (close-on-exec)
  int status_fd = -1;        // write end: init writes the command's wait status here
  int stdout_fd = -1;
  int stderr_fd = -1;
  // mnemo's argv and environment in memory (from /proc/self/stat): the sandbox's init is a clone
  // of mnemo, so /proc/1/cmdline would show mnemo's command line; the child wipes them.
  uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};

// The body of the cloned child; never returns.
[[noreturn]] void child_main(const ChildPlan& plan);

}  // namespace mnemo::sandbox::internal
