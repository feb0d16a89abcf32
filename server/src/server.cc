#include <mnemo/server/server.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <charconv>
#include <csignal>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace mnemo::server {
namespace {

using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string endpoint_text(const tcp::endpoint& ep) {
  const asio::ip::address a = ep.address();
  std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return host + ":" + std::to_string(ep.port());
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, std::min(target.find('?'), target.size()));
}

std::string allow_header(const std::vector<http::verb>& methods) {
  std::string out;
  for (http::verb v : methods) {
    if (!out.empty()) out += ", ";
    out += std::string(http::to_string(v));
  }
  return out;
}

}  // namespace

Result<tcp::endpoint> parse_listen_address(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == listen.size()) {
    return Status::invalid_argument("--listen '" + std::string(listen) +
                                    "': expected HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string host(listen.substr(0, colon));
  std::string_view port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [end, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return Status::invalid_argument("--listen '" + std::string(listen) + "': bad port '" +
                                    std::string(port_text) + "'");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::invalid_argument("--listen '" + std::string(listen) + "': '" + host +
                                    "' is not an IP address");
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

namespace {

// A TLS server context from PEM files: TLS 1.2 and later only.
Result<std::unique_ptr<asio::ssl::context>> make_tls_context(const std::string& cert,
                                                             const std::string& key) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) return Status::invalid_argument("--tls-cert " + cert + ": " + ec.message());
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) return Status::invalid_argument("--tls-key " + key + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Status::invalid_argument("--tls-key " + key + " does not belong to --tls-cert " + cert);
  return ctx;
}

}  // namespace

Status check_listen_policy(std::string_view listen, bool has_auth) {
  auto ep = parse_listen_address(listen);
  if (!ep) return ep.status();
  if (has_auth || ep->address().is_loopback()) return Status::ok();
  return Status::invalid_argument("refusing to serve on " + std::string(listen) +
                                  " without API keys: only a loopback address may be served "
                                  "without authentication");
}

class Connection;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  // First member, destroyed last: coroutine frames it still holds reference the rest.
  asio::io_context io;
  ServerOptions options;
  std::shared_ptr<const Router> router;
  std::shared_ptr<Metrics> metrics;
  tcp::acceptor acceptor{io};
  asio::signal_set signals{io};
  asio::steady_timer grace{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::endpoint bound;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::map<Connection*, std::weak_ptr<Connection>> connections;
  std::once_flag joined;

  // With --tls-cert/--tls-key: every connection speaks TLS.
  std::unique_ptr<asio::ssl::context> tls;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> handshake(tcp::socket socket);
  void add_connection(Stream stream);
  void begin_shutdown();  // on the io threads
  void connection_ended(Connection* c);
  void stop_now();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& server, Stream stream) : server_(server), stream_(std::move(stream)) {}

  asio::awaitable<void> run();
  // On the connection's strand: a connection waiting for its next request is closed at once.
  void close_if_idle() {
    if (!busy_) stream_.tcp().cancel();
  }
  void close() { stream_.tcp().cancel(); }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  asio::awaitable<bool> handle(HttpRequest& request);
  asio::awaitable<void> refuse(HttpRequest& header, http::status status, std::string message);

  Server::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  bool busy_ = false;
  bool released_ = false;
};

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  const ServerOptions& opt = server_.options;
  for (;;) {
    if (server_.stopping) break;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(opt.header_limit));
    parser.body_limit(opt.body_limit);
    busy_ = false;
    stream_.tcp().expires_after(opt.read_timeout);
    auto read = http::async_read(stream_, buffer_, parser, kTuple);
    auto [ec, n] = co_await std::move(read);
    busy_ = true;
    if (ec == http::error::body_limit) {
      auto refusal = refuse(parser.get(), http::status::payload_too_large,
                            "the request body is over the limit of " +
                                std::to_string(opt.body_limit) + " bytes");
      co_await std::move(refusal);
      break;
    }
    if (ec == http::error::header_limit) {
      auto refusal = refuse(parser.get(), http::status::request_header_fields_too_large,
                            "the request header is over the limit of " +
                                std::to_string(opt.header_limit) + " bytes");
      co_await std::move(refusal);
      break;
    }
    // A closed, timed-out (slow client) or cancelled connection just ends.
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      break;
    }
    if (ec) {
      auto refusal = refuse(parser.get(), http::status::bad_request,
                            "malformed HTTP request: " + ec.message());
      co_await std::move(refusal);
      break;
    }
    stream_.tcp().expires_never();
    HttpRequest request = parser.release();
    auto handled = handle(request);
    const bool again = co_await std::move(handled);
    if (released_) {
      server_.connection_ended(this);
      co_return;
    }
    if (!again) break;
  }
  boost::system::error_code ignored;
  stream_.tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.tcp().close();
  server_.connection_ended(this);
}

// Answers an unreadable request and lets the client finish sending before the close, so that it
// reads the answer instead of a reset.
asio::awaitable<void> Connection::refuse(HttpRequest& header, http::status status,
                                         std::string message) {
  header.keep_alive(false);
  Exchange ex(stream_, buffer_, header, std::string(kLocalTenant), {},
              server_.options.write_timeout);
  auto write = ex.respond_error(status, message);
  co_await std::move(write);
  server_.metrics->count_response(ex.status());
  boost::system::error_code ignored;
  stream_.tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::vector<char> sink(64 * 1024);
  size_t drained = 0;
  stream_.tcp().expires_after(std::chrono::seconds(2));
  while (drained < 64 * 1024 * 1024) {
    auto read = stream_.async_read_some(asio::buffer(sink), kTuple);
    auto [ec, n] = co_await std::move(read);
    if (ec) break;
    drained += n;
  }
}

asio::awaitable<bool> Connection::handle(HttpRequest& request) {
  Metrics& metrics = *server_.metrics;
  metrics.request_started();
  const std::string_view path = path_of(request.target());
  Router::Match m = server_.router->match(request.method(), path);
  std::string tenant(kLocalTenant);
  std::optional<HttpResponse> early;
  if (!m.handler && m.allowed.empty()) {
    early = error_response(http::status::not_found,
                           "no route " + std::string(request.method_string()) + " " +
                               std::string(path),
                           {}, {}, "not_found");
  } else if (!m.handler) {
    early = error_response(http::status::method_not_allowed,
                           std::string(request.method_string()) + " is not allowed on " +
                               std::string(path) + " (allowed: " + allow_header(m.allowed) + ")",
                           {}, {}, "method_not_allowed");
    early->set(http::field::allow, allow_header(m.allowed));
  } else if (Refusal r = check_browser_rules(request, server_.options.auth != nullptr, stream_.tls(),
                                             server_.options.allowed_origins);
             r.status != 0) {
    early = error_response(static_cast<http::status>(r.status), r.message, {}, {}, r.code);
  } else if (!m.options.open && server_.options.auth) {
    std::string_view header = request[http::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    if (!header.starts_with(kBearer)) {
      early = error_response(http::status::unauthorized,
                             "missing API key: send it as 'Authorization: Bearer KEY'", {}, {},
                             "missing_api_key");
    } else {
      auto found = server_.options.auth->tenant(header.substr(kBearer.size()));
      if (!found) {
        early = error_response(http::status::internal_server_error,
                               "cannot check the API key: " + found.status().message());
      } else if (!found->has_value()) {
        early = error_response(http::status::unauthorized, "invalid API key", {}, {},
                               "invalid_api_key");
      } else {
        tenant = **found;
      }
    }
    if (early && early->result() == http::status::unauthorized) {
      early->set(http::field::www_authenticate, "Bearer");
    }
  }
  Exchange ex(stream_, buffer_, request, std::move(tenant), std::move(m.params),
              server_.options.write_timeout);
  if (early) {
    auto write = ex.respond(std::move(*early));
    co_await std::move(write);
  } else {
    std::exception_ptr failure;
    try {
      auto run = (*m.handler)(ex);
      co_await std::move(run);
    } catch (const std::exception& e) {
      failure = std::current_exception();
      std::cerr << "mnemo serve: " << request.method_string() << " " << path << ": " << e.what()
                << '\n';
    }
    if (ex.status() == 0 && !ex.released()) {
      auto write = ex.respond_error(http::status::internal_server_error,
                                    failure ? "the request failed" : "no response was sent");
      co_await std::move(write);
    }
  }
  released_ = ex.released();
  if (ex.status() != 0) metrics.count_response(ex.status());
  metrics.request_finished();
  co_return ex.keep_alive() && !server_.stopping;
}

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    auto strand = asio::make_strand(io);
    auto accept = acceptor.async_accept(strand, kTuple);
    auto [ec, socket] = co_await std::move(accept);
    if (ec) {
      if (!acceptor.is_open() || stopping) co_return;
      continue;  // a failed accept (e.g. out of descriptors) leaves the listener running
    }
    if (tls) {
      // The handshake runs on the connection's own strand, bounded like a request's read.
      asio::co_spawn(strand, handshake(std::move(socket)), asio::detached);
      continue;
    }
    add_connection(Stream(beast::tcp_stream(std::move(socket))));
  }
}

asio::awaitable<void> Server::Impl::handshake(tcp::socket socket) {
  auto self = shared_from_this();
  Stream::TlsStream tls_stream(beast::tcp_stream(std::move(socket)), *tls);
  tls_stream.next_layer().expires_after(options.read_timeout);
  auto op = tls_stream.async_handshake(asio::ssl::stream_base::server, kTuple);
  auto [ec] = co_await std::move(op);
  if (ec || stopping) co_return;  // a plain-HTTP client, a bad certificate choice, a slow one
  tls_stream.next_layer().expires_never();
  add_connection(Stream(std::move(tls_stream)));
}

void Server::Impl::add_connection(Stream stream) {
  auto conn = std::make_shared<Connection>(*this, std::move(stream));
  {
    std::lock_guard lock(mu);
    connections.emplace(conn.get(), conn);
  }
  asio::co_spawn(conn->executor(), conn->run(), asio::detached);
}

void Server::Impl::connection_ended(Connection* c) {
  std::lock_guard lock(mu);
  connections.erase(c);
  if (stopping && connections.empty()) {
    work.reset();
    io.stop();
  }
}

void Server::Impl::begin_shutdown() {
  boost::system::error_code ignored;
  acceptor.close(ignored);
  std::lock_guard lock(mu);
  if (connections.empty()) {
    work.reset();
    io.stop();
    return;
  }
  for (auto& [raw, weak] : connections) {
    if (auto c = weak.lock()) asio::post(c->executor(), [c] { c->close_if_idle(); });
  }
  grace.expires_after(options.shutdown_grace);
  grace.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->stop_now();
  });
}

void Server::Impl::stop_now() {
  std::lock_guard lock(mu);
  for (auto& [raw, weak] : connections) {
    if (auto c = weak.lock()) asio::post(c->executor(), [c] { c->close(); });
  }
  work.reset();
  io.stop();
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  shutdown();
  wait();
}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options,
                                              std::shared_ptr<const Router> router,
                                              std::shared_ptr<Metrics> metrics) {
  MNEMO_RETURN_IF_ERROR(check_listen_policy(options.listen, options.auth != nullptr));
  auto ep = parse_listen_address(options.listen);
  if (!ep) return ep.status();
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  impl->router = std::move(router);
  impl->metrics = metrics ? std::move(metrics) : std::make_shared<Metrics>();
  boost::system::error_code ec;
  impl->acceptor.open(ep->protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(*ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::io_error("cannot listen on " + impl->options.listen + ": " + ec.message());
  }
  impl->bound = impl->acceptor.local_endpoint();
  if (!impl->options.tls_cert.empty()) {
    auto ctx = make_tls_context(impl->options.tls_cert, impl->options.tls_key);
    if (!ctx) return ctx.status();
    impl->tls = std::move(ctx).value();
  }
  impl->work.emplace(impl->io.get_executor());
  asio::co_spawn(impl->io, impl->accept_loop(), asio::detached);
  if (impl->options.handle_signals) {
    impl->signals.add(SIGINT);
    impl->signals.add(SIGTERM);
    // The first signal begins a graceful shutdown; a second one stops at once.
    impl->signals.async_wait([weak = std::weak_ptr<Impl>(impl)](boost::system::error_code ec, int) {
      auto self = weak.lock();
      if (ec || !self) return;
      std::cerr << "mnemo serve: shutting down (a second signal stops at once)\n";
      self->stopping = true;
      self->begin_shutdown();
      self->signals.async_wait([weak](boost::system::error_code ec2, int) {
        if (auto s = weak.lock(); s && !ec2) s->stop_now();
      });
    });
  }
  const int n = std::max(1, impl->options.io_threads);
  for (int i = 0; i < n; ++i) impl->threads.emplace_back([io = &impl->io] { io->run(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::string Server::address() const { return endpoint_text(impl_->bound); }
uint16_t Server::port() const { return impl_->bound.port(); }
asio::any_io_executor Server::executor() { return impl_->io.get_executor(); }

void Server::shutdown() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(impl_->io, [self = impl_] { self->begin_shutdown(); });
}

void Server::wait() {
  std::call_once(impl_->joined, [this] {
    for (std::thread& t : impl_->threads) t.join();
    boost::system::error_code ignored;
    impl_->signals.cancel(ignored);
  });
}

}  // namespace mnemo::server
