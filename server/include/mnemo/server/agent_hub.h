#pragma once
// The agent runtime behind the job API and the WebSocket sessions (docs/protocol.md): one Runtime
// on its own thread (the runtime is not thread-safe: every call and every job coroutine runs there),
// the store it shares with the server, and the fan-out of each session's events to the connections
// that watch it. Durable events are always re-readable from the store by seq, so a connection's
// queue is bounded: when it is full, new events are not queued and the connection catches up from
// the store instead (a slow client gets backpressure, never unbounded buffering).
#include <mnemo/agent/job_state.h>
#include <mnemo/agent/runtime.h>
#include <mnemo/base/status.h>
#include <mnemo/memory/store.h>
#include <mnemo/server/metrics.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::server {

namespace asio = boost::asio;

// One message for clients: a durable event (with its seq) or a live delta (with the seq of the
// durable event it leads to), already in the WebSocket envelope.
struct HubMessage {
  std::string session;
  uint64_t seq = 0;
  bool durable = false;
  std::string type;
  std::string envelope;  // {"type", "session_id", "seq", ...}: the WebSocket message
  std::string payload;   // durable: the payload as clients see it (the SSE data)
};

// The envelope of a stored event: {"type", "session_id", "seq", "unix_ms", "payload"}; the
// runtime's internals (token ids, sampler state) are left out of the payload.
HubMessage durable_message(std::string_view session, const memory::Event& event,
                           int64_t published_us = 0);

// The events one connection receives, for the sessions it watches. deliver() is called from the
// runtime's thread; next() runs on the connection's executor.
class Feed : public std::enable_shared_from_this<Feed> {
 public:
  // `dropped_total`, when given, counts the durable events not queued (and so sent from the store
  // later) over every feed, for /metrics.
  Feed(asio::any_io_executor executor, const memory::Store& store, size_t max_queued = 1024,
       std::shared_ptr<std::atomic<int64_t>> dropped_total = nullptr);

  // Starts watching a session: durable events after `after_seq` come from the store first, then
  // as they are committed; `live` adds the live deltas. Watching it again restarts it.
  void watch(const std::string& session, uint64_t after_seq, bool live = true);
  void unwatch(const std::string& session);
  std::vector<std::string> watched() const;
  bool watching(const std::string& session) const;
  // A message of the connection itself (pong, errors, session.attached): sent before events.
  // False when too many wait (the client does not read).
  bool push_control(std::string text);
  // Any thread.
  void deliver(const std::shared_ptr<const HubMessage>& message);
  // Wakes next() for good.
  void close();

  // The next messages in order, without gaps or duplicates per session; empty after close() or
  // when `wait` passed with nothing to send.
  asio::awaitable<std::vector<std::shared_ptr<const HubMessage>>> next(
      std::chrono::milliseconds wait = std::chrono::hours(24));

  // Messages not queued because the queue was full (they were sent from the store later).
  uint64_t dropped() const;

 private:
  struct Cursor {
    uint64_t sent = 0;
    bool catch_up = false;
    bool live = true;
  };
  std::vector<std::shared_ptr<const HubMessage>> read_store(const std::string& session,
                                                            Cursor& cursor, uint64_t upto);
  void wake();

  asio::any_io_executor executor_;
  const memory::Store& store_;
  size_t max_queued_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const HubMessage>> queue_;
  std::deque<std::string> control_;
  std::map<std::string, Cursor, std::less<>> cursors_;
  bool closed_ = false;
  uint64_t dropped_ = 0;
  std::shared_ptr<std::atomic<int64_t>> dropped_total_;
  std::unique_ptr<asio::steady_timer> timer_;
};

struct HubOptions {
  // runtime.config is the operator's configuration (null: the built-in defaults); the hub always
  // holds jobs to their tenant's policy.
  agent::RuntimeOptions runtime;
  // Jobs' tools work in WORKSPACE_ROOT/TENANT/ID (created); empty: the server's directory.
  std::string workspace_root;
};

class AgentHub : public std::enable_shared_from_this<AgentHub> {
 public:
  // Starts the runtime's thread. `store` must outlive the hub.
  static std::shared_ptr<AgentHub> create(memory::Store& store, HubOptions options,
                                          std::shared_ptr<Metrics> metrics = nullptr);
  ~AgentHub();

  memory::Store& store() { return store_; }
  const HubOptions& options() const { return options_; }
  const agent::OperatorConfig& config() const { return *options_.runtime.config; }

  // Ids are scoped per tenant: a session's id in the store is "TENANT:ID" (the local tenant's are
  // bare, as the CLI makes them); clients only ever see their own ID. Tenants' ids never collide.
  static std::string store_id(std::string_view tenant, std::string_view id);
  static std::string public_id(std::string_view store_id);
  // The store id of the tenant's session `id`: scoped, or bare for one an older server made.
  std::string locate(std::string_view tenant, std::string_view id) const;

  // The session (by its store id) when it exists and belongs to `tenant`; otherwise not found
  // (another tenant's session does not exist for the caller).
  Result<memory::SessionInfo> find(std::string_view id, std::string_view tenant) const;
  // The job as its log tells it.
  Result<agent::JobState> load(std::string_view id) const;
  // agent::job_json with the public id, and status "running" while a run of it is in progress
  // here, "queued" while it waits for one of its tenant's slots.
  std::string job_json(const agent::JobState& state, bool with_messages) const;
  bool running(std::string_view id) const;
  bool queued(std::string_view id) const;
  int64_t running_count() const;

  // Starts a job in the background (job.id: its store id; job.tenant set); completes once its
  // session exists (session.created is committed) with its store id, or with the error that
  // refused it: permission denied when the tenant's policy does. Beyond the tenant's
  // max_concurrent_jobs the job is created and queued.
  asio::awaitable<Result<std::string>> start(agent::NewJob job);
  // Continues a stored job in the background; an error when it runs already.
  asio::awaitable<Status> resume(std::string id);
  // A new user message and a new run, in the background (Runtime::input's rules).
  asio::awaitable<Status> input(std::string id, std::string content);
  // Records an approval or a denial, then continues the job in the background.
  asio::awaitable<Status> decide(std::string id, std::string call_id, bool approve,
                                 std::string by);
  // Stops a running job as cancelled, or finishes a stored one as cancelled.
  asio::awaitable<Status> cancel(std::string id);

  void subscribe(const std::string& session, const std::shared_ptr<Feed>& feed);
  void unsubscribe(const std::string& session, const Feed* feed);
  // Sessions watched by connections now (the mnemo_sessions gauge).
  int64_t watched_sessions() const;

  // Pauses the jobs running here (they stay resumable), waits up to `grace` for them to stop, and
  // stops the runtime's thread. Call before the server (and its executors) goes away.
  void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  struct Impl;

 private:
  AgentHub(memory::Store& store, HubOptions options);
  using Run = std::function<asio::awaitable<Result<agent::RunResult>>()>;
  agent::JobObserver observer(const std::string& id);
  void publish(const std::string& session, std::shared_ptr<const HubMessage> message);
  // Runs `run` now, or queues it when the session's tenant runs as many jobs as it may.
  // `tenant`: the session's (looked up when empty; a job being created has no session yet).
  void launch(const std::string& id, Run run, std::string tenant = {});
  // A run ended: the tenant's next queued one starts.
  void run_ended(const std::string& id);
  std::string tenant_of(std::string_view id) const;
  bool has_slot(std::string_view tenant) const;
  // WORKSPACE_ROOT/TENANT/ID, checked to lie strictly inside the tenant's folder.
  Result<std::string> workspace_for(std::string_view tenant, std::string_view id) const;

  memory::Store& store_;
  HubOptions options_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::weak_ptr<Feed>>, std::less<>> feeds_;
  // Guarded by mu_, written on the runtime thread.
  std::map<std::string, std::string, std::less<>> running_;  // store id -> tenant
  std::map<std::string, std::deque<std::pair<std::string, Run>>, std::less<>> queues_;  // by tenant
  std::set<std::string, std::less<>> queued_;
};

}  // namespace mnemo::server
