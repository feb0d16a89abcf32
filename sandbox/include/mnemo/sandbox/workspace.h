#pragma once
// The workspace a sandboxed command works in: which host directories may be one, and (when mnemo
// runs as root) how the sandbox's host uid gets to write it without any change of owner.
#include <mnemo/base/status.h>
#include <sys/types.h>

#include <string>

namespace mnemo::sandbox {

// The host uid a sandbox runs as: `sandbox_uid` when this process is root, else our own uid.
uid_t effective_sandbox_uid(uid_t sandbox_uid);

// Refuses, by the resolved path `real`, what must never be a workspace: the host root, system
// directories (/etc, /usr, /bin, /boot, /dev, /proc, /sys, /lib*, and their insides), the top-level
// directories that hold other users' data (/home, /root, /var, /tmp, ...) and the home directory
// of the user running mnemo itself. The error names the path and why.
Status check_workspace_path(const std::string& real);

}  // namespace mnemo::sandbox
