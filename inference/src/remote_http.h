#pragma once
// One HTTP exchange with libcurl for the remote backend: headers and body handed to a sink as they
// arrive, timeouts, and a cancel flag polled every few milliseconds.
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::inference::remote {

struct HttpHead {
  long status = 0;
  std::string content_type;  // lower-cased
  std::optional<std::chrono::milliseconds> retry_after;
};

// Gets each piece of the body of the final response; returns false to abort the transfer.
using BodySink = std::function<bool(const HttpHead& head, std::string_view bytes)>;

struct HttpRequest {
  std::string url;
  std::optional<std::string> post_body;  // GET when empty
  std::vector<std::string> headers;      // "Name: value"
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{600000};
  const std::atomic<bool>* cancel = nullptr;
};

enum class HttpFailure {
  kNone,           // a complete response arrived (any status)
  kCancelled,      // the cancel flag was set
  kAbortedBySink,  // the sink returned false
  kConnect,        // no connection: refused, unresolved, connect timeout
  kTimeout,        // the whole-request timeout ran out after connecting
  kTransport,      // the connection broke: nothing received, reset, cut short
  kOther,          // anything else curl refuses (bad URL, TLS verification, ...)
};

struct HttpOutcome {
  HttpFailure failure = HttpFailure::kNone;
  HttpHead head;
  std::string error;  // curl's words when failure != kNone
};

HttpOutcome http_exchange(const HttpRequest& request, const BodySink& sink);

}  // namespace mnemo::inference::remote
