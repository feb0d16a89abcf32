// `mnemo generate` on a synthetic tiny model: streamed text, the figures line, determinism,
// sampling seeds, the chat format's routing of reasoning, Ctrl-C, and one-line usage errors.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/run_cli.h"
#include "support/temp_model.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;
namespace fs = std::filesystem;

namespace {

std::string model_dir() { return mnemo::test::temp_tiny_model(); }

std::string generate(const std::string& args) {
  return "generate --model " + shell_quote(model_dir()) + " " + args;
}

bool has_stats_line(const std::string& err, int generated) {
  return err.find("prompt ") != std::string::npos &&
         err.find(" tokens/s; generated " + std::to_string(generated) + " tokens, decode ") !=
             std::string::npos;
}

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST_CASE("mnemo generate streams text and prints the figures line", "[cli][generate]") {
  auto r = run_cli(generate("--prompt 'Once upon a time' --max-tokens 12"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.size() > 12);  // twelve tokens of a 129k vocabulary: text, ended by a newline
  CHECK(r.out.back() == '\n');
  CHECK(has_stats_line(r.err, 12));
  CHECK(r.err.find("prompt 5 tokens") != std::string::npos);  // BOS + 4 tokens of text
  CHECK(r.err.find("(length)") != std::string::npos);
}

TEST_CASE("mnemo generate is deterministic when greedy and follows --seed when sampling",
          "[cli][generate]") {
  // Greedy: two runs of the same command print the same text, at each precision.
  for (const char* precision : {"fp32", "serving"}) {
    INFO(precision);
    const std::string args =
        std::string("--prompt 'The weather today' --max-tokens 20 --precision ") + precision;
    auto first = run_cli(generate(args));
    auto second = run_cli(generate(args));
    REQUIRE(first.status == 0);
    REQUIRE(second.status == 0);
    CHECK(first.out.size() > 20);
    CHECK(first.out == second.out);
  }
  auto a = run_cli(generate("--prompt 'The weather today' --max-tokens 20"));
  REQUIRE(a.status == 0);

  const std::string sample =
      "--prompt 'The weather today' --max-tokens 24 --temperature 1.0 --top-p 0.95 ";
  auto s1 = run_cli(generate(sample + "--seed 1"));
  auto s1_again = run_cli(generate(sample + "--seed 1"));
  auto s2 = run_cli(generate(sample + "--seed 2"));
  REQUIRE(s1.status == 0);
  REQUIRE(s2.status == 0);
  CHECK(s1.out == s1_again.out);
  CHECK(s1.out != s2.out);
  CHECK(s1.out != a.out);
}

TEST_CASE("mnemo generate --chat sends reasoning to stderr and content to stdout",
          "[cli][generate]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-generate-chat-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "thinking.json")
      << R"({"messages": [{"role": "user", "content": "What is 2+2?"}],
                                              "thinking_mode": "thinking"})";
  std::ofstream(dir / "chat.json")
      << R"({"messages": [{"role": "user", "content": "What is 2+2?"}]})";
  auto thinking = run_cli(
      generate("--chat " + shell_quote((dir / "thinking.json").string()) + " --max-tokens 10"));
  auto chat =
      run_cli(generate("--chat " + shell_quote((dir / "chat.json").string()) + " --max-tokens 10"));
  REQUIRE(thinking.status == 0);
  REQUIRE(chat.status == 0);
  // The random model never closes its reasoning in 10 greedy tokens: all of it is on stderr.
  CHECK(thinking.out.find_first_not_of('\n') == std::string::npos);
  CHECK(count_lines(thinking.err) >= 2);
  CHECK(has_stats_line(thinking.err, 10));
  // In chat mode the same kind of text is content.
  CHECK(chat.out.size() > 10);
  CHECK(count_lines(chat.err) == 1);
  CHECK(has_stats_line(chat.err, 10));

  std::ofstream(dir / "bad.json") << R"({"messages": [{"role": "wizard", "content": "hi"}]})";
  auto bad = run_cli(generate("--chat " + shell_quote((dir / "bad.json").string())));
  CHECK(bad.status == 1);
  CHECK(bad.err.rfind("mnemo: ", 0) == 0);
  CHECK(bad.err.find("bad.json: messages[0].role") != std::string::npos);
  CHECK(count_lines(bad.err) == 1);
  fs::remove_all(dir);
}

TEST_CASE("mnemo generate stops cleanly on Ctrl-C with status 130", "[cli][generate]") {
  fs::path dir =
      fs::temp_directory_path() / ("mnemo-generate-sigint-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "out").string(), err = (dir / "err").string();
  const std::string model = model_dir();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDOUT_FILENO);
    ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), STDERR_FILENO);
    ::execl(MNEMO_BINARY, MNEMO_BINARY, "generate", "--model", model.c_str(), "--prompt", "hi",
            "--max-tokens", "1000000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Interrupt once text is streaming.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((!fs::exists(out) || fs::file_size(out) < 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGINT);
  int raw = 0;
  REQUIRE(::waitpid(pid, &raw, 0) == pid);
  REQUIRE(WIFEXITED(raw));
  CHECK(WEXITSTATUS(raw) == 130);
  std::ifstream e(err);
  std::string err_text((std::istreambuf_iterator<char>(e)), {});
  CHECK(err_text.find("(cancelled)") != std::string::npos);
  CHECK(err_text.find("tokens/s; generated ") != std::string::npos);
  CHECK(fs::file_size(out) >= 20);
  fs::remove_all(dir);
}

TEST_CASE("mnemo generate uses the default model under MNEMO_HOME when --model is absent",
          "[cli][generate]") {
  fs::path home = fs::temp_directory_path() / ("mnemo-generate-home-" + std::to_string(::getpid()));
  fs::remove_all(home);
  auto r = run_cli("generate --prompt hello --max-tokens 3", "",
                   "MNEMO_HOME=" + shell_quote(home.string()));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(fs::exists(home / "models/tiny/config.json"));
  CHECK(has_stats_line(r.err, 3));
  // The same seed-0 checkpoint as `model init --preset tiny`: the same greedy text.
  CHECK(r.out == run_cli(generate("--prompt hello --max-tokens 3")).out);
  fs::remove_all(home);
}

TEST_CASE("mnemo generate rejects bad flags with one-line errors", "[cli][generate]") {
  struct Case {
    std::string args;
    std::string says;
  };
  std::vector<Case> cases{
      {"--max-tokens 4", "--prompt or --chat is required"},
      {"--prompt hi --chat x.json", "excludes"},
      {"--prompt hi --temperature -1", "--temperature"},
      {"--prompt hi --top-p 1.5", "--top-p"},
      {"--prompt hi --max-tokens -3", "--max-tokens"},
      {"--prompt hi --precision fp8", "--precision"},
      {"--prompt hi --top-p 0", "top_p must be in (0, 1]"},
      {"--chat /nonexistent/conv.json", "cannot read /nonexistent/conv.json"},
  };
  for (const Case& c : cases) {
    auto r = run_cli(generate(c.args));
    INFO(c.args << " -> " << r.err);
    CHECK(r.status != 0);
    CHECK(r.err.rfind("mnemo: ", 0) == 0);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.out.empty());
  }
  auto missing = run_cli("generate --model /nonexistent-model --prompt hi");
  CHECK(missing.status == 1);
  CHECK(missing.err.rfind("mnemo: ", 0) == 0);
  CHECK(count_lines(missing.err) == 1);
}
