#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace mnemo::sandbox::internal {
namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

Status write_text(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error("cgroup: opening " + path + ": " + std::strerror(errno));
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return Status::io_error("cgroup: writing " + path + ": " + std::strerror(err));
  }
  return Status::ok();
}

// Our own cgroup path in a hierarchy: "0::/x" for v2, "N:memory:/x" (controller listed) for v1.
std::string own_cgroup(const std::string& controller) {
  std::istringstream in(read_text("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string list = line.substr(a + 1, b - a - 1);
    bool match = controller.empty() ? list.empty() : false;
    std::istringstream names(list);
    for (std::string name; std::getline(names, name, ',');) match |= name == controller;
    if (match) return line.substr(b + 1);
  }
  return {};
}

// A directory we may create per-run cgroups in: make and remove a probe child.
bool can_create_under(const std::string& dir) {
  static std::atomic<int> counter{0};
  std::string probe =
      dir + "/mnemo-probe-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  if (mkdir(probe.c_str(), 0755) != 0) return false;
  rmdir(probe.c_str());
  return true;
}

// Per-run cgroups of mnemo processes that died before removing them (SIGKILL): rmdir the empty
// ones.
void remove_stale(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = "mnemo-sandbox-";
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
    if (owner > 0 && kill(owner, 0) != 0 && errno == ESRCH) rmdir((dir + "/" + name).c_str());
  }
  closedir(d);
}

CgroupLocation probe_location() {
  CgroupLocation loc;
  for (std::string mount : {std::string(kRoot), std::string(kRoot) + "/unified"}) {
    if (!exists(mount + "/cgroup.controllers")) continue;
    std::string dir = mount + own_cgroup("");
    std::string enabled = read_text(dir + "/cgroup.subtree_control");
    if (enabled.find("memory") == std::string::npos || enabled.find("pids") == std::string::npos)
      continue;
    if (!can_create_under(dir)) continue;
    loc.mode = CgroupMode::kV2;
    loc.memory_dir = dir;
    remove_stale(dir);
    loc.detail = "v2 at " + dir + " (memory.max, pids.max)";
    return loc;
  }
  std::string memory = std::string(kRoot) + "/memory", pids = std::string(kRoot) + "/pids";
  if (exists(memory + "/memory.limit_in_bytes") && exists(pids + "/cgroup.procs")) {
    std::string mem_dir = memory + own_cgroup("memory"), pids_dir = pids + own_cgroup("pids");
    while (!mem_dir.empty() && mem_dir.back() == '/') mem_dir.pop_back();
    while (!pids_dir.empty() && pids_dir.back() == '/') pids_dir.pop_back();
    if (can_create_under(mem_dir) && can_create_under(pids_dir)) {
      loc.mode = CgroupMode::kV1;
      loc.memory_dir = mem_dir;
      loc.pids_dir = pids_dir;
      remove_stale(mem_dir);
      remove_stale(pids_dir);
      loc.detail = "v1 at " + mem_dir + " and " + pids_dir + " (memory.limit_in_bytes, pids.max)";
      return loc;
    }
  }
  loc.detail =
      "none writable: memory falls back to RLIMIT_AS and processes to RLIMIT_NPROC (counted per "
      "sandbox user namespace)";
  return loc;
}

}  // namespace

const CgroupLocation& cgroup_location() {
  static const CgroupLocation loc = probe_location();
  return loc;
}

Result<std::unique_ptr<Cgroup>> Cgroup::create(const Limits& limits) {
  const CgroupLocation& loc = cgroup_location();
  if (loc.mode == CgroupMode::kNone) return std::unique_ptr<Cgroup>();
  static std::atomic<uint64_t> counter{0};
  std::string name = "/mnemo-sandbox-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::unique_ptr<Cgroup> cg(new Cgroup());
  cg->mode_ = loc.mode;
  cg->memory_path_ = loc.memory_dir + name;
  if (mkdir(cg->memory_path_.c_str(), 0755) != 0) {
    return Status::io_error("cgroup: mkdir " + cg->memory_path_ + ": " + std::strerror(errno));
  }
  const std::string mem = std::to_string(limits.memory_bytes), pids = std::to_string(limits.pids);
  if (loc.mode == CgroupMode::kV2) {
    cg->pids_path_ = cg->memory_path_;
    MNEMO_RETURN_IF_ERROR(write_text(cg->memory_path_ + "/memory.max", mem));
    if (exists(cg->memory_path_ + "/memory.swap.max")) {
      MNEMO_RETURN_IF_ERROR(write_text(cg->memory_path_ + "/memory.swap.max", "0"));
    }
    MNEMO_RETURN_IF_ERROR(write_text(cg->memory_path_ + "/pids.max", pids));
    return cg;
  }
  MNEMO_RETURN_IF_ERROR(write_text(cg->memory_path_ + "/memory.limit_in_bytes", mem));
  if (exists(cg->memory_path_ + "/memory.memsw.limit_in_bytes")) {
    MNEMO_RETURN_IF_ERROR(write_text(cg->memory_path_ + "/memory.memsw.limit_in_bytes", mem));
  }
  cg->pids_path_ = loc.pids_dir + name;
  if (mkdir(cg->pids_path_.c_str(), 0755) != 0) {
    std::string path = cg->pids_path_;
    cg->pids_path_.clear();
    return Status::io_error("cgroup: mkdir " + path + ": " + std::strerror(errno));
  }
  MNEMO_RETURN_IF_ERROR(write_text(cg->pids_path_ + "/pids.max", pids));
  return cg;
}

Status Cgroup::attach(pid_t pid) {
  MNEMO_RETURN_IF_ERROR(write_text(memory_path_ + "/cgroup.procs", std::to_string(pid)));
  if (mode_ == CgroupMode::kV1) {
    MNEMO_RETURN_IF_ERROR(write_text(pids_path_ + "/cgroup.procs", std::to_string(pid)));
  }
  return Status::ok();
}

bool Cgroup::oom_killed() const {
  std::string file = mode_ == CgroupMode::kV2 ? "/memory.events" : "/memory.oom_control";
  std::istringstream in(read_text(memory_path_ + file));
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill" && value > 0) return true;
  }
  return false;
}

Cgroup::~Cgroup() {
  // The processes are reaped before this runs, but the kernel may take a moment to let go.
  for (const std::string& path : {memory_path_, pids_path_}) {
    if (path.empty() || (mode_ == CgroupMode::kV2 && &path == &pids_path_)) continue;
    for (int attempt = 0; attempt < 50 && rmdir(path.c_str()) != 0 && errno == EBUSY; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

}  // namespace mnemo::sandbox::internal
