#pragma once
// The sandbox's file system, as a list of steps the child replays below /newroot.
#include <string>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/sandbox/policy.h>

#include "child.h"

namespace mnemo::sandbox::internal {

// workspace is the resolved (realpath) host directory.
Result<std::vector<MountOp>> build_mount_plan(const Policy& policy, const std::string& workspace);

}  // namespace mnemo::sandbox::internal
