#include <arpa/inet.h>
#include <mnemo/base/json_text.h>
#include <mnemo/tools/builtin_tools.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "tools/tools_test_util.h"

using namespace mnemo;
using namespace mnemo::tools;
using namespace std::chrono_literals;

namespace {

// A tiny HTTP/1.1 server on 127.0.0.1, a thread per connection; counts the connections it accepts.
class TestServer {
 public:
  TestServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (std::thread& t : workers_) t.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++connections_;
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, c] {
        serve(c);
        close(c);
      });
    }
  }

  static void send_all(int c, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = send(c, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  static std::string response(int code, const std::string& extra, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Type: text/plain\r\nConnection: close\r\n" +
           extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  void serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    std::string path = req.substr(4, req.find(' ', 4) - 4);
    const std::string port = std::to_string(port_);
    if (path == "/hello") {
      send_all(c, response(200, "", "hello from the test server"));
    } else if (path == "/big") {
      send_all(c, response(200, "", std::string(100000, 'x')));
    } else if (path == "/slow") {
      send_all(c, "HTTP/1.1 200 X\r\nContent-Length: 10\r\n\r\n1");
      // 30 s of silence (ended early when the server stops).
      for (int i = 0; i < 3000 && !stop_; ++i) std::this_thread::sleep_for(10ms);
    } else if (path == "/to-hello") {
      send_all(c, response(302, "Location: /hello\r\n", ""));
    } else if (path == "/to-loopback2") {
      send_all(c, response(302, "Location: http://127.0.0.2:" + port + "/hello\r\n", ""));
    } else if (path == "/to-localhost") {
      send_all(c, response(302, "Location: http://localhost:" + port + "/hello\r\n", ""));
    } else if (path == "/loop") {
      send_all(c, response(302, "Location: /loop\r\n", ""));
    } else {
      send_all(c, response(404, "", "no such page"));
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

ToolResult get(const HttpGetOptions& options, const std::string& url) {
  ToolRegistry reg;
  REQUIRE(reg.add(make_http_get_tool(options)));
  test::TempTree ws("http");
  ToolContext ctx = test::context_for(ws.path);
  return test::run_call(reg, ctx, "http_get", R"({"url": )" + json::quote(url) + "}");
}

HttpGetOptions local_options() {
  HttpGetOptions o;
  o.allowed_hosts = {"127.0.0.1"};
  return o;
}

}  // namespace

TEST_CASE("http_get refuses loopback by default, before any connection is made") {
  TestServer server;
  ToolResult r = get(local_options(), server.url("/hello"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("127.0.0.1 is a loopback address") != std::string::npos);
  // A name is judged by the address it resolves to.
  HttpGetOptions by_name = local_options();
  by_name.allowed_hosts = {"localhost"};
  r = get(by_name, server.url("/hello", "localhost"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("loopback address") != std::string::npos);
  CHECK(server.connections() == 0);
}

TEST_CASE("http_get fetches from loopback when configured to allow it") {
  TestServer server;
  HttpGetOptions o = local_options();
  o.allow_private_addresses = true;
  ToolResult r = get(o, server.url("/hello"));
  CHECK(r.ok);
  CHECK(r.content == "HTTP 200\nurl: " + server.url("/hello") +
                         "\ncontent-type: text/plain\n\nhello from the test server");
  HttpGetOptions exempt = local_options();
  exempt.allowed_addresses = {"127.0.0.1"};
  CHECK(get(exempt, server.url("/hello")).ok);
  r = get(exempt, server.url("/missing"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.rfind("HTTP 404\n", 0) == 0);
}

TEST_CASE("http_get refuses hosts outside the allowlist and non-HTTP URLs") {
  TestServer server;
  HttpGetOptions o;
  o.allowed_hosts = {"*.example.com"};
  o.allow_private_addresses = true;
  ToolResult r = get(o, server.url("/hello"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("host '127.0.0.1' is not in the allowed hosts") != std::string::npos);
  CHECK(get(o, "ftp://files.example.com/x").content.find("only http and https") != std::string::npos);
  CHECK(server.connections() == 0);
}

TEST_CASE("http_get follows redirects and checks every hop's host and address") {
  TestServer server;
  HttpGetOptions o = local_options();
  o.allowed_hosts = {"127.0.0.1", "127.0.0.2"};
  o.allowed_addresses = {"127.0.0.1"};
  ToolResult r = get(o, server.url("/to-hello"));
  CHECK(r.ok);
  CHECK(r.content.find("url: " + server.url("/hello")) != std::string::npos);

  r = get(o, server.url("/to-loopback2"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("127.0.0.2 is a loopback address") != std::string::npos);

  HttpGetOptions open = local_options();
  open.allow_private_addresses = true;
  r = get(open, server.url("/to-localhost"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("host 'localhost' is not in the allowed hosts") != std::string::npos);

  r = get(open, server.url("/loop"));
  CHECK_FALSE(r.ok);
  CHECK(r.content == "http_get: more than 5 redirects");
}

TEST_CASE("http_get stops at the size cap and at the timeout") {
  TestServer server;
  HttpGetOptions o = local_options();
  o.allow_private_addresses = true;
  o.max_bytes = 1000;
  ToolResult r = get(o, server.url("/big"));
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("larger than the 1000-byte cap") != std::string::npos);

  o.timeout = 400ms;
  auto start = std::chrono::steady_clock::now();
  r = get(o, server.url("/slow"));
  CHECK(std::chrono::steady_clock::now() - start < 20s);  // ended by the timeout, not the server
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("timed out after 400 ms") != std::string::npos);
}

TEST_CASE("cancelling http_get aborts a stalled transfer") {
  TestServer server;
  HttpGetOptions o = local_options();
  o.allow_private_addresses = true;
  ToolRegistry reg;
  REQUIRE(reg.add(make_http_get_tool(o)));
  test::TempTree ws("http-cancel");
  ToolContext ctx = test::context_for(ws.path);
  auto start = std::chrono::steady_clock::now();
  ToolResult r = test::run_call(reg, ctx, "http_get", R"({"url": )" + json::quote(server.url("/slow")) + "}",
                                200ms);
  CHECK(std::chrono::steady_clock::now() - start < 20s);  // ended by the cancel, not the server
  CHECK_FALSE(r.ok);
  CHECK(r.content == "http_get: cancelled");
}
