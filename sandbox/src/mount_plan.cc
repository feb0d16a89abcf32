#include "mount_plan.h"

#include "idmap.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace mnemo::sandbox::internal {
namespace {

constexpr const char* kNewRoot = "/newroot";
constexpr const char* kOldRoot = "/oldroot";
// Top-level system directories: replicated as links where the host has links (merged /usr).
constexpr const char* kSystemDirs[] = {"/usr", "/bin", "/lib", "/lib64", "/sbin"};
constexpr const char* kEtcDirs[] = {"/etc/alternatives", "/etc/ssl"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};
// Paths the sandbox builds itself; a job's extra path may not shadow them. Paths inside /tmp are bound
// on top of the sandbox's fresh /tmp (a checkout or build tree often lives there).
constexpr const char* kReserved[] = {"/workspace", "/tmp", "/proc", "/dev"};
constexpr const char* kTmp = "/tmp";

bool is_under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) return {};
  return buf;
}

class Planner {
 public:
  void mkdir_p(const std::string& dir) {
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos != dir.size() && dir[pos] != '/') continue;
      std::string prefix = dir.substr(0, pos);
      if (made_.insert(prefix).second) add(MountOp::Kind::kMkdir, "", prefix);
    }
  }
  void add(MountOp::Kind kind, std::string src, const std::string& dst, std::string data = "") {
    ops_.push_back(MountOp{kind, std::move(src), kNewRoot + dst, std::move(data)});
  }
  // Binds host `src` at `dst`, making the mount point a directory or a file to match.
  // tree_fd >= 0: the source is that detached tree (opened from `src`) instead of a path.
  void bind(const std::string& src, const std::string& dst, MountOp::Kind kind, int tree_fd = -1) {
    struct stat st {};
    bool dir = stat(src.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    if (dir) {
      mkdir_p(dst);
    } else {
      mkdir_p(dst.substr(0, dst.rfind('/')));
      add(MountOp::Kind::kTouch, "", dst);
    }
    add(kind, kOldRoot + src, dst);
    ops_.back().tree_fd = tree_fd;
    visible_.push_back(dst);
  }
  // Closes the trees opened so far (a plan that failed halfway).
  void close_trees() {
    for (MountOp& op : ops_) {
      if (op.tree_fd >= 0) ::close(op.tree_fd);
      op.tree_fd = -1;
    }
  }
  bool visible(const std::string& path) const {
    return std::any_of(visible_.begin(), visible_.end(),
                       [&](const std::string& v) { return is_under(path, v); });
  }
  void mark_visible(const std::string& path) { visible_.push_back(path); }
  std::vector<MountOp> take() { return std::move(ops_); }

 private:
  std::vector<MountOp> ops_;
  std::set<std::string> made_{""};
  std::vector<std::string> visible_;
};

}  // namespace

Result<std::vector<MountOp>> build_mount_plan(const Policy& policy, const std::string& workspace,
                                              uid_t sandbox_uid) {
  Planner plan;
  Status failed = Status::ok();
  // As root the child runs as the sandbox uid and could not even traverse a 0700 parent
  // directory: the parent opens those trees itself.
  const bool as_root = geteuid() == 0;
  auto tree = [&](const std::string& path, bool map_owner, bool read_only) -> int {
    if (!as_root || !failed) return -1;
    auto fd = open_tree_for_sandbox(path, map_owner, sandbox_uid, static_cast<gid_t>(sandbox_uid),
                                    read_only);
    if (!fd) {
      failed = fd.status();
      return -1;
    }
    return *fd;
  };
  for (const char* dir : kSystemDirs) {
    struct stat st {};
    if (lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlink(dir, target, sizeof target - 1);
      if (n <= 0) return Status::io_error(std::string("sandbox: reading the link ") + dir);
      plan.add(MountOp::Kind::kSymlink, std::string(target, static_cast<size_t>(n)), dir);
      plan.mark_visible(dir);
    } else if (S_ISDIR(st.st_mode)) {
      plan.bind(dir, dir, MountOp::Kind::kBindReadOnly);
    }
  }
  for (const char* dir : kEtcDirs) {
    std::string real = real_path(dir);
    if (!real.empty()) plan.bind(real, dir, MountOp::Kind::kBindReadOnly);
  }
  std::vector<std::string> under_tmp;
  for (const std::string& path : policy.read_only_paths) {
    if (path.empty() || path[0] != '/') {
      return Status::invalid_argument("sandbox: read-only path '" + path + "' is not absolute");
    }
    std::string real = real_path(path);
    if (real.empty()) {
      return Status::not_found("sandbox: read-only path '" + path + "': " + std::strerror(errno));
    }
    if (real == "/")
      return Status::invalid_argument("sandbox: read-only path '" + path + "' is the host root");
    if (real != kTmp && is_under(real, kTmp)) {
      under_tmp.push_back(real);
      continue;
    }
    for (const char* reserved : kReserved) {
      if (is_under(real, reserved) || is_under(reserved, real)) {
        return Status::invalid_argument("sandbox: read-only path '" + path + "' would shadow " +
                                        reserved);
      }
    }
    // Already visible through a system bind (e.g. under /usr): nothing to add.
    if (plan.visible(real)) continue;
    plan.bind(real, real, MountOp::Kind::kBindReadOnly, tree(real, false, true));
  }
  plan.bind(workspace, "/workspace", MountOp::Kind::kBindReadWrite, tree(workspace, true, false));
  if (!failed) {
    plan.close_trees();
    return failed;
  }
  plan.mkdir_p("/tmp");
  std::string tmp_size = std::to_string(policy.limits.memory_bytes);
  plan.add(MountOp::Kind::kTmpfs, "", "/tmp", "mode=1777,size=" + tmp_size);
  for (const std::string& real : under_tmp)
    plan.bind(real, real, MountOp::Kind::kBindReadOnly, tree(real, false, true));
  if (!failed) {
    plan.close_trees();
    return failed;
  }
  plan.mkdir_p("/proc");
  plan.add(MountOp::Kind::kProc, "", "/proc");
  plan.mkdir_p("/dev");
  plan.add(MountOp::Kind::kTmpfs, "", "/dev", "mode=0755,size=64k");
  for (const char* dev : kDevices) {
    std::string name = std::string("/dev/") + dev;
    plan.add(MountOp::Kind::kTouch, "", name);
    plan.add(MountOp::Kind::kBindDevice, kOldRoot + name, name);
  }
  plan.mkdir_p("/dev/shm");
  plan.add(MountOp::Kind::kTmpfs, "", "/dev/shm", "mode=1777,size=" + tmp_size);
  plan.add(MountOp::Kind::kSymlink, "/proc/self/fd", "/dev/fd");
  plan.add(MountOp::Kind::kSymlink, "/proc/self/fd/0", "/dev/stdin");
  plan.add(MountOp::Kind::kSymlink, "/proc/self/fd/1", "/dev/stdout");
  plan.add(MountOp::Kind::kSymlink, "/proc/self/fd/2", "/dev/stderr");
  return plan.take();
}

}  // namespace mnemo::sandbox::internal
