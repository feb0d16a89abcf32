// Crash safety: a writer killed with SIGKILL at many points of its snapshot and event writes leaves
// a store that opens, holds every committed step whole, and references only chunks that verify.
#include <fcntl.h>
#include <mnemo/memory/store.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;
using inference::TokenId;

namespace {

constexpr size_t kStepTokens = 8;
constexpr size_t kSteps = 40;

StoreOptions crash_options() {
  StoreOptions o;
  o.chunk_tokens = 128;
  o.prefix_tail_every = 256;
  return o;
}

}  // namespace

// Runs in a fresh process started by the crash test (exec, so no threads are inherited from a
// fork): commits steps as fast as it can, and reports each committed step on a pipe.
TEST_CASE("crash test writer", "[.crash_writer]") {
  const char* dir = getenv("MNEMO_CRASH_DIR");
  const char* fd_text = getenv("MNEMO_CRASH_FD");
  const char* session = getenv("MNEMO_CRASH_SESSION");
  REQUIRE((dir && fd_text && session));
  const int fd = atoi(fd_text);
  const auto& m = test::tiny_model();
  auto store = Store::open(dir, crash_options());
  REQUIRE(store);
  REQUIRE((*store)->create_session(session, "acme"));
  auto tokens = test::long_tokens(kSteps * kStepTokens, 17);
  inference::Sequence live = m.new_sequence();
  uint32_t step = 0;
  REQUIRE(write(fd, &step, sizeof step) == sizeof step);  // ready
  for (step = 1; step <= kSteps; ++step) {
    std::span<const TokenId> all(tokens);
    test::run(m, live, all.subspan((step - 1) * kStepTokens, kStepTokens));
    if (step % 3 == 0)
      REQUIRE((*store)->append_events(session, std::vector<NewEvent>{{"input.message", "{}"}}));
    SnapshotSource src{&m, &live, all.first(step * kStepTokens),
                       step % 4 == 0 ? AtRest::kCompact : AtRest::kExact};
    std::vector<NewEvent> events{{"tool.intent", "{}"}, {"tool.result", "{}"}};
    REQUIRE((*store)->commit_step(session, events, &src));
    REQUIRE(write(fd, &step, sizeof step) == sizeof step);
  }
}

TEST_CASE("a writer killed during snapshot and event writes leaves only whole steps",
          "[memory][crash]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto tokens = test::long_tokens(kSteps * kStepTokens, 17);
  constexpr int kKills = 12;
  for (int kill_at = 0; kill_at < kKills; ++kill_at) {
    std::string session = "crash" + std::to_string(kill_at);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    std::vector<std::string> env_strings = {"MNEMO_CRASH_DIR=" + dir.path(),
                                            "MNEMO_CRASH_FD=" + std::to_string(fds[1]),
                                            "MNEMO_CRASH_SESSION=" + session};
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe", filter = "crash test writer";
    char* argv[] = {self.data(), filter.data(), nullptr};
    pid_t child = fork();
    if (child == 0) {
      close(fds[0]);
      execve(self.c_str(), argv, envp.data());
      _exit(127);
    }
    close(fds[1]);
    uint32_t step = 0, committed = 0;
    REQUIRE(read(fds[0], &step, sizeof step) == sizeof step);  // the child is ready to write
    // Kill points spread over the run: early steps, chunk boundaries, compact steps and the last
    // ones.
    std::this_thread::sleep_for(std::chrono::microseconds(27000 * kill_at + 700 * (kill_at % 5)));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    while (read(fds[0], &step, sizeof step) == sizeof step) committed = step;
    close(fds[0]);
    INFO("kill " << kill_at << ": " << committed << " steps reported committed");

    auto store = Store::open(dir.path(), crash_options());
    REQUIRE(store);
    Store& s = **store;
    auto report = s.verify();
    REQUIRE(report);
    for (const auto& p : report->problems) FAIL_CHECK(p);
    auto info = s.session(session);
    if (!info) continue;  // killed before the session was created
    CHECK(info->last_snapshot >= committed);
    auto events = s.read_events(session);
    REQUIRE(events);
    uint64_t step_commits = 0;
    for (size_t i = 0; i < events->size(); ++i) {
      if ((*events)[i].type != "step.committed") continue;
      ++step_commits;
      REQUIRE(i >= 2);  // the step's own events precede it, from the same batch
      CHECK((*events)[i - 1].type == "tool.result");
      CHECK((*events)[i - 2].type == "tool.intent");
    }
    CHECK(step_commits == info->last_snapshot);
    if (info->last_snapshot == 0) continue;
    auto restored = s.restore(m, session, {.allow_compact = true});
    REQUIRE(restored);
    const auto pos = static_cast<size_t>(restored->sequence.position());
    CHECK(pos == info->last_snapshot * kStepTokens);
    CHECK(restored->tokens ==
          std::vector<TokenId>(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(pos)));
    if (restored->info.at_rest == AtRest::kExact && pos + 4 <= tokens.size()) {
      inference::Sequence plain = m.new_sequence();
      std::span<const TokenId> all(tokens);
      test::run(m, plain, all.first(pos));
      auto next = all.subspan(pos, 4);
      CHECK(
          test::same_bits(test::decode_steps(m, restored->sequence, next), test::decode_steps(m, plain, next)));
    }
  }
}
