// GCC 12 reports -Wmismatched-new-delete for Asio's coroutine frames (a class-specific operator
// new/delete pair it does not match across inlined frame destruction): a known false positive,
// silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <mnemo/agent/job_spec.h>
#include <mnemo/server/operator_channel.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <thread>

namespace mnemo::server {

namespace json = boost::json;
using local = asio::local::stream_protocol;

std::string operator_socket_path(const std::string& store_dir) {
  return (std::filesystem::path(store_dir) / "operator.sock").string();
}

struct OperatorChannel::Impl {
  std::string path;
  std::shared_ptr<AgentHub> hub;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  local::acceptor acceptor{io};
  std::thread thread;
};

namespace {

constexpr size_t kMaxRequestBytes = agent::kMaxJobBytes + 64 * 1024;

std::string str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The uid of the process at the other end, or -1.
int64_t peer_uid(local::socket& socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
  return cred.uid;
}

asio::awaitable<bool> send(local::socket& socket, std::string line) {
  line += '\n';
  boost::system::error_code ec;
  co_await asio::async_write(socket, asio::buffer(line),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<void> send_error(local::socket& socket, const std::string& message) {
  json::object o;
  o["type"] = "error";
  o["message"] = message;
  co_await send(socket, json::serialize(o));
}

// Starts what the request asks; the store id of the job to follow, and the seq after which its
// events are new.
asio::awaitable<Result<std::pair<std::string, uint64_t>>> begin(AgentHub& hub,
                                                                const std::shared_ptr<Feed>& feed,
                                                                const json::object& req) {
  const std::string op = str(req, "op");
  std::string id = str(req, "id");
  if (op == "run") {
    auto spec = agent::parse_job_spec(str(req, "spec_yaml"), str(req, "spec_file"));
    if (!spec) co_return spec.status();
    agent::NewJob job;
    job.spec = std::move(spec).value();
    job.spec_yaml = str(req, "spec_yaml");
    job.spec_file = str(req, "spec_file");
    if (const json::value* in = req.if_contains("inputs"); in && in->is_object()) {
      for (const auto& kv : in->get_object())
        if (kv.value().is_string()) job.inputs[std::string(kv.key())] = kv.value().get_string();
    }
    job.id = id.empty() ? agent::new_job_id(job.spec.name) : id;
    job.workspace = str(req, "workspace");
    if (job.workspace.empty())
      co_return Status::invalid_argument("the request names no workspace");
    job.tenant = "local";
    job.operator_job = true;
    id = job.id;
    feed->watch(id, 0, false);
    hub.subscribe(id, feed);
    auto op_start = hub.start(std::move(job));
    auto started = co_await std::move(op_start);
    if (!started) co_return started.status();
    co_return std::make_pair(*started, uint64_t{0});
  }
  if (op != "resume" && op != "approve" && op != "deny")
    co_return Status::invalid_argument("unknown op '" + op + "' (run, resume, approve, deny)");
  auto info = hub.find(id, "local");
  if (!info) co_return Status::not_found("no job " + id);
  feed->watch(id, info->last_seq, false);
  hub.subscribe(id, feed);
  Status s;
  if (op == "resume") {
    const std::string message = str(req, "message");
    auto a = message.empty() ? hub.resume(id) : hub.input(id, message);
    s = co_await std::move(a);
  } else {
    auto a = hub.decide(id, str(req, "call_id"), op == "approve", "cli");
    s = co_await std::move(a);
  }
  if (!s) co_return s;
  co_return std::make_pair(id, info->last_seq);
}

asio::awaitable<void> serve(std::shared_ptr<AgentHub> hub, local::socket socket) {
  const auto uid = peer_uid(socket);
  if (uid != static_cast<int64_t>(::geteuid()) && uid != 0) {
    const std::string refusal = "the operator channel serves only the server's own user";
    co_await send_error(socket, refusal);
    co_return;
  }
  std::string line;
  boost::system::error_code ec;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(line, kMaxRequestBytes), '\n',
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_await send_error(socket, "expected one JSON request line of at most " +
                                    std::to_string(kMaxRequestBytes) + " bytes");
    co_return;
  }
  json::value req = json::parse(std::string_view(line).substr(0, line.find('\n')), ec);
  if (ec || !req.is_object()) {
    const std::string message = "the request is not a JSON object";
    co_await send_error(socket, message);
    co_return;
  }
  auto feed = std::make_shared<Feed>(co_await asio::this_coro::executor, hub->store());
  auto op = begin(*hub, feed, req.as_object());
  auto begun = co_await std::move(op);
  if (!begun) {
    co_await send_error(socket, begun.status().message());
    co_return;
  }
  const std::string id = begun->first;
  struct Unsubscribe {
    AgentHub& hub;
    std::string id;
    Feed* feed;
    ~Unsubscribe() { hub.unsubscribe(id, feed); }
  } unsubscribe{*hub, id, feed.get()};
  json::object started;
  started["type"] = "started";
  started["id"] = id;
  if (!co_await send(socket, json::serialize(started))) co_return;
  // Events until the run stops: then once more what is left, and the job.
  for (bool last = false;;) {
    const bool stopped = !hub->running(id) && !hub->queued(id);
    auto next = feed->next(std::chrono::milliseconds(stopped ? 50 : 250));
    for (const auto& m : co_await std::move(next)) {
      if (m->durable && !co_await send(socket, m->envelope)) co_return;  // the client went away
    }
    if (last) break;
    last = stopped;
  }
  auto state = hub->load(id);
  if (!state) {
    co_await send_error(socket, state.status().message());
    co_return;
  }
  json::object end;
  end["type"] = "end";
  end["job"] = json::parse(hub->job_json(*state, true));
  co_await send(socket, json::serialize(end));
}

asio::awaitable<void> accept_loop(OperatorChannel::Impl& impl) {
  for (;;) {
    boost::system::error_code ec;
    local::socket socket = co_await impl.acceptor.async_accept(
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !impl.acceptor.is_open()) co_return;
      continue;
    }
    asio::co_spawn(impl.io, serve(impl.hub, std::move(socket)), asio::detached);
  }
}

}  // namespace

OperatorChannel::OperatorChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OperatorChannel::~OperatorChannel() {
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  std::error_code fec;
  std::filesystem::remove(impl_->path, fec);
}

Result<std::unique_ptr<OperatorChannel>> OperatorChannel::start(const std::string& socket_path,
                                                                std::shared_ptr<AgentHub> hub) {
  auto impl = std::make_unique<Impl>();
  impl->path = socket_path;
  impl->hub = std::move(hub);
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path))
    return Status::invalid_argument("the socket path " + socket_path + " is too long for a Unix socket");
  std::error_code fec;
  std::filesystem::remove(socket_path, fec);  // a stale socket: this process holds the store now
  boost::system::error_code ec;
  impl->acceptor.open(local(), ec);
  if (!ec) impl->acceptor.bind(local::endpoint(socket_path), ec);
  // Owner only before anyone can connect (a bound socket accepts nothing until it listens); the
  // peer credentials are checked on every connection as well.
  if (!ec && ::chmod(socket_path.c_str(), 0600) != 0)
    ec = boost::system::error_code(errno, boost::system::system_category());
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::io_error("operator socket " + socket_path + ": " + ec.message());
  Impl& ref = *impl;
  asio::co_spawn(ref.io, accept_loop(ref), asio::detached);
  ref.thread = std::thread([&ref] { ref.io.run(); });
  return std::unique_ptr<OperatorChannel>(new OperatorChannel(std::move(impl)));
}

}  // namespace mnemo::server
