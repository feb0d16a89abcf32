#include <mnemo/server/agent_hub.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

namespace mnemo::server {

namespace json = boost::json;

namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A value handed from the runtime's thread to a coroutine on another executor.
template <typename T>
class OneShot : public std::enable_shared_from_this<OneShot<T>> {
 public:
  explicit OneShot(asio::any_io_executor ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  void set(T value) {
    {
      std::lock_guard lock(mu_);
      if (value_) return;
      value_.emplace(std::move(value));
    }
    // The waiter may already have seen the value and gone: the wake-up keeps the timer alive.
    asio::post(timer_.get_executor(), [self = this->shared_from_this()] { self->timer_.cancel(); });
  }
  asio::awaitable<T> wait() {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (value_) co_return *value_;
      }
      boost::system::error_code ec;
      auto op = timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      co_await std::move(op);
    }
  }

 private:
  std::mutex mu_;
  std::optional<T> value_;
  asio::steady_timer timer_;
};

}  // namespace

HubMessage durable_message(std::string_view session, const memory::Event& event,
                           int64_t published_us) {
  HubMessage m;
  m.session = std::string(session);
  m.seq = event.seq;
  m.durable = true;
  m.type = event.type;
  boost::system::error_code ec;
  json::value payload = json::parse(event.payload, ec);
  if (ec) payload = json::string(event.payload);
  if (json::object* o = payload.if_object()) {
    o->erase("tokens");
    o->erase("sampler_state");
  }
  m.payload = json::serialize(payload);
  json::object env{{"type", event.type},
                   {"session_id", AgentHub::public_id(m.session)},
                   {"seq", event.seq},
                   {"unix_ms", event.unix_ms}};
  if (published_us) env["published_us"] = published_us;
  env["payload"] = std::move(payload);
  m.envelope = json::serialize(env);
  return m;
}

// ---------------------------------------------------------------------------------------- Feed

Feed::Feed(asio::any_io_executor executor, const memory::Store& store, size_t max_queued,
           std::shared_ptr<std::atomic<int64_t>> dropped_total)
    : executor_(std::move(executor)),
      store_(store),
      max_queued_(max_queued),
      dropped_total_(std::move(dropped_total)) {}

void Feed::watch(const std::string& session, uint64_t after_seq, bool live) {
  std::lock_guard lock(mu_);
  cursors_[session] = Cursor{after_seq, true, live};
}

void Feed::unwatch(const std::string& session) {
  std::lock_guard lock(mu_);
  cursors_.erase(session);
}

std::vector<std::string> Feed::watched() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, c] : cursors_) out.push_back(id);
  return out;
}

bool Feed::watching(const std::string& session) const {
  std::lock_guard lock(mu_);
  return cursors_.count(session) > 0;
}

bool Feed::push_control(std::string text) {
  {
    std::lock_guard lock(mu_);
    if (control_.size() >= 256) return false;
    control_.push_back(std::move(text));
  }
  wake();
  return true;
}

void Feed::deliver(const std::shared_ptr<const HubMessage>& message) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    auto it = cursors_.find(message->session);
    if (it == cursors_.end()) return;
    if (queue_.size() >= max_queued_) {
      // Not queued: a durable event is read back from the store once the client catches up.
      if (message->durable) it->second.catch_up = true;
      ++dropped_;
      if (dropped_total_ && message->durable) ++*dropped_total_;
      return;
    }
    queue_.push_back(message);
  }
  wake();
}

void Feed::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  wake();
}

uint64_t Feed::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void Feed::wake() {
  asio::post(executor_, [self = shared_from_this()] {
    if (self->timer_) self->timer_->cancel();
  });
}

std::vector<std::shared_ptr<const HubMessage>> Feed::read_store(const std::string& session,
                                                                Cursor& cursor, uint64_t upto) {
  constexpr size_t kBatch = 256;
  size_t limit = kBatch;
  if (upto > cursor.sent) limit = std::min<uint64_t>(kBatch, upto - cursor.sent);
  auto events = store_.read_events(session, cursor.sent, limit);
  std::vector<std::shared_ptr<const HubMessage>> out;
  if (!events) return out;
  for (const memory::Event& e : *events) {
    if (e.seq <= cursor.sent) continue;
    cursor.sent = e.seq;
    out.push_back(std::make_shared<HubMessage>(durable_message(session, e)));
  }
  if (upto == 0 && events->size() == limit) cursor.catch_up = true;  // more to read
  return out;
}

asio::awaitable<std::vector<std::shared_ptr<const HubMessage>>> Feed::next(
    std::chrono::milliseconds wait) {
  auto self = shared_from_this();
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(executor_);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    std::vector<std::shared_ptr<const HubMessage>> out;
    std::string gap_session;
    uint64_t gap_upto = 0;
    {
      std::lock_guard lock(mu_);
      if (closed_) co_return out;
      while (!control_.empty() && out.size() < 64) {
        auto m = std::make_shared<HubMessage>();
        m->envelope = std::move(control_.front());
        control_.pop_front();
        out.push_back(std::move(m));
      }
      if (!out.empty()) co_return out;
      while (!queue_.empty() && out.size() < 64) {
        std::shared_ptr<const HubMessage> m = queue_.front();
        auto it = cursors_.find(m->session);
        if (it == cursors_.end()) {
          queue_.pop_front();
          continue;
        }
        Cursor& c = it->second;
        if (m->durable) {
          if (m->seq <= c.sent) {
            queue_.pop_front();
            continue;
          }
          if (m->seq > c.sent + 1) {  // a gap: events dropped or not yet read from the store
            gap_session = m->session;
            gap_upto = m->seq - 1;
            break;
          }
          c.sent = m->seq;
          out.push_back(std::move(m));
        } else if (m->seq == 0 || (c.live && !c.catch_up && m->seq == c.sent + 1)) {
          // seq 0: a run's failure, not tied to an event
          out.push_back(std::move(m));
        }
        queue_.pop_front();
      }
      if (!out.empty()) co_return out;
      if (gap_session.empty()) {
        for (auto& [id, c] : cursors_) {
          if (c.catch_up) {
            c.catch_up = false;
            gap_session = id;
            break;
          }
        }
      }
    }
    if (!gap_session.empty()) {
      // Only this coroutine moves a cursor's `sent`, so the store is read outside the lock;
      // deliver() may set catch_up again meanwhile, which is kept.
      Cursor copy;
      {
        std::lock_guard lock(mu_);
        auto it = cursors_.find(gap_session);
        if (it == cursors_.end()) continue;
        copy = it->second;
      }
      Cursor moved = copy;
      moved.catch_up = false;
      out = read_store(gap_session, moved, gap_upto);
      {
        std::lock_guard lock(mu_);
        auto it = cursors_.find(gap_session);
        if (it != cursors_.end()) {
          it->second.sent = std::max(it->second.sent, moved.sent);
          if (moved.catch_up) it->second.catch_up = true;
        }
      }
      if (!out.empty()) co_return out;
      if (gap_upto) {
        // The store does not have them (cannot happen for committed events): skip the gap.
        std::lock_guard lock(mu_);
        auto it = cursors_.find(gap_session);
        if (it != cursors_.end()) it->second.sent = std::max(it->second.sent, gap_upto);
      }
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) co_return out;
    timer_->expires_at(deadline);
    boost::system::error_code ec;
    auto op = timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_await std::move(op);
    if (!ec) co_return out;  // the wait passed
  }
}

// ------------------------------------------------------------------------------------ AgentHub

struct AgentHub::Impl {
  // Declared before the io_context: job coroutines still queued when it goes reference it.
  std::unique_ptr<agent::Runtime> runtime;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::shared_ptr<Metrics> metrics;
  std::once_flag stopped;
};

AgentHub::AgentHub(memory::Store& store, HubOptions options)
    : store_(store), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (!options_.runtime.config)
    options_.runtime.config = std::make_shared<const agent::OperatorConfig>();
  options_.runtime.enforce_policy = true;
}

std::string AgentHub::store_id(std::string_view tenant, std::string_view id) {
  if (tenant.empty() || tenant == "local") return std::string(id);
  return std::string(tenant) + ":" + std::string(id);
}

std::string AgentHub::public_id(std::string_view store_id) {
  // Public ids never hold ':', so the last one ends the tenant.
  const size_t colon = store_id.rfind(':');
  return std::string(colon == std::string_view::npos ? store_id : store_id.substr(colon + 1));
}

std::string AgentHub::locate(std::string_view tenant, std::string_view id) const {
  std::string scoped = store_id(tenant, id);
  if (scoped != id && !store_.session(scoped)) {
    if (auto bare = store_.session(id); bare && bare->tenant == tenant) return std::string(id);
  }
  return scoped;
}

std::string AgentHub::tenant_of(std::string_view id) const {
  auto info = store_.session(id);
  return info ? info->tenant : std::string("local");
}

Result<std::string> AgentHub::workspace_for(std::string_view tenant, std::string_view id) const {
  namespace fs = std::filesystem;
  const std::string who(tenant.empty() ? "local" : tenant);
  // Neither part may walk out of its folder ("..", "."), whatever validated it before.
  for (std::string_view part : {std::string_view(who), id}) {
    if (part.empty() || part == "." || part == ".." || part.find('/') != std::string_view::npos)
      return Status::invalid_argument("'" + std::string(part) + "' cannot name a workspace");
  }
  std::error_code ec;
  fs::create_directories(fs::path(options_.workspace_root) / who, ec);
  if (ec) return Status::io_error("workspace root " + options_.workspace_root + ": " + ec.message());
  const fs::path tenant_dir = fs::canonical(fs::path(options_.workspace_root) / who, ec);
  if (ec) return Status::io_error("workspace root " + options_.workspace_root + ": " + ec.message());
  const fs::path root = fs::canonical(options_.workspace_root, ec);
  if (ec || tenant_dir.parent_path() != root)
    return Status::invalid_argument("the workspace of tenant " + who + " is not inside the root");
  const fs::path ws = tenant_dir / std::string(id);
  fs::create_directories(ws, ec);
  if (ec) return Status::io_error("workspace " + ws.string() + ": " + ec.message());
  // After resolution (a symlink planted in the tenant's folder) it must still lie strictly inside.
  const fs::path real = fs::canonical(ws, ec);
  if (ec || real.parent_path() != tenant_dir) {
    return Status::permission_denied("the workspace of job " + std::string(id) +
                                     " resolves outside its tenant's folder");
  }
  return real.string();
}

std::shared_ptr<AgentHub> AgentHub::create(memory::Store& store, HubOptions options,
                                           std::shared_ptr<Metrics> metrics) {
  std::shared_ptr<AgentHub> hub(new AgentHub(store, std::move(options)));
  Impl& impl = *hub->impl_;
  impl.metrics = std::move(metrics);
  impl.runtime =
      std::make_unique<agent::Runtime>(impl.io.get_executor(), store, hub->options_.runtime);
  impl.work.emplace(impl.io.get_executor());
  impl.thread = std::thread([&impl] {
    for (;;) {
      try {
        impl.io.run();
        return;
      } catch (const std::exception& e) {
        std::cerr << "mnemo serve: agent runtime: " << e.what() << '\n';
      }
    }
  });
  if (impl.metrics) {
    std::weak_ptr<AgentHub> weak = hub;
    impl.metrics->add_gauge("mnemo_jobs_running", "Agent runs in progress.", [weak] {
      auto h = weak.lock();
      return h ? h->running_count() : 0;
    });
  }
  return hub;
}

AgentHub::~AgentHub() { shutdown(std::chrono::milliseconds(0)); }

void AgentHub::shutdown(std::chrono::milliseconds grace) {
  std::call_once(impl_->stopped, [&] {
    asio::post(impl_->io, [this] { impl_->runtime->stop_all(agent::StopMode::kPause); });
    const auto until = std::chrono::steady_clock::now() + grace;
    while (running_count() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    impl_->work.reset();
    if (running_count() > 0) impl_->io.stop();
    impl_->thread.join();
  });
}

Result<memory::SessionInfo> AgentHub::find(std::string_view id, std::string_view tenant) const {
  auto info = store_.session(id);
  if (!info || info->tenant != tenant) return Status::not_found("no session " + std::string(id));
  return info;
}

Result<agent::JobState> AgentHub::load(std::string_view id) const {
  auto events = store_.read_events(id);
  if (!events) return events.status();
  if (events->empty()) return Status::not_found("no session " + std::string(id));
  return agent::replay_job(id, *events);
}

std::string AgentHub::job_json(const agent::JobState& state, bool with_messages) const {
  json::value v = json::parse(agent::job_json(state, with_messages));
  v.as_object()["id"] = public_id(state.id);
  if (running(state.id)) v.as_object()["status"] = "running";
  if (queued(state.id)) v.as_object()["status"] = "queued";
  return json::serialize(v);
}

bool AgentHub::running(std::string_view id) const {
  std::lock_guard lock(mu_);
  return running_.count(id) > 0;
}

bool AgentHub::queued(std::string_view id) const {
  std::lock_guard lock(mu_);
  return queued_.count(id) > 0;
}

bool AgentHub::has_slot(std::string_view tenant) const {
  const uint32_t slots = config().tenant(tenant).max_concurrent_jobs;
  std::lock_guard lock(mu_);
  size_t busy = 0;
  for (const auto& [sid, t] : running_) busy += t == tenant;
  return busy < slots;
}

int64_t AgentHub::running_count() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(running_.size());
}

void AgentHub::subscribe(const std::string& session, const std::shared_ptr<Feed>& feed) {
  std::lock_guard lock(mu_);
  auto& list = feeds_[session];
  for (auto& w : list) {
    if (w.lock() == feed) return;
  }
  list.push_back(feed);
}

void AgentHub::unsubscribe(const std::string& session, const Feed* feed) {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(session);
  if (it == feeds_.end()) return;
  std::erase_if(it->second, [feed](const std::weak_ptr<Feed>& w) {
    auto f = w.lock();
    return !f || f.get() == feed;
  });
  if (it->second.empty()) feeds_.erase(it);
}

int64_t AgentHub::watched_sessions() const {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [id, list] : feeds_) n += static_cast<int64_t>(list.size());
  return n;
}

void AgentHub::publish(const std::string& session, std::shared_ptr<const HubMessage> message) {
  std::vector<std::shared_ptr<Feed>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = feeds_.find(session);
    if (it == feeds_.end()) return;
    for (auto& w : it->second) {
      if (auto f = w.lock()) targets.push_back(std::move(f));
    }
  }
  for (auto& f : targets) f->deliver(message);
}

agent::JobObserver AgentHub::observer(const std::string& id) {
  agent::JobObserver o;
  o.on_event = [this, id](const memory::Event& e) {
    publish(id, std::make_shared<HubMessage>(durable_message(id, e, now_us())));
  };
  o.on_live = [this, id](const agent::LiveEvent& l) {
    auto m = std::make_shared<HubMessage>();
    m->session = id;
    m->seq = l.seq;
    m->type = l.type;
    json::object env{
        {"type", l.type}, {"session_id", public_id(id)}, {"seq", l.seq}, {"text", l.text}};
    if (l.type == "tool_call.args.delta") {
      env["tool_index"] = l.tool_index;
      env["name"] = l.name;
    } else if (l.type == "tool.exec.output.delta") {
      env["call_id"] = l.call_id;
      env["name"] = l.name;
      env["stream"] = l.stream;
    }
    m->envelope = json::serialize(env);
    publish(id, std::move(m));
  };
  return o;
}

void AgentHub::launch(const std::string& id, Run run, std::string tenant) {
  if (tenant.empty()) tenant = tenant_of(id);
  const uint32_t slots = config().tenant(tenant).max_concurrent_jobs;
  {
    std::lock_guard lock(mu_);
    size_t busy = 0;
    for (const auto& [sid, t] : running_) busy += t == tenant;
    if (busy >= slots) {
      if (queued_.insert(id).second) queues_[tenant].emplace_back(id, std::move(run));
      return;
    }
    running_.emplace(id, tenant);
  }
  auto self = shared_from_this();
  asio::co_spawn(
      impl_->io,
      [self, id, run = std::move(run)]() -> asio::awaitable<void> {
        auto op = run();
        Result<agent::RunResult> r = co_await std::move(op);
        self->run_ended(id);
        if (!r) {
          std::cerr << "mnemo serve: session " << id << ": " << r.status().message() << '\n';
          auto m = std::make_shared<HubMessage>();
          m->session = id;
          m->type = "error";
          m->envelope = json::serialize(json::object{{"type", "error"},
                                                     {"session_id", id},
                                                     {"code", "run_failed"},
                                                     {"message", r.status().message()}});
          self->publish(id, std::move(m));
        }
      },
      [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          std::cerr << "mnemo serve: agent run: " << x.what() << '\n';
        }
      });
}

void AgentHub::run_ended(const std::string& id) {
  std::pair<std::string, Run> next;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(id);
    if (it == running_.end()) return;
    const std::string tenant = it->second;
    running_.erase(it);
    auto q = queues_.find(tenant);
    if (q == queues_.end() || q->second.empty()) return;
    next = std::move(q->second.front());
    q->second.pop_front();
    if (q->second.empty()) queues_.erase(q);
    queued_.erase(next.first);
  }
  launch(next.first, std::move(next.second));
}

asio::awaitable<Result<std::string>> AgentHub::start(agent::NewJob job) {
  if (job.tenant.empty()) job.tenant = "local";
  if (job.id.empty()) job.id = store_id(job.tenant, agent::new_job_id(job.spec.name));
  if (job.workspace.empty() && !options_.workspace_root.empty()) {
    auto ws = workspace_for(job.tenant, public_id(job.id));
    if (!ws) co_return ws.status();
    job.workspace = *ws;
  }
  const std::string id = job.id;
  auto executor = co_await asio::this_coro::executor;
  auto ready = std::make_shared<OneShot<Status>>(executor);
  auto self = shared_from_this();
  asio::post(impl_->io, [self, ready, job = std::move(job)]() mutable {
    const std::string id = job.id;
    if (self->running(id)) {
      ready->set(Status::invalid_argument("session " + id + " already exists"));
      return;
    }
    agent::JobObserver obs = self->observer(id);
    obs.on_event = [inner = obs.on_event, ready](const memory::Event& e) {
      inner(e);
      if (e.type == "session.created") ready->set(Status::ok());
    };
    const std::string tenant = job.tenant;
    if (!self->has_slot(tenant)) {
      // Created now (so the client has its id and sees it queued), run when a slot frees.
      asio::co_spawn(
          self->impl_->io,
          [self, ready, job = std::move(job), tenant]() mutable -> asio::awaitable<void> {
            const std::string id = job.id;
            // Its own observer: the HTTP answer waits for the queueing, not for session.created.
            auto op = self->impl_->runtime->create(std::move(job), self->observer(id));
            Result<agent::JobState> created = co_await std::move(op);
            if (!created) {
              ready->set(created.status());
              co_return;
            }
            self->launch(
                id, [self, id] { return self->impl_->runtime->resume(id, self->observer(id)); },
                tenant);
            ready->set(Status::ok());
          },
          asio::detached);
      return;
    }
    self->launch(id,
                 [self, ready, job = std::move(job),
                  obs]() mutable -> asio::awaitable<Result<agent::RunResult>> {
                   auto op = self->impl_->runtime->start(std::move(job), std::move(obs));
                   Result<agent::RunResult> r = co_await std::move(op);
                   ready->set(r ? Status::ok() : r.status());
                   co_return r;
                 },
                 tenant);
  });
  auto wait = ready->wait();
  Status s = co_await std::move(wait);
  if (!s) co_return s;
  co_return id;
}

asio::awaitable<Status> AgentHub::resume(std::string id) {
  auto self = shared_from_this();
  auto op = asio::co_spawn(
      impl_->io,
      [self, id]() -> asio::awaitable<Status> {
        if (self->running(id)) co_return Status::invalid_argument("session " + id + " is running");
        auto state = self->load(id);
        if (!state) co_return state.status();
        if (state->finished && !state->retryable()) co_return Status::ok();  // a failed run is retried
        self->launch(id,
                     [self, id] { return self->impl_->runtime->resume(id, self->observer(id)); });
        co_return Status::ok();
      },
      asio::use_awaitable);
  co_return co_await std::move(op);
}

asio::awaitable<Status> AgentHub::input(std::string id, std::string content) {
  auto self = shared_from_this();
  auto op = asio::co_spawn(
      impl_->io,
      [self, id, content]() -> asio::awaitable<Status> {
        if (self->running(id))
          co_return Status::invalid_argument("session " + id +
                                             " is running; wait for its run to end");
        auto state = self->load(id);
        if (!state) co_return state.status();
        if (!state->calls_settled())
          co_return Status::invalid_argument("session " + id + " has tool calls without results (" +
                                             std::string(agent::job_status_name(state->status())) +
                                             "); approve or deny them");
        self->launch(id, [self, id, content] {
          return self->impl_->runtime->input(id, content, self->observer(id));
        });
        co_return Status::ok();
      },
      asio::use_awaitable);
  co_return co_await std::move(op);
}

asio::awaitable<Status> AgentHub::decide(std::string id, std::string call_id, bool approve,
                                         std::string by) {
  auto self = shared_from_this();
  auto op = asio::co_spawn(
      impl_->io,
      [self, id, call_id, approve, by]() -> asio::awaitable<Status> {
        if (self->running(id)) co_return Status::invalid_argument("session " + id + " is running");
        if (Status s = self->impl_->runtime->decide(id, call_id, approve, by); !s) co_return s;
        self->launch(id,
                     [self, id] { return self->impl_->runtime->resume(id, self->observer(id)); });
        co_return Status::ok();
      },
      asio::use_awaitable);
  co_return co_await std::move(op);
}

asio::awaitable<Status> AgentHub::cancel(std::string id) {
  auto self = shared_from_this();
  auto op = asio::co_spawn(
      impl_->io,
      [self, id]() -> asio::awaitable<Status> {
        if (self->impl_->runtime->stop(id, agent::StopMode::kCancel)) co_return Status::ok();
        {
          std::lock_guard lock(self->mu_);
          if (self->queued_.erase(id)) {
            for (auto& [tenant, q] : self->queues_)
              std::erase_if(q, [&](const auto& item) { return item.first == id; });
          }
        }
        co_return self->impl_->runtime->cancel_stored(id);
      },
      asio::use_awaitable);
  co_return co_await std::move(op);
}

}  // namespace mnemo::server
