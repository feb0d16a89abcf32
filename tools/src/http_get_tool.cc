// http_get: libcurl, one blocking transfer per hop on the tool's own threads. Every connection's
// peer address is checked in CURLOPT_OPENSOCKETFUNCTION (the address actually connected to, after
// DNS), and redirects are followed by hand so each hop's host and address are checked again.
#include <curl/curl.h>
#include <mnemo/base/utf8.h>
#include <mnemo/tools/builtin_tools.h>

#include <atomic>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <mutex>
#include <optional>

#include "address_policy.h"
#include "py_json.h"

namespace mnemo::tools {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kPoolThreads = 4;

struct Fetch {
  const HttpGetOptions* options = nullptr;
  std::atomic<bool> abort{false};
  // Outcome, written by the pool thread before the handler is posted.
  bool ok = false;
  std::string content;
};

struct Hop {
  Fetch* fetch = nullptr;
  bool private_ok = false;  // the URL's host is one listed on purpose for non-public addresses
  std::string refused;  // why the peer address was refused
  std::string body;
  bool over_cap = false;
  std::string content_type;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* hop = static_cast<Hop*>(user);
  size_t len = size * n;
  if (hop->body.size() + len > hop->fetch->options->max_bytes) {
    hop->over_cap = true;
    return 0;  // stops the transfer
  }
  hop->body.append(data, len);
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* hop = static_cast<Hop*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kType = "content-type:";
  if (line.size() > kType.size() && strncasecmp(line.data(), kType.data(), kType.size()) == 0) {
    std::string_view v = line.substr(kType.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
    hop->content_type = std::string(v);
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Hop*>(user)->fetch->abort.load() ? 1 : 0;
}

curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* addr) {
  auto* hop = static_cast<Hop*>(user);
  const HttpGetOptions& o = *hop->fetch->options;
  const sockaddr* sa = &addr->addr;
  std::string reason = internal::non_public_reason(sa);
  std::string text = internal::address_text(sa);
  bool exempt = o.allow_private_addresses || hop->private_ok;
  for (const std::string& a : o.allowed_addresses) exempt = exempt || a == text;
  if (!reason.empty() && !exempt) {
    if (hop->refused.empty()) hop->refused = text + " is " + reason;
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

struct UrlParts {
  std::string scheme, host;
};

Result<UrlParts> parse_url(const std::string& url) {
  CURLU* u = curl_url();
  UrlParts parts;
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0);
  char* scheme = nullptr;
  char* host = nullptr;
  if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
  if (rc == CURLUE_OK) {
    parts.scheme = scheme;
    parts.host = host;
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  if (rc != CURLUE_OK)
    return Status::invalid_argument("'" + url + "' is not a valid URL: " + curl_url_strerror(rc));
  if (parts.scheme != "http" && parts.scheme != "https")
    return Status::invalid_argument("'" + url + "': only http and https URLs are allowed");
  return parts;
}

// One request without following redirects. Sets `location` when the answer is a redirect.
Status fetch_hop(Fetch& fetch, const std::string& url, Clock::time_point deadline, long& status,
                 std::string& location, Hop& hop) {
  const HttpGetOptions& o = *fetch.options;
  Result<UrlParts> parts = parse_url(url);
  if (!parts) return parts.status();
  if (!internal::host_allowed(parts->host, o.allowed_hosts))
    return Status::invalid_argument("host '" + parts->host + "' is not in the allowed hosts");
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return Status::io_error("timed out after " + std::to_string(o.timeout.count()) + " ms");
  hop.fetch = &fetch;
  for (const std::string& h : o.private_hosts) {
    hop.private_ok = hop.private_ok || (h.find('*') == std::string::npos &&
                                        internal::host_allowed(parts->host, {h}));
  }
  CURL* c = curl_easy_init();
  if (!c) return Status::internal("curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  // A proxy from the environment would be the peer instead of the checked address.
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "mnemo-http_get/0.1");
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &hop);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &hop);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &hop);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &hop);
  CURLcode rc = curl_easy_perform(c);
  char* redirect = nullptr;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redirect);
  location = redirect ? redirect : "";
  curl_easy_cleanup(c);
  if (rc == CURLE_OK) return Status::ok();
  if (!hop.refused.empty())
    return Status::invalid_argument("refused to connect to " + parts->host + ": " + hop.refused +
                                    " (only public addresses are allowed)");
  if (hop.over_cap)
    return Status::io_error("the response is larger than the " + std::to_string(o.max_bytes) +
                            "-byte cap; the transfer was stopped");
  if (fetch.abort.load()) return Status::io_error("cancelled");
  if (rc == CURLE_OPERATION_TIMEDOUT)
    return Status::io_error("timed out after " + std::to_string(o.timeout.count()) + " ms");
  return Status::io_error(std::string(curl_easy_strerror(rc)) + (error[0] ? std::string(": ") + error : ""));
}

void run_fetch(Fetch& fetch, std::string url) {
  const HttpGetOptions& o = *fetch.options;
  const auto deadline = Clock::now() + o.timeout;
  for (int redirects = 0;; ++redirects) {
    Hop hop;
    long status = 0;
    std::string location;
    Status st = fetch_hop(fetch, url, deadline, status, location, hop);
    if (!st) {
      fetch.content = "http_get: " + url + ": " + st.message();
      return;
    }
    if (status >= 300 && status < 400 && !location.empty()) {
      if (redirects >= o.max_redirects) {
        fetch.content = "http_get: more than " + std::to_string(o.max_redirects) + " redirects";
        return;
      }
      url = location;
      continue;
    }
    fetch.ok = status < 400;
    fetch.content = "HTTP " + std::to_string(status) + "\nurl: " + url + "\n";
    if (!hop.content_type.empty()) fetch.content += "content-type: " + hop.content_type + "\n";
    fetch.content += "\n" + utf8::lossy(hop.body);
    return;
  }
}

ToolResult finish(Fetch& fetch, size_t cap) {
  if (fetch.abort.load()) return ToolResult::error("http_get: cancelled");
  ToolResult r = ToolResult::success(std::move(fetch.content), cap);
  r.ok = fetch.ok;
  return r;
}

class HttpGetTool final : public Tool {
 public:
  explicit HttpGetTool(HttpGetOptions options) : options_(std::move(options)), pool_(kPoolThreads) {}
  ~HttpGetTool() override { pool_.join(); }

  std::string_view name() const override { return "http_get"; }
  std::string_view description() const override {
    return "Fetch a URL with HTTP GET and return the status, content type and body. Only allowed "
           "hosts and public addresses; redirects are followed and checked.";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("url": {"type": "string", "minLength": 1, "maxLength": 8192, "description": "an http or https URL"}}, )j"
           R"j("required": ["url"], "additionalProperties": false})j";
  }
  bool idempotent() const override { return true; }

  asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    Result<json::value> args = internal::parse_json(call.arguments, "arguments");
    if (!args || !args->is_object()) co_return ToolResult::error("http_get: arguments must be an object");
    std::string url = internal::string_field(args->get_object(), "url");
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return ToolResult::error("http_get: cancelled");
    auto fetch = std::make_shared<Fetch>();
    auto options = std::make_shared<HttpGetOptions>(options_);
    options->timeout = std::min(options->timeout, ctx.timeout);
    fetch->options = options.get();
    auto ex = co_await asio::this_coro::executor;
    // Built outside the co_await: GCC 12 destroys temporaries of a co_await expression twice.
    auto transfer = asio::async_initiate<decltype(asio::use_awaitable), void(boost::system::error_code)>(
        [this, ex, fetch, options, url](auto handler) {
          using Handler = std::decay_t<decltype(handler)>;
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected())
            slot.assign([fetch](asio::cancellation_type) { fetch->abort = true; });
          auto handler_ex = asio::get_associated_executor(handler, ex);
          auto held = std::make_shared<std::optional<Handler>>(std::move(handler));
          // The caller's io_context must not run out of work while the transfer is elsewhere.
          auto work = asio::make_work_guard(handler_ex);
          asio::post(pool_, [fetch, options, url, held, handler_ex, work]() {
            run_fetch(*fetch, url);
            asio::post(handler_ex, [held, work]() {
              Handler h = std::move(**held);
              held->reset();
              asio::get_associated_cancellation_slot(h).clear();
              std::move(h)(boost::system::error_code{});
            });
          });
        },
        asio::use_awaitable);
    co_await std::move(transfer);
    co_return finish(*fetch, ctx.output_cap);
  }

 private:
  HttpGetOptions options_;
  asio::thread_pool pool_;
};

}  // namespace

std::shared_ptr<Tool> make_http_get_tool(HttpGetOptions options) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return std::make_shared<HttpGetTool>(std::move(options));
}

}  // namespace mnemo::tools
