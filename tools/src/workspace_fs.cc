#include "workspace_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>
#include <stdlib.h>

#include <mnemo/sandbox/workspace.h>

#include <cstring>

namespace mnemo::tools::internal {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Result<std::vector<std::string>> split_workspace_path(std::string_view path, bool allow_root) {
  const std::string quoted = "'" + std::string(path) + "'";
  if (path.find('\0') != std::string_view::npos)
    return Status::invalid_argument("path " + quoted + " contains a NUL byte");
  if (!path.empty() && path.front() == '/')
    return Status::invalid_argument("path " + quoted +
                                    " is absolute; give a path relative to the workspace");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part == "..")
      return Status::invalid_argument("path " + quoted + " contains '..'; it must stay inside the "
                                      "workspace");
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = end + 1;
  }
  if (parts.empty() && !allow_root)
    return Status::invalid_argument("path " + quoted + " names no file");
  return parts;
}

std::string describe_open_error(int err, std::string_view path) {
  const std::string quoted = "'" + std::string(path) + "'";
  switch (err) {
    case ELOOP:
      return quoted + " is or passes through a symlink; symlinks are not followed";
    case ENOENT:
      return quoted + " does not exist";
    case ENOTDIR:
      return quoted + " is not a directory (or passes through something that is not)";
    case EISDIR:
      return quoted + " is a directory";
    case EACCES:
    case EPERM:
      return quoted + ": permission denied";
    default:
      return quoted + ": " + std::strerror(err);
  }
}

Result<ResolvedParent> resolve_parent(const std::string& workspace, std::string_view path,
                                      bool allow_root, bool create_dirs) {
  Result<std::vector<std::string>> parts = split_workspace_path(path, allow_root);
  if (!parts) return parts.status();
  if (workspace.empty()) return Status::invalid_argument("no workspace is configured");
  // The same directories the sandbox refuses (the host root, system directories, $HOME itself):
  // `cd / && mnemo run job.yaml` must not hand the file tools the whole machine.
  char real[PATH_MAX];
  if (!realpath(workspace.c_str(), real))
    return Status::io_error("the workspace '" + workspace + "': " + std::strerror(errno));
  MNEMO_RETURN_IF_ERROR(sandbox::check_workspace_path(real));
  UniqueFd dir(open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0)
    return Status::io_error("the workspace '" + workspace + "': " + std::strerror(errno));
  struct stat ws {};
  if (fstat(dir.get(), &ws) != 0)
    return Status::io_error("the workspace '" + workspace + "': " + std::strerror(errno));
  ResolvedParent out;
  out.owner_uid = ws.st_uid;
  out.owner_gid = ws.st_gid;
  std::string walked;
  const size_t n = parts->size();
  for (size_t i = 0; i + 1 < n; ++i) {
    const std::string& part = (*parts)[i];
    walked += (walked.empty() ? "" : "/") + part;
    int fd = openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create_dirs) {
      if (mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
        return Status::io_error(describe_open_error(errno, walked));
      fd = openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      // Root-made directories would be unwritable for the sandbox's uid.
      if (fd >= 0 && geteuid() == 0) (void)fchown(fd, out.owner_uid, out.owner_gid);
    }
    if (fd < 0) return Status::invalid_argument(describe_open_error(errno, walked));
    dir = UniqueFd(fd);
  }
  out.dir = std::move(dir);
  if (n > 0) out.name = parts->back();
  return out;
}

}  // namespace mnemo::tools::internal
