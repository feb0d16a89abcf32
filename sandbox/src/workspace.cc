#include <mnemo/sandbox/workspace.h>

#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <string_view>

namespace mnemo::sandbox {
namespace {

// Neither these nor anything inside them.
constexpr std::array<std::string_view, 12> kSystemTrees = {
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr"};
// These themselves (their insides may hold workspaces: /home/ada/project, /tmp/job).
constexpr std::array<std::string_view, 11> kTopLevel = {
    "/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/var", "/var/tmp"};

bool is_under(std::string_view path, std::string_view dir) {
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

std::string resolved(const char* path) {
  if (!path || !*path) return {};
  char buf[PATH_MAX];
  return realpath(path, buf) ? std::string(buf) : std::string();
}

}  // namespace

uid_t effective_sandbox_uid(uid_t sandbox_uid) { return geteuid() == 0 ? sandbox_uid : geteuid(); }

Status check_workspace_path(const std::string& real) {
  for (std::string_view dir : kSystemTrees) {
    if (is_under(real, dir)) {
      return Status::invalid_argument("sandbox: the workspace '" + real +
                                      "' is a system directory; give a project directory");
    }
  }
  for (std::string_view dir : kTopLevel) {
    if (real == dir) {
      return Status::invalid_argument("sandbox: the workspace cannot be " + real +
                                      " itself; give a directory inside it");
    }
  }
  const passwd* pw = getpwuid(geteuid());
  for (const std::string& home : {resolved(getenv("HOME")), resolved(pw ? pw->pw_dir : nullptr)}) {
    if (!home.empty() && real == home) {
      return Status::invalid_argument("sandbox: the workspace cannot be the home directory " +
                                      home + " itself; give a directory inside it");
    }
  }
  return Status::ok();
}

}  // namespace mnemo::sandbox
