#include <mnemo/base/build_config.h>
#include <mnemo/kernels/backend.h>
#include <mnemo/kernels/cpu_features.h>
#include <mnemo/kernels/thread_pool.h>

namespace mnemo::kernels {

std::vector<BackendInfo> backends() {
  std::vector<BackendInfo> out;
  out.push_back({DeviceKind::kCuda, "cuda", MNEMO_CUDA == 1, false,
                 MNEMO_CUDA ? "built with the CUDA toolkit; this version has no CUDA kernels yet"
                            : "not compiled in (configure with -DMNEMO_CUDA=ON on a machine with the CUDA toolkit)"});
  out.push_back({DeviceKind::kAscend, "ascend", MNEMO_ASCEND == 1, false,
                 MNEMO_ASCEND ? "built with CANN; this version has no Ascend kernels yet"
                              : "not compiled in (configure with -DMNEMO_ASCEND=ON and CANN)"});
  const CpuFeatures& f = cpu_features();
  out.push_back({DeviceKind::kCpu, "cpu", true, true,
                 (f.brand.empty() ? f.vendor : f.brand) + ", " + std::to_string(thread_count()) + " threads, " +
                     std::string(isa_name(active_isa())) + " kernels"});
  return out;
}

Result<BackendInfo> select_backend(std::string_view name) {
  std::string known;
  for (BackendInfo& b : backends()) {
    if (name == "auto" && b.usable) return b;
    if (b.name == name) {
      if (b.usable) return b;
      return Status::unsupported("backend " + std::string(name) + ": " + b.detail);
    }
    known += (known.empty() ? "" : ", ") + std::string(b.name);
  }
  return Status::invalid_argument("unknown backend '" + std::string(name) + "' (auto, " + known + ")");
}

}  // namespace mnemo::kernels
