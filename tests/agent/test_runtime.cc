// The runtime in-process: what observers (the CLI, WebSocket clients) are told, against what the
// store holds.
#include <mnemo/agent/runtime.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "support/temp_model.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace mnemo;

TEST_CASE(
    "observers hear every durable event as stored, and live deltas carry the seq they lead to",
    "[agent]") {
  const fs::path dir = fs::temp_directory_path() / ("mnemo-runtime-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "ws");
  const std::string yaml =
      "name: live\nmodel:\n  embedded:\n    dir: " + test::temp_tiny_model() +
      "\ninput: Go.\ntools:\n  - name: say\n    command: 'echo out; echo err >&2; echo $MNEMO_CALL_ID >> said.log'\n"
      "tool_choice: required\nlimits:\n  max_steps: 2\n"
      "  max_turn_tokens: 96\nsampling:\n  seed: 3\n";
  auto spec = agent::parse_job_spec(yaml, "live.yaml");
  REQUIRE(spec);
  auto store = memory::Store::open((dir / "store").string());
  REQUIRE(store);
  asio::io_context io;
  agent::Runtime runtime(io.get_executor(), **store);
  std::vector<memory::Event> heard;
  std::vector<agent::LiveEvent> live;
  agent::JobObserver observer;
  observer.on_event = [&](const memory::Event& e) { heard.push_back(e); };
  observer.on_live = [&](const agent::LiveEvent& e) { live.push_back(e); };
  agent::NewJob job;
  job.spec = *spec;
  job.spec_yaml = yaml;
  job.id = "live-1";
  job.workspace = (dir / "ws").string();
  std::optional<Result<agent::RunResult>> result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto op = runtime.start(job, observer);
        result.emplace(co_await std::move(op));
      },
      asio::detached);
  io.run();
  REQUIRE(result);
  REQUIRE(*result);
  CHECK((*result)->status == agent::JobStatus::kLimit);
  // The sandboxed command wrote the workspace (a root-owned one too: idmapped, no chown).
  {
    std::ifstream log(dir / "ws" / "said.log");
    int lines = 0;
    for (std::string l; std::getline(log, l);) lines += l.rfind("call_", 0) == 0;
    CHECK(lines >= 2);
  }

  auto stored = (*store)->read_events("live-1");
  REQUIRE(stored);
  REQUIRE(heard.size() == stored->size());
  for (size_t i = 0; i < heard.size(); ++i) {
    CHECK(heard[i].seq == (*stored)[i].seq);
    CHECK(heard[i].type == (*stored)[i].type);
    CHECK(heard[i].payload == (*stored)[i].payload);
  }
  auto type_at = [&](uint64_t seq) {
    for (const auto& e : *stored) {
      if (e.seq == seq) return e.type;
    }
    return std::string("none");
  };
  bool args = false, out = false, err = false;
  for (const agent::LiveEvent& e : live) {
    if (e.type == "tool_call.args.delta") {
      args = true;
      CHECK(type_at(e.seq) == "message");
      CHECK(e.name == "say");
    }
    if (e.type == "tool.exec.output.delta") {
      CHECK(type_at(e.seq) == "tool.result");
      CHECK(e.call_id.rfind("call_", 0) == 0);
      out = out || (e.stream == "stdout" && e.text.find("out") != std::string::npos);
      err = err || (e.stream == "stderr" && e.text.find("err") != std::string::npos);
    }
  }
  CHECK(args);
  CHECK(out);
  CHECK(err);
  store->reset();
  fs::remove_all(dir);
}
