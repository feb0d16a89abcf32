#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "support/npy.h"
#include "support/run_cli.h"
#include "support/test_paths.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;
namespace fs = std::filesystem;

namespace {

std::vector<float> read_f32(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<float> v(fs::file_size(p) / sizeof(float));
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

}  // namespace

TEST_CASE("mnemo forward writes the reference's prefill-then-decode logits and MTP drafts", "[cli]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-forward-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string tiny = mnemo::test::data_path("deepseek_v4_tiny");
  // The first 80 ids of scenario (b): 37 prefilled, 43 decoded one at a time.
  std::ifstream tokens(tiny + "/tokens.json");
  std::string json((std::istreambuf_iterator<char>(tokens)), {});
  size_t open = json.find('[', json.find("\"sequence_337\""));
  std::string ids = "[";
  size_t at = open + 1;
  for (int i = 0; i < 80; ++i) {
    size_t end = json.find_first_of(",]", at);
    ids += (i ? "," : "") + json.substr(at, end - at);
    at = end + 1;
  }
  ids += "]";
  std::ofstream(dir / "ids.json") << ids;
  auto r = run_cli("forward --model " + shell_quote(tiny) + " --ids " + shell_quote((dir / "ids.json").string()) +
                   " --prefill 37 --out " + shell_quote((dir / "logits.f32").string()) + " --mtp-out " +
                   shell_quote((dir / "mtp.f32").string()));
  REQUIRE(r.status == 0);
  auto logits = read_f32(dir / "logits.f32");
  REQUIRE(logits.size() == 80 * 4096);
  auto want = mnemo::test::load_npy(tiny + "/decode_logits.npy");  // row i = position 37 + i
  float max_abs = 0;
  for (int i = 37; i < 80; ++i) {
    for (int c = 0; c < 4096; ++c) max_abs = std::max(max_abs, std::fabs(logits[i * 4096 + c] - want.row(i - 37)[c]));
  }
  CHECK(max_abs <= 1e-3f);
  // MTP drafts for positions 0..78: the reference's rows at positions 0, 16, 32, 48 and 64 (the
  // first five of margins.json's mtp_sub_positions; scenario (a) starts with the same 80 tokens, and
  // position i depends on nothing after it).
  auto mtp = read_f32(dir / "mtp.f32");
  REQUIRE(mtp.size() == 79 * 4096);
  auto want_mtp = mnemo::test::load_npy(tiny + "/mtp_logits_sub.npy");
  float mtp_max_abs = 0;
  for (int j = 0; j < 5; ++j) {
    for (int c = 0; c < 4096; ++c)
      mtp_max_abs = std::max(mtp_max_abs, std::fabs(mtp[(16 * j) * 4096 + c] - want_mtp.row(j)[c]));
  }
  INFO("MTP max |dlogit| " << mtp_max_abs);
  CHECK(mtp_max_abs <= 1e-3f);

  auto bad = run_cli("forward --model " + shell_quote(tiny) + " --ids /nonexistent.json --out " +
                     shell_quote((dir / "x.f32").string()));
  CHECK(bad.status == 1);
  CHECK(bad.err.rfind("mnemo: /nonexistent.json", 0) == 0);
  fs::remove_all(dir);
}
