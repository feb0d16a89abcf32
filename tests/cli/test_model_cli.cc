#include <simdjson.h>

#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "support/run_cli.h"
#include "support/test_paths.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;
namespace fs = std::filesystem;

namespace {

std::string config_arg(const std::string& name) {
  return "--config " + shell_quote(mnemo::test::data_path("configs/" + name));
}

fs::path temp_dir(const std::string& name) {
  fs::path d =
      fs::temp_directory_path() / ("mnemo-model-cli-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("mnemo model info prints the spec's KV bytes per token for Flash and Pro", "[cli]") {
  auto flash = run_cli("model info " + config_arg("v4_flash_config.json"));
  REQUIRE(flash.status == 0);
  CHECK_THAT(flash.out, Catch::Contains("bytes/token: bf16 6880, serving 3514.25"));
  CHECK_THAT(flash.out, Catch::Contains("layers: 43 (window 2, csa 21, hca 20) + 1 mtp"));
  CHECK_THAT(flash.out, Catch::Contains("total 284.33B"));
  CHECK_THAT(flash.out, Catch::Contains("active 13.27B"));
  auto pro = run_cli("model info " + config_arg("v4_pro_config.json"));
  REQUIRE(pro.status == 0);
  CHECK_THAT(pro.out, Catch::Contains("bytes/token: bf16 9848, serving 5031.4375"));
  CHECK_THAT(pro.out, Catch::Contains("layers: 61 (window 0, csa 30, hca 31) + 1 mtp"));
}

TEST_CASE("mnemo model info --json gives per-kind figures at the requested context", "[cli]") {
  auto r = run_cli("model info --json --context 1024 " + config_arg("v4_flash_config.json"));
  REQUIRE(r.status == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(!parser.parse(r.out).get(doc));
  CHECK(doc["kv"]["bf16_bytes_per_token"].get_int64().value() == 6880);
  CHECK(doc["kv"]["serving_bytes_per_token"].get_double().value() == 3514.25);
  CHECK(doc["kv"]["context"].get_int64().value() == 1024);
  auto csa = doc["kv"]["kinds"].at(1);
  CHECK(csa["kind"].get_string().value() == "csa");
  CHECK(csa["layers"].get_int64().value() == 21);
  CHECK(csa["bf16_bytes_at_context"].get_int64().value() == 21 * 256 * 1280);
  CHECK(doc["kv"]["mtp"]["layers"].get_int64().value() == 1);
  CHECK(doc["params"]["total"].get_int64().value() == 284334567511);
  CHECK(doc["layers"]["hca"].get_int64().value() == 20);
}

TEST_CASE("mnemo model info checks a model directory's weights against its config", "[cli]") {
  auto r = run_cli("model info --model " + shell_quote(mnemo::test::data_path("deepseek_v4_tiny")));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("weights: bf16, 525 tensors"));
  CHECK_THAT(r.out, Catch::Contains("matches config.json"));

  fs::path dir = temp_dir("bad");
  fs::create_directories(dir);
  std::ifstream in(mnemo::test::data_path("configs/golden_tiny_config.json"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("\"o_groups\": 2"), 13, "\"o_groups\": 3");
  std::ofstream(dir / "config.json") << text;
  auto bad = run_cli("model info --model " + shell_quote(dir.string()));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("'o_groups' (3) must divide num_attention_heads (8)"));
  CHECK_THAT(bad.err, Catch::Contains("config.json"));
  fs::remove_all(dir);

  auto both = run_cli("model info --model x " + config_arg("v4_pro_config.json"));
  CHECK(both.status == 1);
  CHECK_THAT(both.err, Catch::Contains("not both"));
}

TEST_CASE("mnemo model init writes a tiny model that tokenize and model info accept", "[cli]") {
  fs::path dir = temp_dir("tiny");
  auto r = run_cli("model init --preset tiny --seed 3 --out " + shell_quote(dir.string()));
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("preset tiny"));
  auto info = run_cli("model info --model " + shell_quote(dir.string()));
  REQUIRE(info.status == 0);
  CHECK_THAT(info.out, Catch::Contains("matches config.json"));
  auto tok = run_cli("tokenize --model " + shell_quote(dir.string()),
                     "{\"text\": \"<think>Hello</think>\"}\n");
  REQUIRE(tok.status == 0);
  CHECK(tok.out == "{\"ids\": [128821, 19923, 128822]}\n");
  auto again = run_cli("model init --preset tiny --out " + shell_quote(dir.string()));
  CHECK(again.status == 1);
  CHECK_THAT(again.err, Catch::Contains("--force"));
  auto bad = run_cli("model init --preset huge --out " + shell_quote(dir.string()));
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Catch::Contains("unknown preset 'huge'"));
  fs::remove_all(dir);
}

TEST_CASE("a command needing a model creates the default one once under MNEMO_HOME", "[cli]") {
  fs::path home = temp_dir("home");
  std::string env = "MNEMO_HOME=" + shell_quote(home.string());
  auto first = run_cli("model info", "", env);
  REQUIRE(first.status == 0);
  CHECK_THAT(first.err, Catch::Contains("creating the default model"));
  CHECK(fs::exists(home / "models/tiny/model.safetensors"));
  auto second = run_cli("model info --json", "", env);
  REQUIRE(second.status == 0);
  CHECK(second.err.empty());
  CHECK_THAT(second.out, Catch::Contains("\"main\": 6"));
  // mnemo tokenize with no tokenizer uses the default model's V4 tokenizer.
  auto tok = run_cli("tokenize", "{\"text\": \"<think>hi\"}\n", env);
  REQUIRE(tok.status == 0);
  CHECK(tok.out.rfind("{\"ids\": [128821, ", 0) == 0);
  fs::remove_all(home);
}
