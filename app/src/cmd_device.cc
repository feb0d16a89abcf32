// `mnemo device info`: the CPU the kernels run on, what it supports, and the kernel path chosen for this
// process (once, at start-up; MNEMO_ISA=scalar forces the scalar fallback).
#include <mnemo/kernels/backend.h>
#include <mnemo/kernels/cpu_features.h>
#include <mnemo/kernels/thread_pool.h>

#include <iostream>
#include <string>

#include "commands.h"

namespace mnemo::app {
namespace {

int run_device_info(bool json) {
  const kernels::CpuFeatures& f = kernels::cpu_features();
  const kernels::Isa isa = kernels::active_isa();
  struct Flag {
    const char* name;
    bool on;
  };
  const Flag flags[] = {{"avx2", f.avx2},         {"fma", f.fma},           {"f16c", f.f16c},
                        {"avx512f", f.avx512f},   {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl},
                        {"avx512_bf16", f.avx512_bf16}, {"amx_tile", f.amx_tile},
                        {"os_ymm", f.os_ymm},     {"os_zmm", f.os_zmm}};
  if (json) {
    std::cout << "{\"device\":\"cpu\",\"vendor\":\"" << f.vendor << "\",\"brand\":\"" << f.brand
              << "\",\"threads\":" << kernels::thread_count() << ",\"kernels\":\"" << kernels::isa_name(isa)
              << "\",\"features\":{";
    for (size_t i = 0; i < std::size(flags); ++i) {
      std::cout << (i ? "," : "") << '"' << flags[i].name << "\":" << (flags[i].on ? "true" : "false");
    }
    std::cout << "},\"backends\":[";
    bool first = true;
    for (const kernels::BackendInfo& b : kernels::backends()) {
      std::cout << (first ? "" : ",") << "{\"name\":\"" << b.name << "\",\"compiled\":" << (b.compiled ? "true" : "false")
                << ",\"usable\":" << (b.usable ? "true" : "false") << "}";
      first = false;
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << "device: cpu (" << (f.brand.empty() ? f.vendor : f.brand) << ")\n"
            << "threads: " << kernels::thread_count() << "\n"
            << "kernels: " << kernels::isa_name(isa) << "\n"
            << "features:";
  for (const Flag& flag : flags) {
    if (flag.on) std::cout << ' ' << flag.name;
  }
  std::cout << "\nbackends (in order of preference):\n";
  for (const kernels::BackendInfo& b : kernels::backends()) {
    std::cout << "  " << b.name << (b.usable ? "  usable: " : "  unusable: ") << b.detail << "\n";
  }
  if (isa == kernels::Isa::kScalar && kernels::isa_supported(kernels::Isa::kAvx2)) {
    std::cout << "note: AVX2 is available but MNEMO_ISA=scalar chose the scalar kernels\n";
  }
  return 0;
}

}  // namespace

void register_device_command(CLI::App& app, CommandContext& ctx) {
  auto* device = app.add_subcommand("device", "The compute devices and the kernels chosen for them");
  device->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  auto* info = device->add_subcommand("info", "CPU features and the kernel path in use");
  info->add_flag("--json", *json, "one JSON object");
  info->callback([json, &ctx] { ctx.exit_code = run_device_info(*json); });
}

}  // namespace mnemo::app
