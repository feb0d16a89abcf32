#pragma once
// Paths inside a workspace, resolved one component at a time from a directory fd with O_NOFOLLOW:
// no absolute path, no "..", no symlink anywhere on the way, so nothing outside can be reached.
#include <mnemo/base/status.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace mnemo::tools::internal {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release();

 private:
  int fd_ = -1;
};

// The relative path's components; "." and empty ones dropped. Absolute paths, "..", NUL bytes and
// an empty path (unless allow_root) are errors naming the path.
Result<std::vector<std::string>> split_workspace_path(std::string_view path, bool allow_root);

struct ResolvedParent {
  UniqueFd dir;      // the directory that holds the last component (or the workspace itself)
  std::string name;  // the last component; empty when the path is the workspace root
  uid_t owner_uid = 0;  // the workspace's owner, for files created as root
  gid_t owner_gid = 0;
};

// Opens the workspace and walks to the parent of `path`. With create_dirs, missing directories are
// made (owned like the workspace).
Result<ResolvedParent> resolve_parent(const std::string& workspace, std::string_view path,
                                      bool allow_root, bool create_dirs);

// An errno from openat as a message for the model ("'a/b' is a symlink; symlinks are not followed").
std::string describe_open_error(int err, std::string_view path);

}  // namespace mnemo::tools::internal
