// `mnemo bench ws`: holds N concurrent WebSocket sessions against a real `mnemo serve` (a child
// process on a temporary store), most of them idle (connected and resumed on a finished session),
// some active (each running a small forced-tool job on the model), and prints the event latency
// (server commit to client receipt, from the published_us stamp) and the server's memory per idle
// session (its RSS delta over the idle connections).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct WsBenchOptions {
  int sessions = 1000;
  int active = 50;
  int steps = 2;
  std::string model;
  bool json = false;
};

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

void raise_fd_limit(int needed) {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  rlim_t want = std::min<rlim_t>(r.rlim_max, static_cast<rlim_t>(needed) * 2 + 256);
  if (r.rlim_cur < want) {
    r.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

struct Child {
  pid_t pid = -1;
  uint16_t port = 0;
};

Result<Child> start_server(const std::string& root, const std::string& model) {
  int out[2];
  if (pipe(out) != 0) return Status::io_error("pipe failed");
  std::vector<std::string> args = {"/proc/self/exe", "serve", "--listen", "127.0.0.1:0",
                                   "--store", root + "/store", "--model", model,
                                   "--workspaces", root + "/ws", "--grace", "2"};
  pid_t pid = fork();
  if (pid < 0) return Status::io_error("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  while (text.find('\n') == std::string::npos) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  auto colon = text.rfind(':');
  if (text.rfind("listening on http://", 0) != 0 || colon == std::string::npos) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return Status::internal("mnemo serve did not start: " + text);
  }
  return Child{pid, static_cast<uint16_t>(std::stoi(text.substr(colon + 1)))};
}

std::string job_config(int steps) {
  return R"({"name": "bench", "instructions": "Use the echo tool.", "input": "Say hi.",
    "tools": [{"name": "echo", "description": "Print a greeting.", "command": "echo hi",
               "idempotent": true}],
    "tool_choice": "required", "sandbox": {"mode": "none"},
    "limits": {"max_steps": )" +
         std::to_string(steps) + R"(, "max_turn_tokens": 128}, "sampling": {"seed": 1}})";
}

struct Shared {
  std::vector<double> latencies_ms;
  int resumed = 0;
  int finished = 0;
  int failed = 0;
  std::string first_error;
};

using Ws = websocket::stream<beast::tcp_stream>;

asio::awaitable<std::unique_ptr<Ws>> connect(uint16_t port, Shared& shared) {
  auto ex = co_await asio::this_coro::executor;
  auto ws = std::make_unique<Ws>(ex);
  auto c = beast::get_lowest_layer(*ws).async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), kTuple);
  auto [ec] = co_await std::move(c);
  if (!ec) {
    auto h = ws->async_handshake("127.0.0.1", "/v1/sessions", kTuple);
    auto [hec] = co_await std::move(h);
    ec = hec;
  }
  if (ec) {
    if (shared.first_error.empty()) shared.first_error = ec.message();
    ++shared.failed;
    co_return nullptr;
  }
  co_return ws;
}

// Sends one message and reads until a message of type `until` arrives; latencies of durable events
// that carry published_us are recorded when `measure`.
asio::awaitable<bool> exchange(Ws& ws, std::string message, std::string until, Shared& shared,
                               bool measure) {
  auto w = ws.async_write(asio::buffer(message), kTuple);
  auto [wec, wn] = co_await std::move(w);
  if (wec) co_return false;
  for (;;) {
    beast::flat_buffer buf;
    auto r = ws.async_read(buf, kTuple);
    auto [ec, n] = co_await std::move(r);
    if (ec) co_return false;
    const int64_t at = now_us();
    boost::system::error_code pec;
    json::value v = json::parse(beast::buffers_to_string(buf.data()), pec);
    if (pec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    if (measure) {
      if (const json::value* p = o.if_contains("published_us"))
        shared.latencies_ms.push_back(static_cast<double>(at - p->to_number<int64_t>()) / 1000.0);
    }
    const json::value* t = o.if_contains("type");
    if (t && t->is_string() && t->get_string() == until) co_return true;
    if (t && t->is_string() && t->get_string() == "error") {
      if (shared.first_error.empty()) shared.first_error = json::serialize(v);
      co_return false;
    }
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int run_ws_bench(const WsBenchOptions& opt) {
  const int idle = std::max(0, opt.sessions - opt.active);
  raise_fd_limit(opt.sessions);
  auto model_or = model_dir_or_default(opt.model);
  if (!model_or) return fail(model_or.status().message());
  const std::string model = *model_or;
  const fs::path root = fs::temp_directory_path() / ("mnemo-bench-ws-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  auto child = start_server(root.string(), model);
  if (!child) return fail(child.status().message());
  const uint16_t port = child->port;
  asio::io_context io;
  Shared shared;
  std::vector<std::unique_ptr<Ws>> idle_conns;
  int64_t rss_before = 0, rss_idle = 0;
  double active_seconds = 0;
  auto progress = [&](const std::string& s) {
    if (!opt.json) std::cerr << "bench ws: " << s << '\n';
  };

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // A finished session for the idle connections to resume (and a warm model).
        auto c0 = connect(port, shared);
        auto ws0 = co_await std::move(c0);
        if (!ws0) co_return;
        const std::string create0 = json::serialize(json::object{
            {"type", "session.create"}, {"session_id", "bench-idle"},
            {"job", json::parse(job_config(1))}});
        auto e0 = exchange(*ws0, create0, "run.finished", shared, false);
        if (!co_await std::move(e0)) co_return;
        ws0.reset();
        rss_before = rss_bytes(child->pid);
        progress("connecting " + std::to_string(idle) + " idle sessions");
        const std::string resume = json::serialize(json::object{
            {"type", "session.resume"}, {"session_id", "bench-idle"}, {"after_seq", 1000000}});
        for (int i = 0; i < idle; ++i) {
          auto c = connect(port, shared);
          auto ws = co_await std::move(c);
          if (!ws) continue;
          auto e = exchange(*ws, resume, "session.attached", shared, false);
          if (co_await std::move(e)) ++shared.resumed;
          idle_conns.push_back(std::move(ws));
        }
        rss_idle = rss_bytes(child->pid);
        progress("running " + std::to_string(opt.active) + " active sessions");
        const auto t0 = std::chrono::steady_clock::now();
        auto remaining = std::make_shared<int>(opt.active);
        auto executor = co_await asio::this_coro::executor;
        auto done = std::make_shared<asio::steady_timer>(executor);
        done->expires_at(asio::steady_timer::time_point::max());
        for (int i = 0; i < opt.active; ++i) {
          asio::co_spawn(
              executor,
              [&, i, remaining, done]() -> asio::awaitable<void> {
                auto c = connect(port, shared);
                auto ws = co_await std::move(c);
                if (ws) {
                  const std::string create = json::serialize(json::object{
                      {"type", "session.create"},
                      {"session_id", "bench-active-" + std::to_string(i)},
                      {"job", json::parse(job_config(opt.steps))}});
                  auto e = exchange(*ws, create, "run.finished", shared, true);
                  if (co_await std::move(e)) ++shared.finished;
                }
                if (--*remaining == 0) done->cancel();
              },
              asio::detached);
        }
        if (opt.active > 0) {
          boost::system::error_code ec;
          auto w = done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
          co_await std::move(w);
        }
        active_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (auto& ws : idle_conns) beast::get_lowest_layer(*ws).close();
      },
      asio::detached);
  io.run();
  kill(child->pid, SIGTERM);
  waitpid(child->pid, nullptr, 0);
  fs::remove_all(root);

  const double p50 = percentile(shared.latencies_ms, 0.5);
  const double p99 = percentile(shared.latencies_ms, 0.99);
  const double per_idle = shared.resumed > 0 ? static_cast<double>(rss_idle - rss_before) /
                                                   shared.resumed
                                             : 0;
  if (opt.json) {
    json::object o{{"bench", "ws"},
                   {"sessions", opt.sessions},
                   {"idle", idle},
                   {"idle_resumed", shared.resumed},
                   {"active", opt.active},
                   {"active_finished", shared.finished},
                   {"failed", shared.failed},
                   {"events", shared.latencies_ms.size()},
                   {"latency_p50_ms", p50},
                   {"latency_p99_ms", p99},
                   {"server_rss_before_bytes", rss_before},
                   {"server_rss_idle_bytes", rss_idle},
                   {"bytes_per_idle_session", per_idle},
                   {"active_seconds", active_seconds}};
    if (!shared.first_error.empty()) o["first_error"] = shared.first_error;
    std::cout << json::serialize(o) << '\n';
  } else {
    std::printf("sessions           %d (%d idle resumed, %d active finished, %d failed)\n",
                opt.sessions, shared.resumed, shared.finished, shared.failed);
    std::printf("event latency      p50 %.3f ms, p99 %.3f ms over %zu events (commit to receipt)\n",
                p50, p99, shared.latencies_ms.size());
    std::printf("memory per idle    %.1f KiB (server RSS %.1f -> %.1f MiB)\n", per_idle / 1024,
                static_cast<double>(rss_before) / 1048576.0,
                static_cast<double>(rss_idle) / 1048576.0);
    std::printf("active phase       %.2f s\n", active_seconds);
    if (!shared.first_error.empty()) std::printf("first error        %s\n", shared.first_error.c_str());
  }
  const bool ok = shared.failed == 0 && shared.resumed == idle && shared.finished == opt.active;
  return ok ? 0 : 1;
}

}  // namespace

void register_ws_bench(CLI::App& bench, CommandContext& ctx) {
  auto opt = std::make_shared<WsBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "ws", "Concurrent WebSocket sessions against mnemo serve: event latency, memory per session");
  cmd->add_option("--sessions", opt->sessions, "concurrent sessions, idle and active")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--active", opt->active, "sessions running a job")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--steps", opt->steps, "steps of each active session's job")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--model", opt->model, "model directory (default: the embedded tiny model)");
  cmd->add_flag("--json", opt->json, "one JSON object with bench \"ws\"");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_ws_bench(*opt); });
}

}  // namespace mnemo::app
