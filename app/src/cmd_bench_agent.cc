// `mnemo bench agent`: what the agent runtime itself costs per step (a step's wall time minus the
// model's turn and the tools), one session alone and many at once on one io_context, and the steps
// per second the runtime sustains with many sessions against one session in the same run.
// GCC 12 reports -Wmismatched-new-delete for Asio's coroutine frames: awaitable_frame_base has
// a class-specific operator new/delete pair (a recycling allocator) that the warning does not
// match across the inlined frame destruction. A known false positive of GCC 12, silenced
// for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <mnemo/agent/job_spec.h>
#include <mnemo/agent/runtime.h>
#include <mnemo/memory/store.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct AgentBenchOptions {
  std::string model;
  std::string store;
  int sessions = 100;
  int steps = 5;
  bool json = false;
};

struct Figures {
  int sessions = 0;
  size_t steps = 0;
  double wall_s = 0;
  double overhead_p50_ms = 0, overhead_p99_ms = 0;
  double step_p50_ms = 0;
  double steps_per_s() const { return wall_s > 0 ? static_cast<double>(steps) / wall_s : 0; }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string job_yaml(const std::string& model_dir, int steps) {
  // list_dir runs in-process and in microseconds: the tool side stays out of the way.
  return "name: bench\nmodel:\n  embedded:\n    dir: " + model_dir +
         "\ninput: List the workspace.\ntools:\n  - list_dir\ntool_choice: required\nlimits:\n  "
         "max_steps: " +
         std::to_string(steps) +
         "\n  max_turn_tokens: 96\nsampling:\n  temperature: 0.7\n  seed: 1\n";
}

Result<Figures> run_sessions(memory::Store& store, const std::string& model_dir,
                             const std::string& workspace, int sessions, int steps,
                             const std::string& prefix) {
  auto spec = agent::parse_job_spec(job_yaml(model_dir, steps), "bench.yaml");
  if (!spec) return spec.status();
  asio::io_context io;
  agent::Runtime runtime(io.get_executor(), store);
  std::vector<double> overhead, step_ms;
  agent::JobObserver observer;
  observer.on_step = [&](const agent::StepStats& s) {
    overhead.push_back(std::max(0.0, s.total_ms - s.model_ms - s.tool_ms));
    step_ms.push_back(s.total_ms);
  };
  Status failure;
  int done = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < sessions; ++i) {
    agent::NewJob job;
    job.spec = *spec;
    job.spec_yaml = job_yaml(model_dir, steps);
    job.spec_file = "bench.yaml";
    job.id = prefix + std::to_string(i);
    job.workspace = workspace;
    asio::co_spawn(
        io,
        [&, job = std::move(job)]() mutable -> asio::awaitable<void> {
          auto op = runtime.start(std::move(job), observer);
          Result<agent::RunResult> r = co_await std::move(op);
          if (!r && failure.is_ok()) failure = r.status();
          ++done;
        },
        asio::detached);
  }
  io.run();
  if (!failure) return failure;
  Figures f;
  f.sessions = sessions;
  f.steps = step_ms.size();
  f.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  f.overhead_p50_ms = percentile(overhead, 0.5);
  f.overhead_p99_ms = percentile(overhead, 0.99);
  f.step_p50_ms = percentile(step_ms, 0.5);
  return f;
}

int run_agent_bench(const AgentBenchOptions& opt) {
  auto model_or = model_dir_or_default(opt.model);
  if (!model_or) return fail(model_or.status().message());
  const std::string model = *model_or;
  const fs::path scratch =
      fs::temp_directory_path() / ("mnemo-bench-agent-" + std::to_string(::getpid()));
  fs::remove_all(scratch);
  fs::create_directories(scratch / "ws");
  const std::string store_dir = opt.store.empty() ? (scratch / "store").string() : opt.store;
  auto store = memory::Store::open(store_dir);
  if (!store) return fail(store.status().message());
  if (!opt.json)
    std::cerr << "bench agent: 1 session, then " << opt.sessions << " at once, " << opt.steps
              << " steps each\n";
  auto one = run_sessions(**store, model, (scratch / "ws").string(), 1, opt.steps, "one-");
  if (!one) return fail(one.status().message());
  auto many =
      run_sessions(**store, model, (scratch / "ws").string(), opt.sessions, opt.steps, "many-");
  if (!many) return fail(many.status().message());
  store->reset();
  if (opt.store.empty()) fs::remove_all(scratch);

  const double speedup = one->steps_per_s() > 0 ? many->steps_per_s() / one->steps_per_s() : 0;
  if (opt.json) {
    for (const Figures* f : {&*one, &*many}) {
      std::printf(
          "{\"bench\":\"agent\",\"sessions\":%d,\"steps\":%zu,\"wall_s\":%.3f,\"steps_per_s\":%.2f,"
          "\"overhead_p50_ms\":%.4f,\"overhead_p99_ms\":%.4f,\"step_p50_ms\":%.3f,\"overhead_"
          "share\":%.4f,"
          "\"throughput_vs_one_session\":%.3f}\n",
          f->sessions, f->steps, f->wall_s, f->steps_per_s(), f->overhead_p50_ms,
          f->overhead_p99_ms, f->step_p50_ms,
          f->step_p50_ms > 0 ? f->overhead_p50_ms / f->step_p50_ms : 0,
          f->steps_per_s() / one->steps_per_s());
    }
    return 0;
  }
  std::printf("%-10s %7s %10s %14s %14s %12s %16s\n", "sessions", "steps", "steps/s",
              "overhead p50", "overhead p99", "step p50", "overhead share");
  for (const Figures* f : {&*one, &*many}) {
    std::printf("%-10d %7zu %10.1f %11.3f ms %11.3f ms %9.1f ms %15.2f%%\n", f->sessions, f->steps,
                f->steps_per_s(), f->overhead_p50_ms, f->overhead_p99_ms, f->step_p50_ms,
                f->step_p50_ms > 0 ? 100.0 * f->overhead_p50_ms / f->step_p50_ms : 0);
  }
  std::printf(
      "throughput with %d sessions: %.2fx one session's (goal for the runtime: overhead p50 < 1 "
      "ms)\n",
      opt.sessions, speedup);
  return 0;
}

}  // namespace

void register_agent_bench(CLI::App& bench, CommandContext& ctx) {
  auto opt = std::make_shared<AgentBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "agent",
      "Agent runtime overhead per step (excluding model and tools) and steps/s, 1 vs N sessions");
  cmd->add_option("--model", opt->model, "model directory (default: the embedded tiny model)");
  cmd->add_option("--store", opt->store,
                  "store directory (default: a temporary one, removed after)");
  cmd->add_option("--sessions", opt->sessions, "sessions at once in the second run")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--steps", opt->steps, "steps per session")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--json", opt->json, "one JSON line per run");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_agent_bench(*opt); });
}

}  // namespace mnemo::app
