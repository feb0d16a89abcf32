#pragma once
// A workspace must be writable by the sandbox's host uid; as root, mnemo hands it over explicitly.
#include <mnemo/base/status.h>
#include <sys/types.h>

#include <string>

namespace mnemo::sandbox {

// The host uid the sandbox runs as: `sandbox_uid` when this process is root, else our own uid.
uid_t effective_sandbox_uid(uid_t sandbox_uid);

// Makes `dir` (recursively, without following symlinks or crossing mounts) owned by the sandbox's
// host uid when running as root; a no-op otherwise. Refuses "/".
Status adopt_workspace(const std::string& dir, uid_t sandbox_uid);

}  // namespace mnemo::sandbox
