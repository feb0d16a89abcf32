#pragma once
// Helpers for the tool tests: a fresh workspace handed to the sandbox's uid, and running one tool call
// to completion (optionally cancelled after a delay) on a private io_context.
#include <mnemo/sandbox/workspace.h>
#include <mnemo/tools/registry.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mnemo::test {

namespace fs = std::filesystem;

inline std::string unique_name(const std::string& what) {
  static std::atomic<int> n{0};
  return "mnemo-tools-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

struct TempTree {
  fs::path path;
  // A plain directory of ours: the sandbox writes it as it is (idmapped when we are root).
  explicit TempTree(const std::string& what, bool for_sandbox = false) {
    path = fs::temp_directory_path() / unique_name(what);
    fs::create_directories(path);
    (void)for_sandbox;
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

inline tools::ToolContext context_for(const fs::path& workspace) {
  tools::ToolContext ctx;
  ctx.session_id = "s1";
  ctx.workspace = workspace.string();
  ctx.policy.limits.timeout = std::chrono::seconds(10);
  ctx.timeout = std::chrono::seconds(10);
  return ctx;
}

// Runs the call through the registry; a terminal cancellation is emitted after cancel_after, or as
// soon as cancel_when (polled every 10 ms) says so, e.g. once the command is seen running.
inline tools::ToolResult run_call(const tools::ToolRegistry& registry, tools::ToolContext& ctx,
                                  std::string name, std::string arguments,
                                  std::optional<std::chrono::milliseconds> cancel_after = {},
                                  std::function<bool()> cancel_when = {}) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::cancellation_signal signal;
  std::optional<tools::ToolResult> out;
  std::exception_ptr error;
  asio::co_spawn(io, registry.run(tools::ToolCall{"call-1", std::move(name), std::move(arguments)}, ctx),
                 asio::bind_cancellation_slot(signal.slot(),
                                              [&](std::exception_ptr e, tools::ToolResult r) {
                                                error = e;
                                                out = std::move(r);
                                              }));
  asio::steady_timer timer(io);
  if (cancel_after) {
    timer.expires_after(*cancel_after);
    timer.async_wait([&](boost::system::error_code ec) {
      if (!ec && !out) signal.emit(asio::cancellation_type::terminal);
    });
  }
  std::function<void()> poll = [&] {
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([&](boost::system::error_code ec) {
      if (ec || out) return;
      if (cancel_when()) {
        signal.emit(asio::cancellation_type::terminal);
      } else {
        poll();
      }
    });
  };
  if (cancel_when) poll();
  // Every tool keeps work on the io_context until it completes, so running dry means a lost handler.
  while (!out && !error) {
    if (io.run_one() == 0) throw std::runtime_error("the tool call never completed");
  }
  timer.cancel();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

}  // namespace mnemo::test
