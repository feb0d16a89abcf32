#include <catch2/catch.hpp>

#include "support/run_cli.h"
#include "support/test_paths.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;

TEST_CASE("mnemo tokenize writes ids per line and an error line for a bad one", "[cli]") {
  std::string tok = "--tokenizer " + shell_quote(mnemo::test::v3_tokenizer_path());
  auto r = run_cli("tokenize " + tok,
                   "{\"text\": \"Hello, world!\"}\nnot json\n{\"text\": \"<｜User｜>\"}\n{\"other\": 1}\n");
  REQUIRE(r.status == 0);
  CHECK(r.out ==
        "{\"ids\": [19923, 14, 2058, 3]}\n"
        "{\"error\": \"line 2: invalid JSON: The JSON document has an improper structure: missing or "
        "superfluous commas, braces, missing keys, etc.\"}\n"
        "{\"ids\": [128803]}\n"
        "{\"error\": \"line 4: expected {\\\"text\\\": \\\"...\\\"}\"}\n");
}

TEST_CASE("mnemo tokenize --decode turns ids back into text", "[cli]") {
  std::string tok = "--tokenizer " + shell_quote(mnemo::test::v3_tokenizer_path());
  auto r = run_cli("tokenize --decode " + tok, "{\"ids\": [19923, 14, 2058, 3]}\n{\"ids\": [1, -4]}\n");
  REQUIRE(r.status == 0);
  CHECK(r.out == "{\"text\": \"Hello, world!\"}\n{\"error\": \"line 2: ids[1] is not a token id\"}\n");
}

TEST_CASE("mnemo tokenize without a tokenizer fails with one line naming what to pass", "[cli]") {
  auto r = run_cli("tokenize", "", "MNEMO_HOME=/nonexistent/mnemo-home");
  CHECK(r.status == 1);
  CHECK(r.err.find("pass --tokenizer FILE or --model DIR") != std::string::npos);
  CHECK(r.err.find('\n') == r.err.size() - 1);
}

TEST_CASE("mnemo --version and --help work", "[cli]") {
  auto v = run_cli("--version");
  CHECK(v.status == 0);
  CHECK(v.out.rfind("mnemo ", 0) == 0);
  auto h = run_cli("tokenize --help");
  CHECK(h.status == 0);
  CHECK(h.out.find("--decode") != std::string::npos);
  auto bad = run_cli("no-such-command");
  CHECK(bad.status != 0);
}
