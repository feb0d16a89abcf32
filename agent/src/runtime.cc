#include <mnemo/agent/runtime.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <random>

#include "event_payloads.h"
#include "runtime_impl.h"
#include "session.h"

namespace mnemo::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

std::string new_job_id(std::string_view name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return std::string(name) + "-" + stamp + "-" + suffix;
}

Runtime::Impl::~Impl() {
  if (control_timer) control_timer->cancel();
  for (auto& [id, session] : running) session->stop(StopMode::kPause);
  remote_pool.join();
  store_pool.join();
}

Result<internal::EmbeddedModel*> Runtime::Impl::model(const std::string& dir,
                                                      inference::Precision precision) {
  const std::string key = dir + "|" + std::string(inference::precision_name(precision));
  if (auto it = models.find(key); it != models.end()) return it->second.get();
  auto m = internal::EmbeddedModel::load(dir, precision, options.engine);
  if (!m) return Status(m.status().code(), "model " + dir + ": " + m.status().message());
  internal::EmbeddedModel* raw = m->get();
  models.emplace(key, std::move(m).value());
  return raw;
}

void Runtime::Impl::poll_control() {
  if (!control_timer) control_timer = std::make_unique<asio::steady_timer>(executor);
  control_timer->expires_after(std::chrono::milliseconds(200));
  control_timer->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const fs::path dir = fs::path(store.dir()) / "control";
    std::error_code fec;
    for (auto& [id, session] : running) {
      const fs::path marker = dir / (id + ".cancel");
      if (fs::exists(marker, fec)) {
        fs::remove(marker, fec);
        session->stop(StopMode::kCancel);
      }
    }
    if (!running.empty()) poll_control();
  });
}

Runtime::Runtime(asio::any_io_executor executor, memory::Store& store, RuntimeOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), store, std::move(options))) {}

Runtime::~Runtime() = default;

Result<JobState> Runtime::load(std::string_view id) const {
  auto events = impl_->store.read_events(id);
  if (!events) return events.status();
  if (events->empty()) return Status::not_found("no job " + std::string(id));
  return replay_job(id, *events);
}

namespace {

// Keeps a session registered as running for the duration of its run.
struct Running {
  Runtime::Impl& rt;
  std::string id;
  Running(Runtime::Impl& r, std::string i, internal::Session* s) : rt(r), id(std::move(i)) {
    rt.running[id] = s;
    if (rt.running.size() == 1) rt.poll_control();
  }
  ~Running() {
    rt.running.erase(id);
    if (rt.running.empty() && rt.control_timer) rt.control_timer->cancel();
  }
};

Result<std::string> model_dir(const JobSpec& spec, const RuntimeOptions& options) {
  if (spec.model.kind == ModelKind::kRemote) return std::string();
  std::string dir =
      spec.model.embedded.dir.empty() ? options.default_model_dir : spec.model.embedded.dir;
  if (dir.empty())
    return Status::invalid_argument("the job names no model directory and there is no default");
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec);
  return ec ? dir : abs.lexically_normal().string();
}

}  // namespace

asio::awaitable<Result<RunResult>> Runtime::start(NewJob job, JobObserver observer) {
  Impl& rt = *impl_;
  JobOrigin origin;
  origin.spec_yaml = job.spec_yaml;
  origin.spec_file = job.spec_file;
  origin.inputs = job.inputs;
  origin.seed =
      job.spec.sampling.seed ? *job.spec.sampling.seed : std::random_device{}() * 0x100000001ull;
  std::error_code ec;
  origin.workspace =
      fs::absolute(job.workspace.empty() ? fs::current_path(ec) : fs::path(job.workspace), ec)
          .lexically_normal()
          .string();
  auto input = render_input(job.spec, job.inputs);
  if (!input) co_return input.status();
  auto dir = model_dir(job.spec, rt.options);
  if (!dir) co_return dir.status();
  origin.model_dir = *dir;

  JobState state;
  state.id = job.id.empty() ? new_job_id(job.spec.name) : job.id;
  state.origin = origin;
  state.spec = job.spec;
  {  // The tools must exist before anything is stored.
    tools::ToolRegistry registry;
    tools::ToolContext ctx;
    if (Status s = internal::build_tools(state, &rt.store, registry, ctx); !s) co_return s;
  }
  internal::EmbeddedModel* model = nullptr;
  if (job.spec.model.kind == ModelKind::kEmbedded) {
    auto m = rt.model(origin.model_dir, job.spec.model.embedded.precision);
    if (!m) co_return m.status();
    model = *m;
    origin.fingerprint = model->model->fingerprint();
  } else {
    origin.fingerprint =
        "remote " + job.spec.model.remote.base_url + " " + job.spec.model.remote.model;
  }
  if (rt.store.session(state.id))
    co_return Status::invalid_argument("job " + state.id + " already exists");

  memory::NewEvent created = internal::session_created_event(origin, job.spec.name);
  if (Status s = rt.store.create_session(
          state.id, job.tenant.empty() ? rt.options.tenant : job.tenant, created.payload);
      !s)
    co_return s;
  auto events = rt.store.read_events(state.id);
  if (!events) co_return events.status();
  auto replayed = replay_job(state.id, *events);
  if (!replayed) co_return replayed.status();
  if (observer.on_event) {
    for (const memory::Event& e : *events) observer.on_event(e);
  }

  internal::Session session(rt, std::move(replayed).value(), model, std::move(observer));
  Running running(rt, session.state().id, &session);
  auto begin = session.begin(*input);
  if (Status s = co_await std::move(begin); !s) co_return s;
  auto run = session.run(false);
  Status s = co_await std::move(run);
  if (!s) co_return s;
  co_return RunResult{session.state(), session.state().status()};
}

Result<internal::EmbeddedModel*> Runtime::Impl::model_for(const JobState& state) {
  if (state.spec.model.kind == ModelKind::kRemote)
    return static_cast<internal::EmbeddedModel*>(nullptr);
  const std::string& dir = state.origin.model_dir;
  if (dir.empty())
    return Status::unsupported("job " + state.id + " has no embedded model to run on");
  auto m = model(dir, state.spec.model.embedded.precision);
  if (!m) return m.status();
  if ((*m)->model->fingerprint() != state.origin.fingerprint) {
    return Status::invalid_argument("job " + state.id + " ran on a model with fingerprint " +
                                    state.origin.fingerprint + "; the model in " + dir +
                                    " is now " + (*m)->model->fingerprint() +
                                    " (resuming on another model would not continue the same run)");
  }
  return m;
}

asio::awaitable<Result<RunResult>> Runtime::resume(std::string id, JobObserver observer) {
  Impl& rt = *impl_;
  if (rt.running.count(id)) co_return Status::invalid_argument("job " + id + " is already running");
  auto state = load(id);
  if (!state) co_return state.status();
  if (state->finished) co_return RunResult{*state, state->status()};
  auto model = rt.model_for(*state);
  if (!model) co_return model.status();
  internal::Session session(rt, std::move(state).value(), *model, std::move(observer));
  Running running(rt, id, &session);
  auto run = session.run(true);
  Status s = co_await std::move(run);
  if (!s) co_return s;
  co_return RunResult{session.state(), session.state().status()};
}

asio::awaitable<Result<RunResult>> Runtime::input(std::string id, std::string content,
                                                  JobObserver observer) {
  Impl& rt = *impl_;
  if (rt.running.count(id))
    co_return Status::invalid_argument("session " + id + " is running; wait for its turn to end");
  auto state = load(id);
  if (!state) co_return state.status();
  if (!state->calls_settled()) {
    co_return Status::invalid_argument("session " + id + " has tool calls without results (" +
                                       std::string(job_status_name(state->status())) +
                                       "); approve, deny or resume it first");
  }
  auto model = rt.model_for(*state);
  if (!model) co_return model.status();
  internal::Session session(rt, std::move(state).value(), *model, std::move(observer));
  Running running(rt, id, &session);
  auto begin = session.begin(content);
  if (Status s = co_await std::move(begin); !s) co_return s;
  auto run = session.run(true);
  Status s = co_await std::move(run);
  if (!s) co_return s;
  co_return RunResult{session.state(), session.state().status()};
}

Status Runtime::decide(std::string_view id, std::string_view call_id, bool approve,
                       std::string_view by) {
  auto state = load(id);
  if (!state) return state.status();
  for (const CallState& c : state->calls) {
    if (c.id != call_id) continue;
    if (c.result) return Status::invalid_argument("call " + c.id + " already has its result");
    if (!c.approval_requested)
      return Status::invalid_argument("call " + c.id + " does not wait for an approval");
    if (c.approved)
      return Status::invalid_argument("call " + c.id + " was already " +
                                      (*c.approved ? "approved" : "denied"));
    memory::NewEvent e = internal::approval_event(call_id, approve, by);
    auto seqs = impl_->store.append_events(id, std::span<const memory::NewEvent>(&e, 1));
    return seqs ? Status::ok() : seqs.status();
  }
  std::string pending;
  for (const CallState& c : state->calls) {
    if (c.approval_requested && !c.approved && !c.result)
      pending += (pending.empty() ? "" : ", ") + c.id;
  }
  return Status::not_found(
      "job " + std::string(id) + " has no call " + std::string(call_id) +
      (pending.empty() ? " (no call waits for an approval)" : " (waiting: " + pending + ")"));
}

Status Runtime::cancel_stored(std::string_view id) {
  auto state = load(id);
  if (!state) return state.status();
  if (state->finished) {
    return Status::invalid_argument("job " + std::string(id) + " already finished (" +
                                    state->finish_reason + ")");
  }
  memory::NewEvent e = internal::finished_event("cancelled", state->answer, state->steps,
                                                state->generated_tokens, "");
  auto seqs = impl_->store.append_events(id, std::span<const memory::NewEvent>(&e, 1));
  return seqs ? Status::ok() : seqs.status();
}

bool Runtime::stop(std::string_view id, StopMode mode) {
  auto it = impl_->running.find(id);
  if (it == impl_->running.end()) return false;
  it->second->stop(mode);
  return true;
}

void Runtime::stop_all(StopMode mode) {
  for (auto& [id, session] : impl_->running) session->stop(mode);
}

}  // namespace mnemo::agent
