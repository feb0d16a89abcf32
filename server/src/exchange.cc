#include <mnemo/server/exchange.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace mnemo::server {
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

boost::json::value null_if_empty(std::string_view s) {
  if (s.empty()) return nullptr;
  return boost::json::string(s);
}

}  // namespace

std::string_view error_type_for(http::status status) {
  switch (status) {
    case http::status::unauthorized:
      return "authentication_error";
    case http::status::forbidden:
      return "permission_error";
    case http::status::not_found:
      return "not_found_error";
    case http::status::payload_too_large:
      return "request_too_large";
    case http::status::too_many_requests:
      return "rate_limit_error";
    default:
      return static_cast<unsigned>(status) >= 500 ? "server_error" : "invalid_request_error";
  }
}

HttpResponse error_response(http::status status, std::string_view message, std::string_view type,
                            std::string_view param, std::string_view code) {
  boost::json::object error;
  error["message"] = message;
  error["type"] = type.empty() ? error_type_for(status) : type;
  error["param"] = null_if_empty(param);
  error["code"] = null_if_empty(code);
  boost::json::object body;
  body["error"] = std::move(error);
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  res.body() += '\n';
  return res;
}

Exchange::Exchange(Stream& stream, beast::flat_buffer& buffer, HttpRequest& request,
                   std::string tenant, std::map<std::string, std::string, std::less<>> params,
                   std::chrono::milliseconds write_timeout)
    : stream_(stream),
      buffer_(buffer),
      request_(request),
      tenant_(std::move(tenant)),
      params_(std::move(params)),
      write_timeout_(write_timeout),
      keep_alive_(request.keep_alive()) {}

void Exchange::watch_disconnect(std::function<void()> on_gone) {
  stop_watch();
  auto live = std::make_shared<bool>(true);
  watching_ = live;
  auto& socket = stream_.tcp().socket();
  socket.async_wait(asio::socket_base::wait_read,
                    [live, &socket, on_gone = std::move(on_gone)](boost::system::error_code ec) {
                      if (!*live || ec == asio::error::operation_aborted) return;
                      char c;
                      // Readable: either the peer's end (0 bytes, or an error) or a next request.
                      const ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
                      if (ec || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                        *live = false;
                        on_gone();
                      }
                    });
}

void Exchange::stop_watch() {
  if (!watching_) return;
  if (*watching_) {
    *watching_ = false;
    boost::system::error_code ignored;
    stream_.tcp().socket().cancel(ignored);
  }
  watching_.reset();
}

std::string_view Exchange::param(std::string_view name) const {
  auto it = params_.find(name);
  return it == params_.end() ? std::string_view() : std::string_view(it->second);
}

asio::awaitable<void> Exchange::respond(HttpResponse response) {
  status_ = response.result_int();
  response.version(request_.version());
  response.set(http::field::server, "mnemo");
  response.keep_alive(keep_alive_);
  response.prepare_payload();
  stream_.tcp().expires_after(write_timeout_);
  // Built as a named awaitable first: GCC 12 may destroy temporaries in a co_await twice.
  auto write = http::async_write(stream_, response, kTuple);
  auto [ec, n] = co_await std::move(write);
  stream_.tcp().expires_never();
  if (ec) keep_alive_ = false;
}

asio::awaitable<void> Exchange::respond_json(http::status status, std::string body) {
  HttpResponse res{status, request_.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  auto write = respond(std::move(res));
  co_await std::move(write);
}

asio::awaitable<void> Exchange::respond_error(http::status status, std::string message,
                                              std::string type, std::string param,
                                              std::string code) {
  auto write = respond(error_response(status, message, type, param, code));
  co_await std::move(write);
}

asio::awaitable<bool> Exchange::begin_stream(http::status status, std::string content_type) {
  status_ = static_cast<unsigned>(status);
  streaming_ = true;
  http::response<http::empty_body> res{status, request_.version()};
  res.set(http::field::server, "mnemo");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(keep_alive_);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  stream_.tcp().expires_after(write_timeout_);
  auto write = http::async_write_header(stream_, sr, kTuple);
  auto [ec, n] = co_await std::move(write);
  stream_.tcp().expires_never();
  if (ec) keep_alive_ = false;
  co_return !ec;
}

asio::awaitable<bool> Exchange::write_chunk(std::string data) {
  if (!keep_alive_ && !streaming_) co_return false;
  stream_.tcp().expires_after(write_timeout_);
  auto write = asio::async_write(stream_, http::make_chunk(asio::buffer(data.data(), data.size())),
                                 kTuple);
  auto [ec, n] = co_await std::move(write);
  stream_.tcp().expires_never();
  if (ec) {
    keep_alive_ = false;
    streaming_ = false;
  }
  co_return !ec;
}

asio::awaitable<bool> Exchange::end_stream() {
  if (!streaming_) co_return false;
  streaming_ = false;
  stream_.tcp().expires_after(write_timeout_);
  auto write = asio::async_write(stream_, http::make_chunk_last(), kTuple);
  auto [ec, n] = co_await std::move(write);
  stream_.tcp().expires_never();
  if (ec) keep_alive_ = false;
  co_return !ec;
}

Stream Exchange::release_stream() {
  released_ = true;
  keep_alive_ = false;
  return std::move(stream_);
}

}  // namespace mnemo::server
