// Crash safety: a writer killed with SIGKILL at many points of its snapshot and event writes leaves
// a store that opens, holds every committed step whole, and references only chunks that verify.
#include <fcntl.h>
#include <mnemo/memory/store.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "fault_fs.h"
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
// fork): commits steps, reports each committed step on a pipe, and dies by its file system's hand
// inside the WAL append numbered MNEMO_CRASH_KILL_AT (0: never; the run's append count is then
// reported on the kill pipe).
TEST_CASE("crash test writer", "[.crash_writer]") {
  const char* dir = getenv("MNEMO_CRASH_DIR");
  const char* fd_text = getenv("MNEMO_CRASH_FD");
  const char* kill_fd_text = getenv("MNEMO_CRASH_KILL_FD");
  const char* kill_at_text = getenv("MNEMO_CRASH_KILL_AT");
  const char* session = getenv("MNEMO_CRASH_SESSION");
  REQUIRE((dir && fd_text && kill_fd_text && kill_at_text && session));
  const int fd = atoi(fd_text);
  const int kill_fd = atoi(kill_fd_text);
  auto fs = std::make_shared<test::KillingFileSystem>(
      static_cast<uint32_t>(atoi(kill_at_text)), kill_fd);
  const auto& m = test::tiny_model();
  StoreOptions options = crash_options();
  options.env = rocksdb::NewCompositeEnv(fs);
  auto store = Store::open(dir, options);
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
  test::KillReport total{fs->appends(), 0, 0};
  REQUIRE(write(kill_fd, &total, sizeof total) == sizeof total);
}

namespace {

struct WriterRun {
  int status = 0;
  uint32_t committed = 0;  // the last step the writer reported committed
  std::optional<test::KillReport> kill;
};

WriterRun run_writer(const std::string& dir, const std::string& session, uint32_t kill_at) {
  int steps[2], kills[2];
  REQUIRE(pipe(steps) == 0);
  REQUIRE(pipe(kills) == 0);
  std::vector<std::string> env_strings = {
      "MNEMO_CRASH_DIR=" + dir, "MNEMO_CRASH_FD=" + std::to_string(steps[1]),
      "MNEMO_CRASH_KILL_FD=" + std::to_string(kills[1]),
      "MNEMO_CRASH_KILL_AT=" + std::to_string(kill_at), "MNEMO_CRASH_SESSION=" + session};
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", filter = "crash test writer";
  char* argv[] = {self.data(), filter.data(), nullptr};
  pid_t child = fork();
  if (child == 0) {
    close(steps[0]);
    close(kills[0]);
    execve(self.c_str(), argv, envp.data());
    _exit(127);
  }
  close(steps[1]);
  close(kills[1]);
  WriterRun out;
  waitpid(child, &out.status, 0);
  uint32_t step = 0;
  while (read(steps[0], &step, sizeof step) == sizeof step) out.committed = step;
  test::KillReport k;
  if (read(kills[0], &k, sizeof k) == sizeof k) out.kill = k;
  close(steps[0]);
  close(kills[0]);
  return out;
}

}  // namespace

TEST_CASE("a writer killed inside its WAL writes leaves only whole steps", "[memory][crash]") {
  const auto& m = test::tiny_model();
  test::TempDir dir;
  auto tokens = test::long_tokens(kSteps * kStepTokens, 17);
  // A run that is not killed tells how many WAL appends the run makes.
  WriterRun calibration = run_writer(dir.path() + "/calibration", "full", 0);
  REQUIRE(WIFEXITED(calibration.status));
  REQUIRE(WEXITSTATUS(calibration.status) == 0);
  REQUIRE(calibration.committed == kSteps);
  REQUIRE(calibration.kill);
  // The calibration wrote its store's schema too; the kills' runs find one.
  const uint32_t appends = calibration.kill->append - 1;
  REQUIRE(appends > kSteps);
  constexpr int kKills = 12;
  for (int k = 0; k < kKills; ++k) {
    // Kill points spread over the run, the very first commits and the last one included.
    const uint32_t kill_at = 2 + static_cast<uint32_t>(k * (appends - 2) / (kKills - 1));
    std::string session = "crash" + std::to_string(k);
    WriterRun run = run_writer(dir.path(), session, kill_at);
    INFO("kill " << k << " at WAL append " << kill_at << " of " << appends << ": "
                 << run.committed << " steps reported committed");
    // The kill landed inside a write, where the writer said it would.
    REQUIRE(WIFSIGNALED(run.status));
    REQUIRE(WTERMSIG(run.status) == SIGKILL);
    REQUIRE(run.kill);
    CHECK(run.kill->append == kill_at);
    CHECK(run.kill->wrote < run.kill->of);

    auto store = Store::open(dir.path(), crash_options());
    REQUIRE(store);
    Store& s = **store;
    auto report = s.verify();
    REQUIRE(report);
    for (const auto& p : report->problems) FAIL_CHECK(p);
    auto info = s.session(session);
    if (!info) {
      CHECK(run.committed == 0);  // killed before the session was created
      continue;
    }
    // Every step reported committed is there; the torn one is not.
    CHECK(info->last_snapshot == run.committed);
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
