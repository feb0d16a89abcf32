#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace mnemo::sandbox::internal {
namespace {

// Local copy: glibc's <sys/mount.h> and <linux/mount.h> cannot both be included.
struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

constexpr unsigned kMoveMountFEmptyPath = 0x00000004;  // MOVE_MOUNT_F_EMPTY_PATH

[[noreturn]] void fail(const ChildPlan& plan, const char* stage, const char* detail = nullptr) {
  SetupError e{};
  int err = errno;
  size_t n = 0;
  for (const char* s : {stage, detail ? " " : "", detail ? detail : ""}) {
    for (; *s && n + 1 < sizeof e.stage; ++s) e.stage[n++] = *s;
  }
  e.error = err;
  if (write(plan.error_fd, &e, sizeof e) < 0) {
  }
  _exit(kSetupFailedExit);
}

void write_str(int fd, const char* s) {
  if (write(fd, s, strlen(s)) < 0) {
  }
}

// Adds nosuid, nodev (except for device binds) and rdonly to a bind mount and everything below it.
bool restrict_bind(const char* dst, bool read_only, bool device = false) {
  MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_NOSUID | (device ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_NODEV) |
                  (read_only ? MOUNT_ATTR_RDONLY : 0);
  if (syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof attr) == 0) return true;
  if (errno != ENOSYS) return false;
  // Older kernels: remount the top mount, keeping the flags the kernel locked on it.
  struct statfs st;
  if (statfs(dst, &st) != 0) return false;
  unsigned long keep = st.f_flags & (MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (device ? MS_NOEXEC : MS_NODEV) | keep |
                        (read_only ? MS_RDONLY : 0);
  return mount(nullptr, dst, nullptr, flags, nullptr) == 0;
}

void run_mount_op(const ChildPlan& plan, const MountOp& op) {
  const char* dst = op.dst.c_str();
  switch (op.kind) {
    case MountOp::Kind::kMkdir:
      if (mkdir(dst, 0755) != 0 && errno != EEXIST) fail(plan, "mkdir", dst);
      return;
    case MountOp::Kind::kSymlink:
      if (symlink(op.src.c_str(), dst) != 0) fail(plan, "symlink", dst);
      return;
    case MountOp::Kind::kTouch: {
      int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) fail(plan, "creating", dst);
      close(fd);
      return;
    }
    case MountOp::Kind::kBindReadOnly:
    case MountOp::Kind::kBindReadWrite:
      if (op.tree_fd >= 0) {
        if (syscall(SYS_move_mount, op.tree_fd, "", AT_FDCWD, dst, kMoveMountFEmptyPath) != 0)
          fail(plan, "attaching", dst);
      } else if (mount(op.src.c_str(), dst, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        fail(plan, "binding", dst);
      }
      if (!restrict_bind(dst, op.kind == MountOp::Kind::kBindReadOnly))
        fail(plan, "restricting", dst);
      return;
    case MountOp::Kind::kBindDevice:
      if (mount(op.src.c_str(), dst, nullptr, MS_BIND, nullptr) != 0) fail(plan, "binding", dst);
      if (!restrict_bind(dst, false, true)) fail(plan, "restricting", dst);
      return;
    case MountOp::Kind::kTmpfs:
      if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, op.data.c_str()) != 0) {
        fail(plan, "mounting tmpfs on", dst);
      }
      return;
    case MountOp::Kind::kProc:
      if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        fail(plan, "mounting proc on", dst);
      }
      return;
  }
}

// Builds the new root on a tmpfs, then makes it "/" with the host's root detached (bubblewrap's
// dance).
void enter_new_root(const ChildPlan& plan) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    fail(plan, "making / private");
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") != 0) {
    fail(plan, "mounting the base tmpfs");
  }
  if (chdir("/tmp") != 0) fail(plan, "chdir base");
  if (mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0) fail(plan, "mkdir base");
  if (mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) {
    fail(plan, "mounting the root tmpfs");
  }
  if (syscall(SYS_pivot_root, ".", "oldroot") != 0) fail(plan, "pivot_root to base");
  if (chdir("/") != 0) fail(plan, "chdir /");
  for (const MountOp& op : plan.mounts) run_mount_op(plan, op);
  if (mount(nullptr, "/newroot", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) !=
      0) {
    fail(plan, "making the root read-only");
  }
  if (mount("oldroot", "oldroot", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    fail(plan, "oldroot private");
  if (umount2("oldroot", MNT_DETACH) != 0) fail(plan, "detaching the host root");
  if (chdir("/newroot") != 0) fail(plan, "chdir newroot");
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail(plan, "pivot_root to newroot");
  if (umount2(".", MNT_DETACH) != 0) fail(plan, "detaching the base");
}

void loopback_up() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  ifreq req{};
  std::memcpy(req.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &req) == 0) {
    req.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &req);
  }
  close(s);
}

void drop_privileges(const ChildPlan& plan) {
  // Locked securebits: uid 0 inside never regains capabilities through exec or setuid.
  if (plan.mode == SandboxMode::kIsolated &&
      prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                   SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED) != 0) {
    fail(plan, "setting securebits");
  }
  for (int cap = 0; cap <= plan.cap_last; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL &&
        plan.mode == SandboxMode::kIsolated) {
      fail(plan, "dropping the bounding set");
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) fail(plan, "clearing capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(plan, "setting no_new_privs");
  // Non-dumpable: the command cannot open /proc/1/exe (mnemo's binary) or /proc/1/mem.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  sock_fprog prog{plan.filter_len, const_cast<sock_filter*>(plan.filter)};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) fail(plan, "loading seccomp");
}

// Closes every descriptor from 3 up except those in keep (sorted here without allocating).
void close_other_fds(int* keep, int n) {
  for (int i = 1; i < n; ++i) {
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  }
  unsigned next = 3;
  for (int i = 0; i < n; ++i) {
    if (keep[i] < 3 || static_cast<unsigned>(keep[i]) < next) continue;
    if (static_cast<unsigned>(keep[i]) > next) syscall(SYS_close_range, next, keep[i] - 1, 0);
    next = static_cast<unsigned>(keep[i]) + 1;
  }
  syscall(SYS_close_range, next, ~0u, 0);
}

const char* errno_name(int e) {
  switch (e) {
    case ENOENT:
      return "no such file or directory";
    case EACCES:
      return "permission denied";
    case ENOEXEC:
      return "exec format error";
    case ENOTDIR:
      return "not a directory";
    case E2BIG:
      return "argument list too long";
    case ENOMEM:
      return "out of memory";
    case EAGAIN:
      return "resource temporarily unavailable";
    default:
      return "cannot execute";
  }
}

// The command itself: its own session (no controlling terminal), limits, stdio, then exec.
[[noreturn]] void exec_command(const ChildPlan& plan) {
  if (setsid() < 0 && plan.mode == SandboxMode::kIsolated) _exit(126);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(plan.stdout_fd, 1) < 0 ||
      dup2(plan.stderr_fd, 2) < 0) {
    _exit(126);
  }
  syscall(SYS_close_range, 3, ~0u, 0);
  if (chdir(plan.workdir.c_str()) != 0) {
    write_str(2, "mnemo sandbox: cannot enter the workspace\n");
    _exit(126);
  }
  for (const auto& [resource, limit] : plan.rlimits) {
    if (setrlimit(static_cast<__rlimit_resource>(resource), &limit) != 0) {
      write_str(2, "mnemo sandbox: setrlimit failed\n");
      _exit(126);
    }
  }
  int first_error = ENOENT;
  for (const std::string& path : plan.exec_candidates) {
    execve(path.c_str(), plan.argv.data(), plan.envp.data());
    if (errno != ENOENT && errno != ENOTDIR && first_error == ENOENT) first_error = errno;
  }
  write_str(2, "mnemo sandbox: ");
  write_str(2, plan.argv[0]);
  write_str(2, ": ");
  write_str(2, errno_name(first_error));
  write_str(2, "\n");
  _exit(first_error == ENOENT ? 127 : 126);
}

// Our memory is a copy of mnemo's: overwriting argv and environ there changes what /proc/1/cmdline
// and /proc/1/environ show inside the sandbox, and nothing in mnemo itself.
void wipe_process_args(const ChildPlan& plan) {
  static constexpr char kName[] = "mnemo-sandbox-init";
  if (plan.arg_start && plan.arg_end > plan.arg_start) {
    char* p = reinterpret_cast<char*>(plan.arg_start);
    const size_t n = plan.arg_end - plan.arg_start;
    std::memset(p, 0, n);
    std::memcpy(p, kName, std::min(n - 1, sizeof kName - 1));
  }
  if (plan.env_start && plan.env_end > plan.env_start) {
    std::memset(reinterpret_cast<char*>(plan.env_start), 0, plan.env_end - plan.env_start);
  }
}

// PID 1 of the sandbox: reaps every orphan and exits when the command does, which makes the
// kernel kill whatever the command left behind.
[[noreturn]] void run_init(const ChildPlan& plan, pid_t command) {
  close(plan.stdout_fd);
  close(plan.stderr_fd);
  close(plan.error_fd);
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, __WALL);
    if (pid == command) {
      if (write(plan.status_fd, &status, sizeof status) < 0) _exit(kSetupFailedExit);
      _exit(0);
    }
    if (pid < 0 && errno != EINTR) _exit(kSetupFailedExit);
  }
}

}  // namespace

void child_main(const ChildPlan& plan) {
  const bool isolated = plan.mode == SandboxMode::kIsolated;
  close(plan.sync_write_fd);
  if (isolated) wipe_process_args(plan);
  if (isolated) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (setsid() < 0) fail(plan, "setsid");
  // Init keeps none of mnemo's stdio (a terminal, perhaps): only the command gets fresh ones.
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0) {
    fail(plan, "opening /dev/null");
  }
  char go = 0;
  if (read(plan.sync_fd, &go, 1) != 1) _exit(kSetupFailedExit);  // the parent gave up or died
  if (isolated) {
    // Raw calls: glibc's wrappers broadcast to the parent's other threads, which do not exist here.
    if (plan.drop_groups && syscall(SYS_setgroups, 0, nullptr) != 0) fail(plan, "setgroups");
    if (syscall(SYS_setresgid, kInnerGid, kInnerGid, kInnerGid) != 0) fail(plan, "setresgid");
    if (syscall(SYS_setresuid, kInnerUid, kInnerUid, kInnerUid) != 0) fail(plan, "setresuid");
  }
  // After the id change (which clears it); the poll closes the race with a parent that just died.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(plan, "setting the parent-death signal");
  pollfd pfd{plan.sync_fd, POLLIN, 0};
  if (poll(&pfd, 1, 0) != 0) _exit(kSetupFailedExit);
  if (isolated) {
    if (sethostname("sandbox", 7) != 0) fail(plan, "sethostname");
    enter_new_root(plan);
    loopback_up();
  }
  drop_privileges(plan);
  int keep[] = {plan.error_fd, plan.status_fd, plan.stdout_fd, plan.stderr_fd};
  close_other_fds(keep, 4);
  if (!isolated) exec_command(plan);
  // Raw clone, not fork(): glibc's fork takes malloc's locks, which another parent thread may own.
  pid_t command =
      static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (command < 0) fail(plan, "fork");
  if (command == 0) exec_command(plan);
  run_init(plan, command);
}

}  // namespace mnemo::sandbox::internal
