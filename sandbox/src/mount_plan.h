#pragma once
// The sandbox's file system, as a list of steps the child replays below /newroot.
#include <string>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/sandbox/policy.h>

#include "child.h"

namespace mnemo::sandbox::internal {

// workspace is the resolved (realpath) host directory. As root, binds of the workspace and the
// extra read-only paths are detached trees opened here (the workspace idmapped to sandbox_uid);
// their fds are in the ops' tree_fd and the caller closes them once the child has started.
Result<std::vector<MountOp>> build_mount_plan(const Policy& policy, const std::string& workspace,
                                              uid_t sandbox_uid);

}  // namespace mnemo::sandbox::internal
