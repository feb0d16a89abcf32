#include <mnemo/server/stream.h>

#include <boost/asio/post.hpp>

#include <chrono>

namespace mnemo::server {

Stream::Stream(beast::tcp_stream plain) : s_(std::move(plain)) {}
Stream::Stream(TlsStream tls) : s_(std::move(tls)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream::~Stream() = default;

Stream::executor_type Stream::get_executor() noexcept { return tcp().get_executor(); }

beast::tcp_stream& Stream::tcp() {
  if (auto* plain = std::get_if<beast::tcp_stream>(&s_)) return *plain;
  return std::get<TlsStream>(s_).next_layer();
}

bool Stream::tls() const { return std::holds_alternative<TlsStream>(s_); }

void Stream::read(std::vector<asio::mutable_buffer> buffers, IoHandler handler) {
  std::visit([&](auto& s) { s.async_read_some(buffers, std::move(handler)); }, s_);
}

void Stream::write(std::vector<asio::const_buffer> buffers, IoHandler handler) {
  std::visit([&](auto& s) { s.async_write_some(buffers, std::move(handler)); }, s_);
}

void Stream::teardown(beast::role_type role, DoneHandler handler) {
  (void)role;
  auto finish = [this](DoneHandler h) {
    boost::system::error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().close();
    // Completed through asio::post, never inline, as an asynchronous operation must.
    auto ex = h.get_executor();
    asio::post(ex, [h = std::move(h)]() mutable { h(boost::system::error_code{}); });
  };
  if (auto* tls_stream = std::get_if<TlsStream>(&s_)) {
    // close_notify first, bounded: a peer that never answers is not waited for.
    tls_stream->next_layer().expires_after(std::chrono::seconds(2));
    tls_stream->async_shutdown([finish, h = std::move(handler)](boost::system::error_code) mutable {
      finish(std::move(h));
    });
    return;
  }
  finish(std::move(handler));
}

void beast_close_socket(Stream& stream) { stream.tcp().close(); }

void teardown(beast::role_type role, Stream& stream, boost::system::error_code& ec) {
  // Only the asynchronous teardown is used by the server; a blocking one just closes.
  (void)role;
  stream.tcp().close();
  ec = {};
}

}  // namespace mnemo::server
