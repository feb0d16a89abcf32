#include <mnemo/sandbox/workspace.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>

namespace mnemo::sandbox {
namespace {

thread_local uid_t g_owner = 0;
thread_local int g_error = 0;

int adopt_one(const char* path, const struct stat* st, int, FTW*) {
  if (st->st_uid == g_owner && st->st_gid == static_cast<gid_t>(g_owner)) return 0;
  if (lchown(path, g_owner, static_cast<gid_t>(g_owner)) != 0) {
    g_error = errno;
    return 1;
  }
  return 0;
}

}  // namespace

uid_t effective_sandbox_uid(uid_t sandbox_uid) { return geteuid() == 0 ? sandbox_uid : geteuid(); }

Status adopt_workspace(const std::string& dir, uid_t sandbox_uid) {
  if (geteuid() != 0) return Status::ok();
  char real[PATH_MAX];
  if (!realpath(dir.c_str(), real)) {
    return Status::not_found("sandbox: workspace '" + dir + "': " + std::strerror(errno));
  }
  if (std::strcmp(real, "/") == 0)
    return Status::invalid_argument("sandbox: the workspace cannot be /");
  if (sandbox_uid == 0) return Status::invalid_argument("sandbox: the sandbox uid cannot be root");
  g_owner = sandbox_uid;
  g_error = 0;
  // FTW_PHYS: symlinks are changed, never followed; FTW_MOUNT: other file systems are left alone.
  if (nftw(real, adopt_one, 64, FTW_PHYS | FTW_MOUNT) != 0) {
    return Status::io_error("sandbox: handing workspace '" + dir + "' to uid " +
                            std::to_string(sandbox_uid) + ": " +
                            std::strerror(g_error ? g_error : errno));
  }
  return Status::ok();
}

}  // namespace mnemo::sandbox
