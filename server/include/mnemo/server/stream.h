#pragma once
// The byte stream of one client connection: plain TCP, or TLS over it (`mnemo serve --tls-cert`),
// behind one type, so that HTTP, SSE and WebSocket code is written once. It meets Asio's
// AsyncReadStream and AsyncWriteStream and Beast's WebSocket teardown; the TCP layer below gives
// timeouts and the socket.
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace mnemo::server {

namespace asio = boost::asio;
namespace beast = boost::beast;

// A move-only completion handler of signature void(Args...), type-erased, that keeps the wrapped
// handler's associated executor (Asio 1.81's any_completion_handler cannot be posted).
template <typename... Args>
class ErasedHandler {
 public:
  using executor_type = asio::any_io_executor;
  template <typename Handler>
  ErasedHandler(Handler&& h, const asio::any_io_executor& fallback)
      : executor_(asio::get_associated_executor(h, fallback)),
        impl_(std::make_unique<Impl<std::decay_t<Handler>>>(std::forward<Handler>(h))) {}
  ErasedHandler(ErasedHandler&&) noexcept = default;
  ErasedHandler& operator=(ErasedHandler&&) noexcept = default;
  executor_type get_executor() const noexcept { return executor_; }
  void operator()(Args... args) { std::exchange(impl_, nullptr)->call(std::move(args)...); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call(Args... args) = 0;
  };
  template <typename Handler>
  struct Impl : Base {
    explicit Impl(Handler&& h) : handler(std::move(h)) {}
    explicit Impl(const Handler& h) : handler(h) {}
    void call(Args... args) override { std::move(handler)(std::move(args)...); }
    Handler handler;
  };
  asio::any_io_executor executor_;
  std::unique_ptr<Base> impl_;
};

class Stream {
 public:
  using executor_type = asio::any_io_executor;
  using IoHandler = ErasedHandler<boost::system::error_code, std::size_t>;
  using DoneHandler = ErasedHandler<boost::system::error_code>;
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  explicit Stream(beast::tcp_stream plain);
  // After its handshake.
  explicit Stream(TlsStream tls);
  Stream(Stream&&) noexcept;
  ~Stream();

  executor_type get_executor() noexcept;
  // The TCP layer: expires_after, cancel, close, socket.
  beast::tcp_stream& tcp();
  bool tls() const;

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    std::vector<asio::mutable_buffer> b(asio::buffer_sequence_begin(buffers),
                                        asio::buffer_sequence_end(buffers));
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, std::vector<asio::mutable_buffer> b) {
          read(std::move(b), IoHandler(std::move(handler), get_executor()));
        },
        token, std::move(b));
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    std::vector<asio::const_buffer> b(asio::buffer_sequence_begin(buffers),
                                      asio::buffer_sequence_end(buffers));
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, std::vector<asio::const_buffer> b) {
          write(std::move(b), IoHandler(std::move(handler), get_executor()));
        },
        token, std::move(b));
  }

  // The end of a WebSocket connection (TLS close_notify, then the TCP close).
  void teardown(beast::role_type role, DoneHandler handler);

 private:
  void read(std::vector<asio::mutable_buffer> buffers, IoHandler handler);
  void write(std::vector<asio::const_buffer> buffers, IoHandler handler);

  std::variant<beast::tcp_stream, TlsStream> s_;
};

// Beast's WebSocket stream finds these by argument-dependent lookup.
template <typename TeardownHandler>
void async_teardown(beast::role_type role, Stream& stream, TeardownHandler&& handler) {
  stream.teardown(role,
                  Stream::DoneHandler(std::forward<TeardownHandler>(handler), stream.get_executor()));
}
void teardown(beast::role_type role, Stream& stream, boost::system::error_code& ec);
// Beast's close_socket customization (a WebSocket that fails closes its stream this way).
void beast_close_socket(Stream& stream);

}  // namespace mnemo::server
