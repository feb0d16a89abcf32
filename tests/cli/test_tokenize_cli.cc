#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/run_cli.h"
#include "support/test_paths.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;

TEST_CASE("mnemo tokenize writes ids per line and an error line for a bad one", "[cli]") {
  std::string tok = "--tokenizer " + shell_quote(mnemo::test::v3_tokenizer_path());
  auto r = run_cli("tokenize " + tok,
                   "{\"text\": \"Hello, world!\"}\nnot json\n{\"text\": \"<｜User｜>\"}\n{\"other\": 1}\n");
  REQUIRE(r.status == 0);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1) {
    lines.push_back(r.out.substr(at, nl - at));
  }
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "{\"ids\": [19923, 14, 2058, 3]}");
  CHECK(lines[1].rfind("{\"error\": \"line 2: invalid JSON: ", 0) == 0);
  CHECK(lines[2] == "{\"ids\": [128803]}");
  CHECK(lines[3] == "{\"error\": \"line 4: expected {\\\"text\\\": \\\"...\\\"}\"}");
}

TEST_CASE("mnemo tokenize --decode turns ids back into text", "[cli]") {
  std::string tok = "--tokenizer " + shell_quote(mnemo::test::v3_tokenizer_path());
  auto r = run_cli("tokenize --decode " + tok, "{\"ids\": [19923, 14, 2058, 3]}\n{\"ids\": [1, -4]}\n");
  REQUIRE(r.status == 0);
  CHECK(r.out == "{\"text\": \"Hello, world!\"}\n{\"error\": \"line 2: ids[1] is not a token id\"}\n");
}

TEST_CASE("mnemo tokenize with a missing tokenizer fails with one line naming it", "[cli]") {
  auto r = run_cli("tokenize --tokenizer /nonexistent/tokenizer.json", "{\"text\": \"x\"}\n");
  CHECK(r.status == 1);
  CHECK(r.err == "mnemo: tokenizer file /nonexistent/tokenizer.json does not exist\n");
  auto m = run_cli("tokenize --model /nonexistent", "{\"text\": \"x\"}\n");
  CHECK(m.status == 1);
  CHECK(m.err == "mnemo: model directory /nonexistent has no tokenizer.json\n");
}

TEST_CASE("mnemo --version and --help work", "[cli]") {
  auto v = run_cli("--version");
  CHECK(v.status == 0);
  CHECK(v.out.rfind("mnemo ", 0) == 0);
  // It names the kernels that run, and claims no CUDA kernels (there are none yet).
  CHECK(v.out.find("CPU kernels") != std::string::npos);
  CHECK(v.out.find("(CUDA)") == std::string::npos);
  auto bare = run_cli("");
  CHECK(bare.status == 0);
  CHECK(bare.out.find("Subcommands:") != std::string::npos);
  auto h = run_cli("tokenize --help");
  CHECK(h.status == 0);
  CHECK(h.out.find("--decode") != std::string::npos);
  auto bad = run_cli("no-such-command");
  CHECK(bad.status != 0);
}
