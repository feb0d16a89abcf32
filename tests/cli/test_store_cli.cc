// mnemo store stats|verify|gc on a store written through the library, as a user would inspect it.
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "support/run_cli.h"
#include "support/tiny_model.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;
namespace fs = std::filesystem;
using namespace mnemo;

TEST_CASE("mnemo store stats, verify and gc report on a store with a snapshot", "[cli][store]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-store-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    auto store = memory::Store::open(dir.string(), {});
    REQUIRE(store);
    REQUIRE((*store)->create_session("s1", "acme"));
    const auto& m = test::tiny_model();
    auto tokens = test::tiny_tokens("sequence_337");
    auto seq = m.new_sequence();
    std::vector<float> logits(tokens.size() * m.config().vocab_size);
    REQUIRE(m.forward(seq, tokens, logits));
    memory::SnapshotSource src{&m, &seq, tokens, memory::AtRest::kExact};
    std::vector<memory::NewEvent> events{{"tool.result", "{\"ok\":true}"}};
    REQUIRE((*store)->commit_step("s1", events, &src));
  }
  std::string at = " --store " + shell_quote(dir.string());
  auto stats = run_cli("store stats --json" + at);
  REQUIRE(stats.status == 0);
  CHECK_THAT(stats.out, Catch::Contains("\"sessions\":1"));
  CHECK_THAT(stats.out, Catch::Contains("\"snapshots\":1"));
  auto verify = run_cli("store verify" + at);
  CHECK(verify.status == 0);
  auto gc = run_cli("store gc" + at);
  CHECK(gc.status == 0);
  auto again = run_cli("store verify" + at);
  CHECK(again.status == 0);
  auto missing = run_cli("store stats --store /nonexistent/store");
  CHECK(missing.status == 1);
  CHECK(missing.err == "mnemo: no store at /nonexistent/store\n");
  fs::remove_all(dir);
}
