#pragma once
// Detached mount trees made by the parent (as root) and attached in the sandbox with move_mount:
// the parent resolves the path with its own rights (so a 0700 parent directory is no obstacle), and
// an idmapped mount presents the workspace owner's files as the sandbox user's, so the sandbox
// reads and writes them while every file keeps its owner on disk (systemd-nspawn and LXD do the
// same).
#include <sys/types.h>

#include <string>

#include <mnemo/base/status.h>

namespace mnemo::sandbox::internal {

// An fd of a detached copy of `path`'s mount tree; with `map_owner`, idmapped so that the
// directory's owner (uid and gid) appears as sandbox_uid/sandbox_gid and files the sandbox creates
// belong on disk to that owner. Needs root; the error says when the kernel or file system cannot.
Result<int> open_tree_for_sandbox(const std::string& path, bool map_owner, uid_t sandbox_uid,
                                  gid_t sandbox_gid, bool read_only);

}  // namespace mnemo::sandbox::internal
