#pragma once
// The compute backends, listed in ONE ordered function (DESIGN.md, "Engine"): preferred first, the CPU
// last and always present. A backend that was not compiled in is listed too, so asking for it fails with
// a message that says how to get it.
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/base/status.h>

namespace mnemo::kernels {

enum class DeviceKind : uint8_t { kCuda, kAscend, kCpu };

struct BackendInfo {
  DeviceKind kind = DeviceKind::kCpu;
  std::string_view name;  // "cuda", "ascend", "cpu"
  bool compiled = false;  // built into this binary
  bool usable = false;    // compiled, with kernels, and a device present
  std::string detail;     // the device, or why it cannot be used
};

std::vector<BackendInfo> backends();

// "auto" (the first usable backend) or a backend's name; an error naming the reason when it is unusable.
Result<BackendInfo> select_backend(std::string_view name);

}  // namespace mnemo::kernels
