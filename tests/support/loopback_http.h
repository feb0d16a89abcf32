#pragma once
// A small HTTP/1.1 server on 127.0.0.1 (port 0) for tests of HTTP clients: Beast reads each
// request, and the test's handler answers on the raw socket, so it can stream, stall or cut the
// connection. One request per connection (every answer says Connection: close); each connection has
// a thread.
#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mnemo::test {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::string body;
  std::string authorization;
  std::string content_type;
};

class HttpExchange {
 public:
  HttpExchange(const ReceivedRequest& request, int number, boost::asio::ip::tcp::socket& socket,
               const std::atomic<bool>& stopping)
      : request(request), number(number), socket_(socket), stopping_(stopping) {}

  const ReceivedRequest& request;
  const int number;  // 1-based, counting every request the server got

  // Writes raw bytes; false once the client has gone.
  bool write(std::string_view bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  void respond(int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = "") {
    write(status_line(status) + "Content-Type: " + std::string(content_type) +
          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
          std::string(extra_headers) + "\r\n" + std::string(body));
  }

  // Starts a streamed answer in chunked transfer encoding, as llama-server and vLLM send SSE.
  void begin_chunked(std::string_view content_type = "text/event-stream") {
    write(status_line(200) + "Content-Type: " + std::string(content_type) +
          "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n");
  }

  bool send_chunk(std::string_view bytes) {
    if (bytes.empty()) return true;
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    return write(std::string(size) + std::string(bytes) + "\r\n");
  }

  void end_chunks() { write("0\r\n\r\n"); }

  // Sends `bytes` as chunks of `piece` bytes.
  bool send_chunked(std::string_view bytes, size_t piece) {
    for (size_t at = 0; at < bytes.size(); at += piece) {
      if (!send_chunk(bytes.substr(at, piece))) return false;
    }
    return true;
  }

  // Waits, sending nothing, until the client hangs up or the server stops.
  void stall() {
    socket_.non_blocking(true);
    char byte;
    while (!stopping_.load()) {
      boost::system::error_code ec;
      socket_.read_some(boost::asio::buffer(&byte, 1), ec);
      if (ec && ec != boost::asio::error::would_block && ec != boost::asio::error::try_again)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  static std::string status_line(int status) {
    auto reason =
        boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  }

  boost::asio::ip::tcp::socket& socket_;
  const std::atomic<bool>& stopping_;
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<void(HttpExchange&)>;

  explicit LoopbackHttpServer(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { accept_loop(); });
  }

  ~LoopbackHttpServer() {
    stopping_ = true;
    // Wakes the blocking accept.
    boost::asio::ip::tcp::socket waker(io_);
    boost::system::error_code ec;
    waker.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
    std::vector<std::thread> sessions;
    {
      std::lock_guard lock(mutex_);
      sessions.swap(sessions_);
    }
    for (std::thread& t : sessions) t.join();
  }

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int requests() const { return requests_.load(); }
  std::vector<ReceivedRequest> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) continue;
      std::lock_guard lock(mutex_);
      sessions_.emplace_back([this, s = std::move(socket)]() mutable { serve(s); });
    }
  }

  void serve(boost::asio::ip::tcp::socket& socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) return;
    ReceivedRequest received{std::string(request.method_string()), std::string(request.target()),
                             request.body(), std::string(request[http::field::authorization]),
                             std::string(request[http::field::content_type])};
    int number = 0;
    {
      std::lock_guard lock(mutex_);
      received_.push_back(received);
      number = ++requests_;
    }
    HttpExchange exchange(received, number, socket, stopping_);
    handler_(exchange);
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::thread> sessions_;
  std::vector<ReceivedRequest> received_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
};

}  // namespace mnemo::test
