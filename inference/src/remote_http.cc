// libcurl's multi interface drives the transfer so that the cancel flag is looked at every few
// milliseconds: the progress callback of an easy transfer slows to once a second when idle.
#include "remote_http.h"

#include <curl/curl.h>

#include <cctype>
#include <ctime>
#include <mutex>

namespace mnemo::inference::remote {
namespace {

constexpr int kPollMs = 10;

struct Exchange {
  const HttpRequest* request = nullptr;
  const BodySink* sink = nullptr;
  HttpHead head;
  bool cancelled = false;
  bool sink_aborted = false;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Retry-After: delay-seconds or an HTTP-date.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  if (value.empty()) return std::nullopt;
  bool digits = true;
  for (char c : value) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    if (value.size() > 9) return std::chrono::hours(24 * 365);
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  time_t when = curl_getdate(std::string(value).c_str(), nullptr);
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return std::chrono::seconds(when > now ? when - now : 0);
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  std::string_view line = trim(std::string_view(data, size * count));
  if (line.starts_with("HTTP/")) {
    // A new response begins (after a 100 Continue, say): forget the previous one's headers.
    x->head = HttpHead{};
    size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      x->head.status = std::strtol(std::string(line.substr(space + 1, 3)).c_str(), nullptr, 10);
    }
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string name = lower(trim(line.substr(0, colon)));
  std::string_view value = trim(line.substr(colon + 1));
  if (name == "content-type") x->head.content_type = lower(value);
  if (name == "retry-after") x->head.retry_after = parse_retry_after(value);
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  if (x->request->cancel && x->request->cancel->load()) {
    x->cancelled = true;
    return 0;
  }
  if (!(*x->sink)(x->head, std::string_view(data, size * count))) {
    x->sink_aborted = true;
    return 0;
  }
  return size * count;
}

HttpFailure classify(CURLcode rc, CURL* c) {
  switch (rc) {
    case CURLE_OK:
      return HttpFailure::kNone;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return HttpFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connected = 0;
      curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
      return connected == 0 ? HttpFailure::kConnect : HttpFailure::kTimeout;
    }
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return HttpFailure::kTransport;
    default:
      return HttpFailure::kOther;
  }
}

}  // namespace

HttpOutcome http_exchange(const HttpRequest& request, const BodySink& sink) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  HttpOutcome outcome;
  Exchange x;
  x.request = &request;
  x.sink = &sink;
  CURL* c = curl_easy_init();
  CURLM* m = curl_multi_init();
  if (!c || !m) {
    if (c) curl_easy_cleanup(c);
    if (m) curl_multi_cleanup(m);
    outcome.failure = HttpFailure::kOther;
    outcome.error = "curl could not start a transfer";
    return outcome;
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // A loopback server is never reached through a proxy from the environment.
  curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "mnemo-remote/0.1");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (request.post_body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.post_body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.post_body->size()));
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_multi_add_handle(m, c);

  CURLcode rc = CURLE_OK;
  int running = 1;
  while (running) {
    CURLMcode mc = curl_multi_perform(m, &running);
    if (mc != CURLM_OK) {
      outcome.failure = HttpFailure::kOther;
      outcome.error = curl_multi_strerror(mc);
      break;
    }
    if (x.cancelled || (request.cancel && request.cancel->load())) {
      x.cancelled = true;
      break;
    }
    if (running) curl_multi_poll(m, nullptr, 0, kPollMs, nullptr);
  }
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  }
  if (x.cancelled) {
    outcome.failure = HttpFailure::kCancelled;
  } else if (x.sink_aborted) {
    outcome.failure = HttpFailure::kAbortedBySink;
  } else if (outcome.failure == HttpFailure::kNone) {
    outcome.failure = classify(rc, c);
    if (outcome.failure != HttpFailure::kNone) {
      outcome.error = curl_easy_strerror(rc);
      if (error[0]) outcome.error += std::string(": ") + error;
    }
  }
  outcome.head = x.head;
  curl_multi_remove_handle(m, c);
  curl_easy_cleanup(c);
  curl_multi_cleanup(m);
  curl_slist_free_all(headers);
  return outcome;
}

}  // namespace mnemo::inference::remote
