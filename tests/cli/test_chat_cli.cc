#include <catch2/catch.hpp>

#include "support/run_cli.h"
#include "support/test_paths.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;

TEST_CASE("mnemo chat render writes a prompt line per input and an error line for a bad one",
          "[cli]") {
  auto r = run_cli("chat render --codec v4",
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                   "\"thinking_mode\": \"thinking\", \"reasoning_effort\": null, "
                   "\"drop_thinking\": true}\n"
                   "\n"
                   "{\"messages\": [{\"role\": \"foo\", \"content\": \"x\"}]}\n"
                   "not json\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                   "\"reasoning_effort\": \"low\"}\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"Bye\"}]}\n");
  REQUIRE(r.status == 0);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::string> out;
  while (std::getline(lines, line)) out.push_back(line);
  REQUIRE(out.size() == 5);
  CHECK(out[0] == "{\"rendered\": \"<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\"}");
  CHECK(out[1] ==
        "{\"error\": \"line 3: messages[0].role: unknown role 'foo' (known: system, user, "
        "assistant, tool, latest_reminder)\"}");
  CHECK(out[2].rfind("{\"error\": \"line 4: invalid JSON: ", 0) == 0);
  CHECK(out[3].rfind("{\"error\": \"line 5: reasoning_effort: 'low'", 0) == 0);
  CHECK(out[4] ==
        "{\"rendered\": \"<｜begin▁of▁sentence｜><｜User｜>Bye<｜Assistant｜></think>\"}");
}

TEST_CASE("mnemo chat render adds token ids with a tokenizer", "[cli]") {
  std::string tok = "--tokenizer " + shell_quote(mnemo::test::v3_tokenizer_path());
  auto v3 = run_cli("chat render --codec v3 " + tok,
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], "
                    "\"add_generation_prompt\": true}\n");
  REQUIRE(v3.status == 0);
  CHECK(v3.out ==
        "{\"rendered\": \"<｜begin▁of▁sentence｜><｜User｜>Hello!<｜Assistant｜>\", "
        "\"ids\": [0, 128803, 19923, 3, 128804]}\n");
  // For v4 the V4 tokens are added to a bare V3 tokenizer.json: <think> is one token.
  auto v4 = run_cli("chat render --codec v4 " + tok,
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], "
                    "\"thinking_mode\": \"thinking\"}\n");
  REQUIRE(v4.status == 0);
  CHECK(v4.out.find("\"ids\": [0, 128803, 19923, 3, 128804, 128821]}") != std::string::npos);
}

TEST_CASE("mnemo chat parse writes the parsed message or an error per completion", "[cli]") {
  auto r =
      run_cli("chat parse --codec v4 --thinking-mode thinking",
              "{\"completion\": \"Think.</think>Hi!<｜end▁of▁sentence｜>\"}\n"
              "{\"completion\": \"never ends\"}\n"
              "{\"completion\": \"\\n\\n<｜DSML｜tool_calls>\\n<｜DSML｜invoke name=\\\"f\\\">\\n"
              "<｜DSML｜parameter name=\\\"n\\\" string=\\\"false\\\">[1, 2]</｜DSML｜parameter>"
              "\\n</｜DSML｜invoke>\\n</｜DSML｜tool_calls>\", \"thinking_mode\": \"chat\"}\n"
              "{\"text\": \"wrong key\"}\n");
  REQUIRE(r.status == 0);
  CHECK(r.out ==
        "{\"parsed\": {\"role\": \"assistant\", \"content\": \"Hi!\", \"reasoning_content\": "
        "\"Think.\", \"tool_calls\": []}}\n"
        "{\"error\": \"line 2: missing </think>: the reasoning never ends\"}\n"
        "{\"parsed\": {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"\", "
        "\"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": "
        "\"{\\\"n\\\": [1, 2]}\"}}]}}\n"
        "{\"error\": \"line 4: expected {\\\"completion\\\": \\\"...\\\"}\"}\n");
}

TEST_CASE("mnemo chat parse in chat mode says how to parse a completion with </think>", "[cli]") {
  auto r = run_cli("chat parse --codec v4",
                   "{\"completion\": \"Think.</think>Hi!<｜end▁of▁sentence｜>\"}\n"
                   "{\"completion\": \"Hi!<｜end▁of▁sentence｜>\"}\n");
  REQUIRE(r.status == 0);
  CHECK(r.out ==
        "{\"error\": \"line 1: unexpected '</think>' in the content (a completion with reasoning "
        "needs --thinking-mode thinking, or \\\"thinking_mode\\\": \\\"thinking\\\" in its line)\"}\n"
        "{\"parsed\": {\"role\": \"assistant\", \"content\": \"Hi!\", \"reasoning_content\": \"\", "
        "\"tool_calls\": []}}\n");
}

TEST_CASE("mnemo chat fails with one line when the codec cannot do what is asked", "[cli]") {
  auto r = run_cli("chat parse --codec v3");
  CHECK(r.status == 1);
  CHECK(r.err == "mnemo: the v3 codec has no output parser yet\n");
  auto bad = run_cli("chat render --codec v9");
  CHECK(bad.status != 0);
  CHECK(bad.err.find("--codec") != std::string::npos);
  auto missing = run_cli("chat render --tokenizer /nonexistent/tokenizer.json");
  CHECK(missing.status == 1);
  CHECK(missing.err == "mnemo: tokenizer file /nonexistent/tokenizer.json does not exist\n");
}
