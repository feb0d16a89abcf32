// What browsers may do (docs/server.md, "Browsers"): a web page can make a browser send requests
// to any server, so a state-changing request or a WebSocket upgrade that carries an Origin is
// accepted only from the server's own origin or an operator-listed one; a keyless server answers
// only Host names that are loopback (a rebound DNS name would otherwise make a page same-origin);
// bodies are JSON or YAML, which a cross-site form or a no-preflight fetch cannot send.
#include <mnemo/server/server.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <cctype>

namespace mnemo::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "127.0.0.1:8080" -> "127.0.0.1"; "[::1]:8080" -> "::1".
std::string host_name(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return lower(host.substr(1, close == std::string_view::npos ? host.size() : close - 1));
  }
  return lower(host.substr(0, host.find(':')));
}

bool loopback_name(const std::string& name) {
  return name == "localhost" || name == "::1" || name.rfind("127.", 0) == 0 ||
         (name.size() > 10 && name.compare(name.size() - 10, 10, ".localhost") == 0);
}

bool changes_state(http::verb v) {
  return v != http::verb::get && v != http::verb::head && v != http::verb::options;
}

}  // namespace

Refusal check_browser_rules(const HttpRequest& req, bool has_auth, bool tls,
                            const std::vector<std::string>& allowed_origins) {
  const std::string host(req[http::field::host]);
  if (!has_auth && !loopback_name(host_name(host))) {
    return {421, "this server has no API keys and answers only loopback host names (Host: " +
                     host + "); a page on another name must not reach it (DNS rebinding)",
            "bad_host"};
  }
  const bool upgrade = beast::websocket::is_upgrade(req);
  const auto origin_field = req.find(http::field::origin);
  if (origin_field != req.end() && (changes_state(req.method()) || upgrade)) {
    const std::string origin = lower(origin_field->value());
    const std::string own = std::string(tls ? "https://" : "http://") + lower(host);
    bool allowed = origin == own;
    for (const std::string& o : allowed_origins) allowed = allowed || lower(o) == origin;
    if (!allowed) {
      return {403, "requests from the web origin " + std::string(origin_field->value()) +
                       " are not allowed (the server's own origin is " + own +
                       "; the operator lists others under origins)",
              "origin_not_allowed"};
    }
  }
  if (changes_state(req.method()) && !req.body().empty()) {
    std::string type = lower(req[http::field::content_type]);
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ') type.pop_back();
    if (type != "application/json" && type != "application/yaml" && type != "application/x-yaml") {
      return {415, "the request body must be sent as Content-Type: application/json (or "
                   "application/yaml for a job), not '" +
                       std::string(req[http::field::content_type]) + "'",
              "unsupported_media_type"};
    }
  }
  return {};
}

}  // namespace mnemo::server
