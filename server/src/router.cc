#include <mnemo/server/router.h>

#include <algorithm>

namespace mnemo::server {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::add(http::verb method, std::string pattern, Handler handler, RouteOptions options) {
  Route r{method, {}, std::move(handler), options};
  for (std::string_view s : split_path(pattern)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
}

Router::Match Router::match(http::verb method, std::string_view path) const {
  Match m;
  const std::vector<std::string_view> parts = split_path(path);
  for (const Route& r : routes_) {
    if (r.segments.size() != parts.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool ok = true;
    for (size_t i = 0; i < parts.size() && ok; ++i) {
      const std::string& seg = r.segments[i];
      if (is_param(seg)) {
        params.emplace(seg.substr(1, seg.size() - 2), std::string(parts[i]));
      } else {
        ok = seg == parts[i];
      }
    }
    if (!ok) continue;
    if (r.method == method) {
      m.handler = &r.handler;
      m.options = r.options;
      m.params = std::move(params);
      return m;
    }
    if (std::find(m.allowed.begin(), m.allowed.end(), r.method) == m.allowed.end()) {
      m.allowed.push_back(r.method);
    }
  }
  return m;
}

}  // namespace mnemo::server
