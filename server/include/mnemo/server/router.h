#pragma once
// Routes: a method and a path pattern ("/v1/models", "/v1/jobs/{id}/events") to a handler. A path
// that matches no route is 404; one that matches with another method is 405 (with Allow).
#include <string>
#include <string_view>
#include <vector>

#include <mnemo/server/exchange.h>

namespace mnemo::server {

struct RouteOptions {
  // Served without an API key (health checks, metrics scrapes).
  bool open = false;
};

class Router {
 public:
  // `pattern` is split on '/'; a "{name}" segment matches any one non-empty segment, which the
  // handler reads with Exchange::param(name). Routes are tried in the order they were added.
  void add(http::verb method, std::string pattern, Handler handler, RouteOptions options = {});

  struct Match {
    const Handler* handler = nullptr;  // null: no route (see allowed)
    RouteOptions options;
    std::map<std::string, std::string, std::less<>> params;
    // When handler is null: the methods the path accepts (empty: 404, else 405).
    std::vector<http::verb> allowed;
  };
  // `path` is the target without its query string.
  Match match(http::verb method, std::string_view path) const;

 private:
  struct Route {
    http::verb method;
    std::vector<std::string> segments;
    Handler handler;
    RouteOptions options;
  };
  std::vector<Route> routes_;
};

}  // namespace mnemo::server
