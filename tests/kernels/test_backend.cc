#include <mnemo/base/build_config.h>
#include <mnemo/kernels/backend.h>

#include <catch2/catch.hpp>

using namespace mnemo::kernels;

TEST_CASE("the CPU backend is listed last and always usable", "[kernels][backend]") {
  auto all = backends();
  REQUIRE(all.size() >= 2);
  CHECK(all.back().kind == DeviceKind::kCpu);
  CHECK(all.back().usable);
  auto chosen = select_backend("auto");
  REQUIRE(chosen);
  CHECK(chosen->name == "cpu");  // no accelerator kernels in this version
}

TEST_CASE("asking for a backend that is not built in fails with how to get it", "[kernels][backend]") {
  auto cuda = select_backend("cuda");
  REQUIRE_FALSE(cuda);
  if (!MNEMO_CUDA) CHECK(cuda.status().message().find("-DMNEMO_CUDA=ON") != std::string::npos);
  auto ascend = select_backend("ascend");
  REQUIRE_FALSE(ascend);
  auto unknown = select_backend("tpu");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.status().message() == "unknown backend 'tpu' (auto, cuda, ascend, cpu)");
}
