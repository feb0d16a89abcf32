#pragma once
// What isolation this machine supports, probed for real (a namespace is created, a cgroup made).
#include <sys/types.h>

#include <string>

namespace mnemo::sandbox {

enum class CgroupMode { kNone, kV1, kV2 };

struct SupportInfo {
  bool user_namespaces = false;
  std::string user_namespaces_detail;
  bool seccomp = false;
  bool pidfd = false;
  bool mount_setattr = false;
  bool running_as_root = false;
  CgroupMode cgroup = CgroupMode::kNone;
  std::string cgroup_detail;  // where the per-run cgroups go, or why there are none
};

SupportInfo probe_support(uid_t sandbox_uid);
// Human-readable report, one "name: value" line each, for `mnemo sandbox info`.
std::string format_support(const SupportInfo& info, uid_t sandbox_uid);

}  // namespace mnemo::sandbox
