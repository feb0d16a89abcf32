#pragma once
// The HTTP server (DESIGN.md "server/"): a listener accepting connections, one coroutine and one
// strand per connection, a deadline on every read (a stalled client is closed), caps on header and
// body sizes, keep-alive, and a graceful shutdown: stop accepting, close idle connections, let
// requests in flight finish within a grace period, then stop.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include <mnemo/base/status.h>
#include <mnemo/server/auth.h>
#include <mnemo/server/exchange.h>
#include <mnemo/server/metrics.h>
#include <mnemo/server/router.h>

namespace mnemo::server {

struct ServerOptions {
  // HOST:PORT; port 0 picks a free one (Server::address() tells which).
  std::string listen = "127.0.0.1:8080";
  size_t header_limit = 16 * 1024;
  uint64_t body_limit = 4 * 1024 * 1024;
  // For a whole request (header and body) and for the idle time between keep-alive requests.
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{60'000};
  // How long requests in flight may run after a shutdown began.
  std::chrono::milliseconds shutdown_grace{10'000};
  int io_threads = 2;
  // Null: no API keys, allowed only on a loopback address (every request gets kLocalTenant).
  std::shared_ptr<const Authenticator> auth;
  // SIGINT and SIGTERM begin a graceful shutdown.
  bool handle_signals = false;
  // Browser origins allowed besides the server's own (docs/server.md, "Browsers").
  std::vector<std::string> allowed_origins;
  // PEM certificate chain and private key: every connection speaks TLS (HTTPS, WSS).
  std::string tls_cert, tls_key;
};

// The request's origin policy (browsers): a request that carries Origin must come from the server's
// own origin or an allowed one when it changes state (not GET, HEAD or OPTIONS) or upgrades to a
// WebSocket; without API keys, Host must name a loopback address (DNS rebinding). Bodies are JSON or
// YAML. An empty status is a pass; otherwise why not, with the HTTP status to answer.
struct Refusal {
  unsigned status = 0;
  std::string message;
  std::string code;
};
Refusal check_browser_rules(const HttpRequest& request, bool has_auth, bool tls,
                            const std::vector<std::string>& allowed_origins);

// "HOST:PORT" ("[::1]:8080" for IPv6) as an endpoint; the error names what is wrong.
Result<asio::ip::tcp::endpoint> parse_listen_address(std::string_view listen);
// Serving without keys is allowed only on loopback: the error says why and what to do.
Status check_listen_policy(std::string_view listen, bool has_auth);

class Server {
 public:
  // Binds, listens and starts the io threads. Handlers run on them; the router's handlers (and what
  // they reference) must outlive wait().
  static Result<std::unique_ptr<Server>> start(ServerOptions options,
                                               std::shared_ptr<const Router> router,
                                               std::shared_ptr<Metrics> metrics);
  // Shuts down (as shutdown() + wait()) when still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // "127.0.0.1:PORT" as bound.
  std::string address() const;
  uint16_t port() const;
  // The io_context's executor: engine callbacks post their results through it. It stays valid
  // (though stopped) after wait() until the Server is destroyed.
  asio::any_io_executor executor();

  // Begins a graceful shutdown; thread-safe, returns at once.
  void shutdown();
  // Blocks until the server has stopped: no connections left, or the grace period over.
  void wait();

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mnemo::server
