#pragma once
// One HTTP request on a connection, as a route handler sees it: the parsed request, the caller's
// tenant, the route's {name} parameters, and the ways to answer: one response, a streamed response
// (chunked, for SSE), or taking the connection over (a WebSocket upgrade).
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <mnemo/server/stream.h>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mnemo::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// The OpenAI error object {"error": {"message", "type", "param", "code"}} as a response; an empty
// param or code is null.
HttpResponse error_response(http::status status, std::string_view message, std::string_view type = {},
                            std::string_view param = {}, std::string_view code = {});
// "invalid_request_error", "authentication_error", ... for a status without a more precise type.
std::string_view error_type_for(http::status status);

class Exchange {
 public:
  Exchange(Stream& stream, beast::flat_buffer& buffer, HttpRequest& request,
           std::string tenant, std::map<std::string, std::string, std::less<>> params,
           std::chrono::milliseconds write_timeout);
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const HttpRequest& request() const { return request_; }
  // The tenant of the API key that authenticated the request ("local" when the server has none).
  const std::string& tenant() const { return tenant_; }
  // A {name} segment of the route's path; empty when the route has none of that name.
  std::string_view param(std::string_view name) const;

  // Writes one response (keep-alive as the request asked). Call at most once. Arguments are taken
  // by value: the awaitable runs after the expression that made it, when temporaries are gone.
  asio::awaitable<void> respond(HttpResponse response);
  asio::awaitable<void> respond_json(http::status status, std::string body);
  asio::awaitable<void> respond_error(http::status status, std::string message,
                                      std::string type = {}, std::string param = {},
                                      std::string code = {});

  // A streamed response: the header with chunked transfer coding, then chunks, then the end. Each
  // returns false once the client is gone (the handler should then stop its work).
  asio::awaitable<bool> begin_stream(http::status status, std::string content_type);
  asio::awaitable<bool> write_chunk(std::string data);
  asio::awaitable<bool> end_stream();

  // Takes the connection over (a WebSocket upgrade: construct the websocket stream from it and
  // accept with request()); bytes already read past the request are in buffer(). The connection's
  // request loop then ends without touching the stream.
  Stream release_stream();
  beast::flat_buffer& buffer() { return buffer_; }
  bool released() const { return released_; }

  // Calls on_gone (on the connection's strand) once the client closes or resets the connection
  // while the handler works (a request whose answer nobody waits for is cancelled, prefill
  // included). Bytes of a pipelined next request end the watch without a call. Stops when the
  // handler ends.
  void watch_disconnect(std::function<void()> on_gone);
  void stop_watch();

  // The status sent (0 before any), and whether the connection may carry another request.
  unsigned status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }

 private:
  Stream& stream_;
  beast::flat_buffer& buffer_;
  HttpRequest& request_;
  std::string tenant_;
  std::map<std::string, std::string, std::less<>> params_;
  std::chrono::milliseconds write_timeout_;
  unsigned status_ = 0;
  bool keep_alive_ = true;
  bool streaming_ = false;
  bool released_ = false;
  std::shared_ptr<bool> watching_;  // the live watch's flag; false once stopped
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

}  // namespace mnemo::server
