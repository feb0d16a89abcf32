#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

namespace mnemo::sandbox::internal {
namespace {

// Local copies: glibc's <sys/mount.h> and <linux/mount.h> cannot both be included.
struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
constexpr unsigned kOpenTreeClone = 1;           // OPEN_TREE_CLONE
constexpr unsigned kAtRecursive = 0x8000;        // AT_RECURSIVE
constexpr uint64_t kAttrRdonly = 0x00000001;     // MOUNT_ATTR_RDONLY
constexpr uint64_t kAttrNosuid = 0x00000002;     // MOUNT_ATTR_NOSUID
constexpr uint64_t kAttrNodev = 0x00000004;      // MOUNT_ATTR_NODEV
constexpr uint64_t kAttrIdmap = 0x00100000;      // MOUNT_ATTR_IDMAP

bool write_text(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// A user namespace whose only mapping is inside `from` -> host `to`, as an fd (what
// MOUNT_ATTR_IDMAP takes). Made once per mapping by a short-lived child and kept open.
Result<int> mapping_userns(uid_t from_uid, gid_t from_gid, uid_t to_uid, gid_t to_gid) {
  static std::mutex mu;
  static std::map<std::tuple<uid_t, gid_t, uid_t, gid_t>, int> cache;
  std::lock_guard lock(mu);
  const auto key = std::make_tuple(from_uid, from_gid, to_uid, to_gid);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) != 0)
    return Status::io_error(std::string("sandbox: pipe: ") + std::strerror(errno));
  // Raw clone without a new stack (fork-like); the child only waits for the pipe to close.
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    char c;
    close(hold[1]);
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(hold[0]);
  if (pid < 0) {
    close(hold[1]);
    return Status::unsupported(std::string("sandbox: creating a user namespace for the "
                                           "workspace's id mapping: ") +
                               std::strerror(errno));
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  bool ok = write_text(proc + "/uid_map",
                       std::to_string(from_uid) + " " + std::to_string(to_uid) + " 1\n") &&
            write_text(proc + "/setgroups", "deny") &&
            write_text(proc + "/gid_map",
                       std::to_string(from_gid) + " " + std::to_string(to_gid) + " 1\n");
  int fd = ok ? open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC) : -1;
  const int err = errno;
  close(hold[1]);
  waitpid(static_cast<pid_t>(pid), nullptr, 0);
  if (fd < 0) {
    return Status::io_error(std::string("sandbox: setting up the workspace's id mapping: ") +
                            std::strerror(err));
  }
  cache.emplace(key, fd);
  return fd;
}

std::string fs_name(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return "its file system";
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(st.f_type));
  return std::string("its file system (type ") + hex + ")";
}

}  // namespace

Result<int> open_tree_for_sandbox(const std::string& path, bool map_owner, uid_t sandbox_uid,
                                  gid_t sandbox_gid, bool read_only) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Status::not_found("sandbox: '" + path + "': " + std::strerror(errno));
  int fd = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, path.c_str(),
                                    kOpenTreeClone | kAtRecursive | O_CLOEXEC));
  if (fd < 0) {
    return Status::unsupported("sandbox: cannot take a copy of the mount at '" + path +
                               "' (open_tree: " + std::strerror(errno) + "; Linux >= 5.2 needed)");
  }
  MountAttr attr{};
  attr.attr_set = kAttrNosuid | kAttrNodev | (read_only ? kAttrRdonly : 0);
  const bool idmap = map_owner && (st.st_uid != sandbox_uid || st.st_gid != sandbox_gid);
  if (idmap) {
    auto userns = mapping_userns(st.st_uid, st.st_gid, sandbox_uid, sandbox_gid);
    if (!userns) {
      close(fd);
      return userns.status();
    }
    attr.attr_set |= kAttrIdmap;
    attr.userns_fd = static_cast<uint64_t>(*userns);
  }
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | kAtRecursive, &attr, sizeof attr) != 0) {
    const int err = errno;
    close(fd);
    if (idmap) {
      return Status::unsupported(
          "sandbox: the workspace '" + path + "' (owner uid " + std::to_string(st.st_uid) +
          ") cannot be idmapped to the sandbox uid " + std::to_string(sandbox_uid) + ": " +
          fs_name(path) + " or this kernel does not support idmapped mounts (" +
          std::strerror(err) +
          "). mnemo never changes the owner of your files; use a workspace on ext4, xfs, btrfs "
          "or tmpfs with Linux >= 6.3, or run mnemo as a non-root user");
    }
    return Status::io_error("sandbox: restricting the mount of '" + path +
                            "': " + std::strerror(err));
  }
  return fd;
}

}  // namespace mnemo::sandbox::internal
