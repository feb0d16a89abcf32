#include <mnemo/sandbox/support.h>
#include <mnemo/sandbox/workspace.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "cgroup.h"

namespace mnemo::sandbox {
namespace {

std::string read_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// The only honest test: create the namespaces a sandbox needs and see.
bool try_namespaces(std::string& detail) {
  int pidfd = -1;
  unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                        CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
  long pid = syscall(SYS_clone, flags, nullptr, &pidfd, nullptr, nullptr);
  if (pid == 0) _exit(0);
  if (pid < 0) {
    detail = std::string("creating user+mount+pid+net+ipc+uts namespaces failed: ") +
             std::strerror(errno);
    std::string max = read_line("/proc/sys/user/max_user_namespaces");
    if (max == "0") detail += " (user.max_user_namespaces is 0)";
    return false;
  }
  siginfo_t info{};
  waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED);
  close(pidfd);
  detail = "user, mount, pid, net, ipc, uts (max_user_namespaces " +
           read_line("/proc/sys/user/max_user_namespaces") + ")";
  return true;
}

}  // namespace

SupportInfo probe_support(uid_t sandbox_uid) {
  SupportInfo info;
  info.running_as_root = geteuid() == 0;
  info.user_namespaces = try_namespaces(info.user_namespaces_detail);
  uint32_t action = SECCOMP_RET_ERRNO;
  info.seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 &&
                 syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  info.pidfd = fd >= 0;
  if (fd >= 0) close(fd);
  errno = 0;
  syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  info.mount_setattr = errno != ENOSYS;
  const internal::CgroupLocation& cg = internal::cgroup_location();
  info.cgroup = cg.mode;
  info.cgroup_detail = cg.detail;
  return info;
}

std::string format_support(const SupportInfo& info, uid_t sandbox_uid) {
  auto yes = [](bool b) { return b ? std::string("yes") : std::string("no"); };
  std::string out;
  out +=
      "user namespaces: " + yes(info.user_namespaces) + " (" + info.user_namespaces_detail + ")\n";
  out += "isolation: " +
         std::string(
             info.user_namespaces
                 ? "available"
                 : "UNAVAILABLE: tools are refused unless a job asks for sandbox: {mode: none}") +
         "\n";
  out += "sandbox uid: " + std::to_string(effective_sandbox_uid(sandbox_uid)) +
         (info.running_as_root ? " (mnemo runs as root; the sandbox never maps to host root)"
                               : " (our own uid)") +
         "\n";
  out += "seccomp filter: " + yes(info.seccomp) + "\n";
  out += "pidfd: " + yes(info.pidfd) + "\n";
  out += "mount_setattr: " + yes(info.mount_setattr) + "\n";
  const char* mode = info.cgroup == CgroupMode::kV2   ? "v2"
                     : info.cgroup == CgroupMode::kV1 ? "v1"
                                                      : "none";
  out += "cgroup: " + std::string(mode) + " (" + info.cgroup_detail + ")\n";
  out += "network: none (a fresh network namespace with only lo)\n";
  return out;
}

}  // namespace mnemo::sandbox
