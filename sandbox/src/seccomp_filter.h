#pragma once
// The seccomp-bpf program every sandboxed process runs under, compiled once with libseccomp.
#include <linux/filter.h>

#include <vector>

#include <mnemo/base/status.h>

namespace mnemo::sandbox::internal {

// The filter as raw BPF, so the child can load it with one prctl and no allocation.
Result<const std::vector<sock_filter>*> seccomp_program();

}  // namespace mnemo::sandbox::internal
