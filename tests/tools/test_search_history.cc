#include <mnemo/base/json_text.h>
#include <mnemo/memory/store.h>
#include <mnemo/tools/builtin_tools.h>

#include <catch2/catch.hpp>

#include "tools/tools_test_util.h"

using namespace mnemo;
using namespace mnemo::tools;

namespace {

struct History {
  test::TempTree dir{"store"};
  std::unique_ptr<memory::Store> store;
  ToolRegistry reg;
  ToolContext ctx;
  uint64_t needle_seq = 0;

  History() {
    auto opened = memory::Store::open(dir.path.string());
    REQUIRE(opened);
    store = std::move(*opened);
    REQUIRE(store->create_session("s1", "tenant"));
    REQUIRE(store->create_session("other", "tenant"));
    REQUIRE(add_builtin_tools(reg));
    ctx = test::context_for(dir.path);
    ctx.store = store.get();
    // 120 steps of tool output; step 7 printed the build id, far behind the recent context.
    for (int step = 0; step < 120; ++step) {
      std::string output = "compiling unit " + std::to_string(step) + "\nok\n";
      if (step == 7) output = std::string(5000, '.') + "\nBuild-ID: 4f2a-99c1\nWarning: Deprecated API\n";
      std::vector<memory::NewEvent> evs = {
          {"tool.intent", R"({"name": "shell", "arguments": "{\"command\": \"make\"}"})"},
          {"tool.result", R"({"name": "shell", "content": )" + json::quote(output) + "}"}};
      auto seqs = store->append_events("s1", evs);
      REQUIRE(seqs);
      if (step == 7) needle_seq = (*seqs)[1];
    }
    REQUIRE(store->append_events("other", std::vector<memory::NewEvent>{
                                              {"tool.result", R"({"content": "Build-ID: other"})"}}));
    // The search's own intent carries the query; it must not count as a match.
    REQUIRE(store->append_events("s1", std::vector<memory::NewEvent>{
                                           {"tool.intent", R"({"name": "search_history", "arguments": "Build-ID"})"}}));
  }
  ToolResult search(const std::string& args) { return test::run_call(reg, ctx, "search_history", args); }
};

}  // namespace

TEST_CASE("search_history finds a tool output from 100 steps ago with its seq") {
  History h;
  ToolResult r = h.search(R"({"query": "Build-ID"})");
  REQUIRE(r.ok);
  CHECK(r.content.rfind("1 match\n--- seq " + std::to_string(h.needle_seq) + " (tool.result)\n", 0) == 0);
  CHECK(r.content.find("Build-ID: 4f2a-99c1\nWarning") != std::string::npos);
  CHECK(r.content.find("other") == std::string::npos);
  // The excerpt is a window around the match, not the 5000-byte output.
  CHECK(r.content.size() < 600);
}

TEST_CASE("search_history supports regular expressions, case folding and a result limit") {
  History h;
  ToolResult r = h.search(R"({"query": "build-id: [0-9a-f]{4}-[0-9a-f]{4}", "regex": true, "ignore_case": true})");
  CHECK(r.content.find("--- seq " + std::to_string(h.needle_seq)) != std::string::npos);
  CHECK(h.search(R"({"query": "build-id"})").content == "no matches for build-id");
  CHECK(h.search(R"({"query": "build-id", "ignore_case": true})").content.rfind("1 match", 0) == 0);

  r = h.search(R"({"query": "compiling unit \\d+", "regex": true, "max_results": 3})");
  CHECK(r.content.rfind("119 matches, the 3 most recent shown\n", 0) == 0);
  CHECK(r.content.find("compiling unit 119") != std::string::npos);
  CHECK(r.content.find("compiling unit 116") == std::string::npos);

  ToolResult bad = h.search(R"({"query": "([a-z", "regex": true})");
  CHECK_FALSE(bad.ok);
  CHECK(bad.content.find("arguments.query is not a valid regular expression") != std::string::npos);
  ToolResult limit = h.search(R"({"query": "x", "max_results": 500})");
  CHECK(limit.content == "search_history: arguments.max_results: must be <= 50");
}

TEST_CASE("search_history without a store says so") {
  ToolRegistry reg;
  REQUIRE(add_builtin_tools(reg));
  test::TempTree ws("nostore");
  ToolContext ctx = test::context_for(ws.path);
  ToolResult r = test::run_call(reg, ctx, "search_history", R"({"query": "x"})");
  CHECK_FALSE(r.ok);
  CHECK(r.content == "search_history: this session has no store");
}
