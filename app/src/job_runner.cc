#include "job_runner.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <mnemo/server/operator_channel.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "default_model.h"
#include "paths.h"

namespace mnemo::app {

namespace asio = boost::asio;
namespace json = boost::json;

std::string store_dir_or_default(const std::string& store) {
  return store.empty() ? mnemo_home() + "/store" : store;
}

std::string tenant_job_id(const std::string& tenant, const std::string& id) {
  if (tenant.empty() || tenant == "local") return id;
  const std::string scope = tenant + ":";
  return id.starts_with(scope) && id.size() > scope.size() ? id : scope + id;  // ids have no ':'
}

Result<std::string> resolve_job_id(const std::string& store, const std::string& given,
                                   const std::string& tenant) {
  const std::string exact = tenant_job_id(tenant, given);
  memory::StoreOptions o;
  o.read_only = true;
  auto s = memory::Store::open(store_dir_or_default(store), o);
  // A store that cannot be read is the command's own error to report (it opens the store itself).
  if (!s) return exact;
  auto ids = (*s)->list_sessions();
  if (!ids) return exact;
  const std::string scope = exact.substr(0, exact.size() - given.size());  // "" or "TENANT:"
  std::vector<std::string> matches;
  for (const std::string& id : *ids) {
    if (!id.starts_with(exact)) continue;
    auto info = (*s)->session(id);
    if (!info || info->tenant != (tenant.empty() ? "local" : tenant)) continue;
    if (id == exact) return exact;
    matches.push_back(id);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.empty()) return exact;
  std::string listed;
  for (size_t i = 0; i < matches.size() && i < 10; ++i)
    listed += (i ? ", " : "") + matches[i].substr(scope.size());
  if (matches.size() > 10) listed += ", ...";
  return Status::invalid_argument("job id prefix " + given + " matches " +
                                  std::to_string(matches.size()) + " jobs (" + listed +
                                  "); give more of the id");
}

namespace {

std::string one_line(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  return out;
}

std::string str_field(const json::value& v, std::string_view key) {
  if (const json::object* o = v.if_object()) {
    if (const json::value* f = o->if_contains(key); f && f->is_string())
      return std::string(f->get_string());
  }
  return {};
}

// Progress lines on stderr: one per model turn and per tool result.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), start_(std::chrono::steady_clock::now()) {}

  void event(const memory::Event& e) {
    if (quiet_) return;
    boost::system::error_code ec;
    json::value v = json::parse(e.payload, ec);
    if (ec) return;
    const json::object& o = v.as_object();
    if (e.type == "message") {
      const json::array& calls = o.at("tool_calls").as_array();
      const int64_t tokens = o.at("completion_tokens").to_number<int64_t>();
      const int64_t step = o.at("step").to_number<int64_t>();
      if (calls.empty()) {
        say("step " + std::to_string(step) + "  answer (" + std::to_string(tokens) + " tokens, " +
            str_field(v, "finish") + ")");
      }
      for (const json::value& c : calls) {
        say("step " + std::to_string(step) + "  " + str_field(c, "name") + " " +
            one_line(str_field(c, "arguments"), 100) + "  (" + std::to_string(tokens) + " tokens)");
      }
    } else if (e.type == "tool.result") {
      std::string status = o.at("ok").as_bool() ? "ok" : "error";
      if (const json::value* exit = o.if_contains("exit_status"); exit && exit->to_number<int>() != 0)
        status = "exit " + std::to_string(exit->to_number<int>());
      if (o.contains("outcome_unknown")) status = "outcome unknown";
      if (o.contains("denied")) status = "denied";
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.1f ms", o.at("elapsed_ms").to_number<double>());
      say("        -> " + status + " (" + ms + "): " + one_line(str_field(v, "content"), 100));
    } else if (e.type == "tool.approval_required") {
      say("waiting for approval: " + str_field(v, "name") + " " +
          one_line(str_field(v, "arguments"), 100) + "\n        mnemo jobs approve " + job_ + " " +
          str_field(v, "call_id") + "   (or: mnemo jobs deny ...)");
    } else if (e.type == "session.resumed") {
      const int64_t prefilled = o.at("tokens_prefilled").to_number<int64_t>();
      if (str_field(v, "from") == "snapshot") {
        say("resumed from KV snapshot " + std::to_string(o.at("snapshot").to_number<int64_t>()) +
            " at position " + std::to_string(o.at("position").to_number<int64_t>()) + " (" +
            std::to_string(prefilled) + " tokens to prefill)");
      } else {
        say("resumed by prefilling the transcript (" + std::to_string(prefilled) +
            " tokens): " + str_field(v, "reason"));
      }
    } else if (e.type == "limit") {
      std::string detail = str_field(v, "detail");
      say("limit: " + str_field(v, "reason") + (detail.empty() ? "" : " (" + detail + ")"));
    } else if (e.type == "error") {
      say("error: " + str_field(v, "message"));
    } else if (e.type == "run.retried") {
      say("retrying from the last committed step after: " + str_field(v, "error"));
    } else if (e.type == "run.finished") {
      say("finished: " + str_field(v, "reason") + " after " +
          std::to_string(o.at("steps").to_number<int64_t>()) + " steps, " +
          std::to_string(o.at("generated_tokens").to_number<int64_t>()) + " tokens generated");
    }
  }

  void set_job(std::string id) { job_ = std::move(id); }

  void say(const std::string& line) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "[%7.2fs] %s\n", s, line.c_str());
    std::fflush(stderr);
  }

 private:
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
  std::string job_;
};

}  // namespace

namespace {

// The process exit status for a job's status as the job JSON tells it.
int exit_status(const std::string& status) {
  if (status == "completed" || status == "limit") return 0;
  if (status == "waiting_approval") return 3;
  if (status == "cancelled") return 4;
  return 1;
}

}  // namespace

bool server_holds(const std::string& store_dir) {
  namespace local = asio::local;
  const std::string path = server::operator_socket_path(store_dir);
  if (!std::filesystem::exists(path)) return false;
  asio::io_context io;
  local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(local::stream_protocol::endpoint(path), ec);
  return !ec;
}

int run_via_server(const JobRunOptions& options, const json::object& request) {
  namespace local = asio::local;
  const std::string dir = store_dir_or_default(options.store);
  const std::string path = server::operator_socket_path(dir);
  asio::io_context io;
  local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(local::stream_protocol::endpoint(path), ec);
  if (ec) return fail("cannot reach the server holding " + dir + " at " + path + ": " + ec.message());
  const std::string line = json::serialize(request) + "\n";
  asio::write(socket, asio::buffer(line), ec);
  if (ec) return fail("writing to " + path + ": " + ec.message());
  Progress progress(options.quiet);
  progress.set_job(options.job_id);
  std::string buffer;
  size_t events = 0;
  const json::value req(request);
  std::string job_id = options.job_id;
  for (;;) {
    const size_t n = asio::read_until(socket, asio::dynamic_buffer(buffer, 64 << 20), '\n', ec);
    if (ec) {
      return fail("the server holding " + dir + " closed the operator channel (" + ec.message() +
                  "); the job may still run there: mnemo jobs show " + options.job_id);
    }
    json::value msg = json::parse(std::string_view(buffer).substr(0, n - 1), ec);
    buffer.erase(0, n);
    if (ec || !msg.is_object()) return fail("the server sent a line that is not JSON");
    const std::string type = str_field(msg, "type");
    // The channel's own error has no seq (a durable `error` event of the job has one).
    if (type == "error" && !msg.as_object().contains("seq")) return fail(str_field(msg, "message"));
    if (type == "started") {
      job_id = str_field(msg, "id");
      progress.set_job(job_id);
      if (!options.quiet) {
        progress.say("job " + str_field(msg, "id") + " runs in the mnemo serve that holds " + dir +
                     " (Ctrl-C detaches; the job goes on there)");
      }
      continue;
    }
    if (type == "end") {
      const json::value& job = msg.at("job");
      const std::string status = str_field(job, "status");
      if (options.json) {
        std::cout << json::serialize(job) << '\n';
      } else if (!str_field(job, "answer").empty() && status != "interrupted") {
        std::cout << str_field(job, "answer") << '\n';
      }
      const bool resume = str_field(req, "op") == "resume" && str_field(req, "message").empty();
      if (resume && events == 0 && exit_status(status) != 1 && status != "waiting_approval" &&
          !options.quiet) {
        progress.say("job " + str_field(job, "id") + " already finished (" + status +
                     "); nothing to resume (`mnemo resume ID --message TEXT` continues the "
                     "conversation)");
      }
      if (status == "failed")
        return fail("job " + str_field(job, "id") + " failed: " + str_field(job, "error"));
      if (status == "waiting_approval" && !options.quiet) {
        progress.say("job " + str_field(job, "id") + " waits for an approval (mnemo jobs show " +
                     str_field(job, "id") + ")");
      }
      return exit_status(status);
    }
    // A durable event in the WebSocket envelope.
    const json::object& o = msg.as_object();
    const json::value* payload = o.if_contains("payload");
    memory::Event e{o.contains("seq") ? o.at("seq").to_number<uint64_t>() : 0, type,
                    payload ? json::serialize(*payload) : "{}",
                    o.contains("unix_ms") ? o.at("unix_ms").to_number<int64_t>() : 0};
    ++events;
    if (type == "session.created" && payload && !options.quiet) {
      progress.say("job " + job_id + " (" + str_field(*payload, "name") +
                   "): model " + str_field(*payload, "model_dir") + ", workspace " +
                   str_field(*payload, "workspace"));
    }
    progress.event(e);
  }
}

int run_job(const JobRunOptions& options, const JobLauncher& launch) {
  const std::string dir = store_dir_or_default(options.store);
  auto store = memory::Store::open(dir);
  if (!store) return fail(store.status().message());
  asio::io_context io;
  agent::RuntimeOptions ro;
  if (!options.config.empty()) {
    auto config = agent::load_operator_config(options.config);
    if (!config) return fail(config.status().message());
    ro.config = std::make_shared<const agent::OperatorConfig>(std::move(config).value());
  }
  agent::Runtime runtime(io.get_executor(), **store, ro);
  Progress progress(options.quiet);
  agent::JobObserver observer;
  const std::string& job_id = options.job_id;
  progress.set_job(job_id);
  observer.on_event = [&](const memory::Event& e) {
    if (e.type == "session.created" && !options.quiet) {
      boost::system::error_code ec;
      json::value v = json::parse(e.payload, ec);
      if (!ec) {
        std::string model = str_field(v, "model_dir");
        if (model.empty()) model = str_field(v, "fingerprint");  // a remote model
        progress.say("job " + job_id + " (" + str_field(v, "name") + "): model " + model +
                     ", workspace " + str_field(v, "workspace"));
      }
    }
    progress.event(e);
  };
  observer.on_live = [&](const agent::LiveEvent& l) {
    // A resume's fallback to prefill is told by its durable session.resumed line.
    if (l.type == "notice" && l.name != "resume") progress.say("notice: " + l.text);
  };

  bool interrupted = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    interrupted = true;
    runtime.stop_all(agent::StopMode::kPause);
  });

  std::optional<Result<agent::RunResult>> result;
  auto wrapped = observer;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto op = launch(runtime, wrapped);
        Result<agent::RunResult> r = co_await std::move(op);
        result.emplace(std::move(r));
        signals.cancel();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  try {
    io.run();
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
  if (!result) return fail("the job did not finish");
  if (!*result) return fail(result->status().message());
  const agent::RunResult& run = result->value();
  if (options.json) {
    std::cout << agent::job_json(run.state, true) << '\n';
  } else if (!run.state.answer.empty() && run.status != agent::JobStatus::kInterrupted) {
    std::cout << run.state.answer << '\n';
  }
  switch (run.status) {
    case agent::JobStatus::kCompleted:
    case agent::JobStatus::kLimit:
      return 0;
    case agent::JobStatus::kWaitingApproval:
      if (!options.quiet)
        progress.say("job " + run.state.id + " waits for an approval (mnemo jobs show " +
                     run.state.id + ")");
      return 3;
    case agent::JobStatus::kCancelled:
      return 4;
    case agent::JobStatus::kInterrupted:
      if (interrupted) {
        if (!options.quiet)
          progress.say("interrupted: `mnemo resume " + run.state.id + "` continues the job");
        return 130;
      }
      return 1;
    case agent::JobStatus::kFailed:
      return fail("job " + run.state.id + " failed: " + run.state.error);
  }
  return 1;
}

}  // namespace mnemo::app
