#pragma once
// The instruction sets the CPU kernels may use: detected once (cpuid, and xgetbv for the OS's register
// state) and one path chosen for the whole process, so a run never mixes paths.
#include <cstdint>
#include <string>
#include <string_view>

namespace mnemo::kernels {

// No AVX-512 path: on the test machine its GEMM (two tokens per zmm, same bits) ran 10% slower than
// AVX2's, its 512-bit FMA throughput being no higher.
enum class Isa : uint8_t { kScalar, kAvx2 };

struct CpuFeatures {
  std::string vendor, brand;
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_bf16 = false, amx_tile = false;
  bool os_ymm = false, os_zmm = false;  // the OS saves the 256-bit / 512-bit registers
};

const CpuFeatures& cpu_features();

// The best path the CPU and the build support; MNEMO_ISA=scalar forces the fallback (tests, comparisons).
Isa active_isa();
std::string_view isa_name(Isa isa);
// Whether this CPU can run `isa`'s kernels.
bool isa_supported(Isa isa);

}  // namespace mnemo::kernels
