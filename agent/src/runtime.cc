#include <mnemo/agent/runtime.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
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

namespace {

fs::path running_marker(const std::string& store_dir, std::string_view id) {
  return fs::path(store_dir) / "control" / (std::string(id) + ".running");
}

}  // namespace

bool job_running(const std::string& store_dir, std::string_view id) {
  const int fd = ::open(running_marker(store_dir, id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

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

Result<JobSpec> Runtime::Impl::effective_spec(const JobSpec& spec, std::string_view tenant,
                                              bool operator_job) const {
  if (options.enforce_policy && options.config && !operator_job)
    return apply_policy(spec, *options.config, tenant);
  JobSpec out = spec;
  MNEMO_RETURN_IF_ERROR(resolve_endpoint(out, options.config.get()));
  MNEMO_RETURN_IF_ERROR(check_machine_limits(out));
  return out;
}

const TenantPolicy* Runtime::Impl::policy_for(std::string_view tenant) const {
  if (!options.enforce_policy || !options.config) return nullptr;
  return &options.config->tenant(tenant);
}

Result<JobState> Runtime::Impl::load(std::string_view id) const {
  auto info = store.session(id);
  if (!info) return Status::not_found("no job " + std::string(id));
  auto events = store.read_events(id);
  if (!events) return events.status();
  if (events->empty()) return Status::not_found("no job " + std::string(id));
  auto state = replay_job(id, *events);
  if (!state) return state.status();
  auto spec = effective_spec(state->spec, info->tenant, state->origin.operator_job);
  if (!spec) return spec.status().with_context("job " + std::string(id));
  state->spec = std::move(spec).value();
  return state;
}

Result<JobState> Runtime::load(std::string_view id) const { return impl_->load(id); }

namespace {

// Keeps a session registered as running for the duration of its run, and holds an exclusive
// lock on STORE/control/ID.running meanwhile, so that other processes see it running (the kernel
// drops the lock when the process dies, however it dies).
struct Running {
  Runtime::Impl& rt;
  std::string id;
  int fd = -1;
  Running(Runtime::Impl& r, std::string i, internal::Session* s) : rt(r), id(std::move(i)) {
    rt.running[id] = s;
    if (rt.running.size() == 1) rt.poll_control();
    if (rt.store.read_only()) return;
    std::error_code ec;
    const fs::path marker = running_marker(rt.store.dir(), id);
    fs::create_directories(marker.parent_path(), ec);
    fd = ::open(marker.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~Running() {
    rt.running.erase(id);
    if (rt.running.empty() && rt.control_timer) rt.control_timer->cancel();
    if (fd >= 0) {
      std::error_code ec;
      fs::remove(running_marker(rt.store.dir(), id), ec);
      ::close(fd);
    }
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

namespace {

// Checks a new job, creates its session with its first input and, with `run`, runs it (registered
// as running from the start, so a stop that arrives while it is being created is not lost).
asio::awaitable<Result<RunResult>> create_job(Runtime::Impl& rt, NewJob job, JobObserver observer,
                                              bool run) {
  const std::string tenant = job.tenant.empty() ? rt.options.tenant : job.tenant;
  {
    auto effective = rt.effective_spec(job.spec, tenant, job.operator_job);
    if (!effective) co_return effective.status();
    job.spec = std::move(effective).value();
  }
  if (job.spec.model.kind == ModelKind::kRemote && !job.spec.model.remote.api_key_env.empty() &&
      !std::getenv(job.spec.model.remote.api_key_env.c_str())) {
    co_return Status::invalid_argument(
        job.spec.where("model.remote.api_key_env") + ": " + job.spec.model.remote.api_key_env +
        " is not set in " + (rt.options.enforce_policy ? "the server's" : "this") +
        " environment (the endpoint's API key is read from it)");
  }
  JobOrigin origin;
  origin.spec_yaml = job.spec_yaml;
  origin.spec_file = job.spec_file;
  origin.inputs = job.inputs;
  origin.operator_job = job.operator_job;
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
  state.origin = origin;
  // The first prompt is rendered and checked before anything is stored: a refused job leaves
  // nothing behind.
  internal::Session session(rt, state, model, std::move(observer));
  std::optional<Running> running;
  if (run) running.emplace(rt, state.id, &session);
  if (const TenantPolicy* p = job.operator_job ? nullptr : rt.policy_for(tenant))
    session.set_input_ceiling(p->ceilings.prompt_tokens);
  auto prepared = session.prepare_input(*input);
  if (!prepared) co_return prepared.status();

  memory::NewEvent created = internal::session_created_event(origin, job.spec.name);
  if (Status s = rt.store.create_session(state.id, tenant, created.payload); !s) co_return s;
  auto events = rt.store.read_events(state.id);
  if (!events) co_return events.status();
  auto replayed = replay_job(state.id, *events);
  if (!replayed) co_return replayed.status();
  replayed->spec = job.spec;
  session.adopt(std::move(replayed).value());
  for (const memory::Event& e : *events) session.notify(e);
  auto commit = session.commit_input(std::move(prepared).value());
  if (Status s = co_await std::move(commit); !s) co_return s;
  if (run) {
    auto r = session.run(false);
    if (Status s = co_await std::move(r); !s) co_return s;
  }
  co_return RunResult{session.state(), session.state().status()};
}

}  // namespace

asio::awaitable<Result<RunResult>> Runtime::start(NewJob job, JobObserver observer) {
  auto op = create_job(*impl_, std::move(job), std::move(observer), true);
  co_return co_await std::move(op);
}

asio::awaitable<Result<JobState>> Runtime::create(NewJob job, JobObserver observer) {
  auto op = create_job(*impl_, std::move(job), std::move(observer), false);
  auto r = co_await std::move(op);
  if (!r) co_return r.status();
  co_return std::move(r->state);
}


Result<internal::EmbeddedModel*> Runtime::Impl::model_for(const JobState& state) {
  if (state.spec.model.kind == ModelKind::kRemote)
    return static_cast<internal::EmbeddedModel*>(nullptr);
  const std::string& dir = state.origin.model_dir;
  if (dir.empty())
    return Status::unsupported("job " + state.id + " has no embedded model to run on");
  auto m = model(dir, state.spec.model.embedded.precision);
  if (!m) return m.status();
  // Jobs started before the KV format changed recorded the fingerprint of that format (kv_state.h): the
  // same model, whose old snapshots are refused and prefilled instead.
  if ((*m)->model->fingerprint() != state.origin.fingerprint &&
      (*m)->model->fingerprint_at_kv_format(1) != state.origin.fingerprint) {
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
  if (state->finished && !state->retryable()) co_return RunResult{*state, state->status()};
  auto model = rt.model_for(*state);
  if (!model) co_return model.status();
  const bool retry = state->retryable();
  internal::Session session(rt, std::move(state).value(), *model, std::move(observer));
  Running running(rt, id, &session);
  if (retry) {
    auto r = session.retry();
    if (Status s = co_await std::move(r); !s) co_return s;
  }
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
  if (auto info = rt.store.session(id); info && !session.state().origin.operator_job) {
    if (const TenantPolicy* p = rt.policy_for(info->tenant))
      session.set_input_ceiling(p->ceilings.prompt_tokens);
  }
  Running running(rt, id, &session);
  auto begin = session.begin(content);
  if (Status s = co_await std::move(begin); !s) co_return s;
  auto run = session.run(true);
  Status s = co_await std::move(run);
  if (!s) co_return s;
  co_return RunResult{session.state(), session.state().status()};
}

namespace {

// The job as its log tells it, without its tenant's policy: deciding a call or cancelling a job
// stays possible after the operator tightened the policy.
Result<JobState> replay_stored(const memory::Store& store, std::string_view id) {
  auto events = store.read_events(id);
  if (!events) return events.status();
  if (events->empty()) return Status::not_found("no job " + std::string(id));
  return replay_job(id, *events);
}

}  // namespace

Status Runtime::decide(std::string_view id, std::string_view call_id, bool approve,
                       std::string_view by) {
  auto state = replay_stored(impl_->store, id);
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
  // A call of an earlier turn was settled long ago: that is a state conflict, not an unknown call.
  for (const inference::ChatMessage& m : state->messages) {
    for (const inference::ToolCall& c : m.tool_calls) {
      if (c.id == call_id)
        return Status::invalid_argument("call " + c.id + " of an earlier step already has its result");
    }
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
  auto state = replay_stored(impl_->store, id);
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
