// The remote chat client: request body, one attempt per HTTP exchange, retries with backoff.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/remote_client.h>
#include <simdjson.h>

#include <cmath>
#include <random>
#include <thread>

#include "remote_events.h"
#include "remote_http.h"

namespace mnemo::inference {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kCancelled = "request cancelled";
// A non-streamed answer (or an error body) larger than this is not an answer.
constexpr size_t kMaxBufferedBody = 64u << 20;

Status cancelled_status(std::string_view url) {
  return Status::io_error("remote " + std::string(url) + ": " + std::string(kCancelled));
}

bool retryable_http_status(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::string trim_json(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The JSON text of one request field, checked to be a value of the wanted kind.
Status check_json(std::string_view field, std::string_view text, bool array_only) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (auto error = parser.parse(text.data(), text.size()).get(e)) {
    return Status::invalid_argument(std::string(field) + ": not valid JSON (" +
                                    simdjson::error_message(error) + ")");
  }
  if (array_only && !e.is_array()) {
    return Status::invalid_argument(std::string(field) + ": expected a JSON array");
  }
  if (!array_only && !e.is_string() && !e.is_object()) {
    return Status::invalid_argument(std::string(field) + ": expected a JSON string or object");
  }
  return Status::ok();
}

Status append_number(std::string& out, std::string_view name, double value) {
  if (!std::isfinite(value)) {
    return Status::invalid_argument(std::string(name) + ": expected a finite number");
  }
  out += ",\"" + std::string(name) + "\":" + json::python_float_repr(value);
  return Status::ok();
}

// Attempt n (1-based) of a retried call: exponential with jitter, or what Retry-After asked.
milliseconds backoff_delay(const RemoteEndpoint& endpoint, int retry,
                           std::optional<milliseconds> retry_after) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  milliseconds delay;
  if (retry_after) {
    delay = *retry_after;
  } else {
    double full = static_cast<double>(endpoint.backoff_base.count()) * std::ldexp(1.0, retry - 1);
    full = std::min(full, static_cast<double>(endpoint.max_backoff.count()));
    std::uniform_real_distribution<double> jitter(full / 2, full);
    delay = milliseconds(static_cast<int64_t>(jitter(rng)));
  }
  return std::min(delay, endpoint.max_backoff);
}

// False when cancelled while waiting.
bool sleep_unless_cancelled(milliseconds delay, const std::atomic<bool>* cancel) {
  auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel && cancel->load()) return false;
    auto left = until - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(left, milliseconds(10)));
  }
  return !(cancel && cancel->load());
}

template <typename T>
struct Attempt {
  Result<T> result = Status::internal("no attempt was made");
  bool retry = false;
  std::optional<milliseconds> retry_after;
};

// Runs attempts until one succeeds, one fails for good, something was streamed, or the retries run
// out; the error of the last attempt says how many there were.
template <typename T, typename Fn>
Result<T> with_retries(const RemoteEndpoint& endpoint, std::string_view url,
                       const std::atomic<bool>* cancel, const bool& streamed, Fn attempt_once,
                       int& attempts) {
  for (int attempt = 1;; ++attempt) {
    attempts = attempt;
    if (cancel && cancel->load()) return cancelled_status(url);
    Attempt<T> a = attempt_once();
    if (a.result.is_ok()) return std::move(a.result);
    if (!a.retry || streamed || attempt > endpoint.max_retries) {
      Status s = a.result.status();
      if (attempt == 1 || is_remote_cancellation(s)) return s;
      return Status(s.code(),
                    s.message() + " (gave up after " + std::to_string(attempt) + " attempts)");
    }
    if (!sleep_unless_cancelled(backoff_delay(endpoint, attempt, a.retry_after), cancel)) {
      return cancelled_status(url);
    }
  }
}

// The failures every exchange shares; nullopt when the exchange completed.
template <typename T>
std::optional<Attempt<T>> transfer_failure(const remote::HttpOutcome& outcome, std::string_view url,
                                           const RemoteEndpoint& endpoint) {
  std::string prefix = "remote " + std::string(url) + ": ";
  Attempt<T> a;
  switch (outcome.failure) {
    case remote::HttpFailure::kNone:
    case remote::HttpFailure::kAbortedBySink:
      return std::nullopt;
    case remote::HttpFailure::kCancelled:
      a.result = cancelled_status(url);
      break;
    case remote::HttpFailure::kConnect:
      a.result = Status::io_error(prefix + "cannot connect: " + outcome.error);
      a.retry = true;
      break;
    case remote::HttpFailure::kTimeout:
      a.result =
          Status::io_error(prefix + "timed out after " + std::to_string(endpoint.timeout.count()) +
                           " ms (" + outcome.error + ")");
      break;
    case remote::HttpFailure::kTransport:
      a.result = Status::io_error(prefix + "connection failed: " + outcome.error);
      a.retry = true;
      break;
    case remote::HttpFailure::kOther:
      a.result = Status::io_error(prefix + outcome.error);
      break;
  }
  return a;
}

void emit_whole(const AssistantMessage& message, const RemoteEventFn& on_event) {
  if (!on_event) return;
  if (!message.reasoning_content.empty()) {
    on_event(remote::delta_event(ChatEventKind::kReasoningDelta, message.reasoning_content));
  }
  if (!message.content.empty())
    on_event(remote::delta_event(ChatEventKind::kTextDelta, message.content));
  for (size_t i = 0; i < message.tool_calls.size(); ++i) {
    const ToolCall& tool = message.tool_calls[i];
    on_event(remote::tool_begin_event(i, tool));
    if (!tool.arguments.empty()) {
      on_event(remote::delta_event(ChatEventKind::kToolCallArgsDelta, tool.arguments, i));
    }
    on_event(remote::tool_end_event(i, tool));
  }
}

}  // namespace

std::string remote_api_url(std::string_view base_url, std::string_view path) {
  std::string_view base = base_url;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  if (base.ends_with("/v1")) base.remove_suffix(3);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return std::string(base) + "/v1/" + std::string(path);
}

bool is_remote_cancellation(const Status& status) {
  return status.code() == StatusCode::kIoError && status.message().ends_with(kCancelled);
}

Result<std::string> remote_request_body(const RemoteEndpoint& endpoint,
                                        const RemoteChatRequest& request) {
  std::string messages = trim_json(request.messages_json);
  MNEMO_RETURN_IF_ERROR(check_json("messages", messages, true));
  std::string body = "{\"model\":" + json::quote(endpoint.model) + ",\"messages\":" + messages;
  std::string tools = trim_json(request.tools_json);
  if (!tools.empty()) {
    MNEMO_RETURN_IF_ERROR(check_json("tools", tools, true));
    body += ",\"tools\":" + tools;
  }
  std::string tool_choice = trim_json(request.tool_choice_json);
  if (!tool_choice.empty()) {
    MNEMO_RETURN_IF_ERROR(check_json("tool_choice", tool_choice, false));
    body += ",\"tool_choice\":" + tool_choice;
  }
  if (request.temperature)
    MNEMO_RETURN_IF_ERROR(append_number(body, "temperature", *request.temperature));
  if (request.top_p) MNEMO_RETURN_IF_ERROR(append_number(body, "top_p", *request.top_p));
  if (request.seed) body += ",\"seed\":" + std::to_string(*request.seed);
  if (request.max_tokens) body += ",\"max_tokens\":" + std::to_string(*request.max_tokens);
  if (request.stream) {
    body += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  } else {
    body += ",\"stream\":false";
  }
  body += "}";
  return body;
}

RemoteChatClient::RemoteChatClient(RemoteEndpoint endpoint)
    : endpoint_(std::move(endpoint)),
      chat_url_(remote_api_url(endpoint_.base_url, "chat/completions")),
      models_url_(remote_api_url(endpoint_.base_url, "models")) {}

Result<RemoteChatResult> RemoteChatClient::complete(const RemoteChatRequest& request,
                                                    const RemoteEventFn& on_event,
                                                    const std::atomic<bool>* cancel) const {
  Result<std::string> body = remote_request_body(endpoint_, request);
  if (!body) return body.status().with_context("remote " + chat_url_ + ": request");
  remote::HttpRequest http;
  http.url = chat_url_;
  http.post_body = std::move(*body);
  http.connect_timeout = endpoint_.connect_timeout;
  http.timeout = endpoint_.timeout;
  http.cancel = cancel;
  http.headers = {"Content-Type: application/json",
                  request.stream ? "Accept: text/event-stream" : "Accept: application/json",
                  // No "Expect: 100-continue" wait before large bodies.
                  "Expect:"};
  if (!endpoint_.api_key.empty())
    http.headers.push_back("Authorization: Bearer " + endpoint_.api_key);

  bool streamed = false;
  auto attempt_once = [&]() -> Attempt<RemoteChatResult> {
    RemoteStreamDecoder decoder;
    std::string buffered;
    bool decided = false, sse = false;
    Status sink_error;
    std::vector<ChatEvent> events;
    auto deliver = [&] {
      for (const ChatEvent& e : events) {
        if (on_event) on_event(e);
        streamed = true;
      }
      events.clear();
    };
    remote::BodySink sink = [&](const remote::HttpHead& head, std::string_view bytes) {
      if (!decided) {
        // The server decides: an SSE answer to a non-streamed request is still read as one.
        decided = true;
        sse = head.status == 200 && head.content_type.starts_with("text/event-stream");
      }
      if (sse) {
        Status status = decoder.push(bytes, events);
        deliver();
        if (!status.is_ok()) sink_error = status;
        return status.is_ok();
      }
      if (buffered.size() + bytes.size() > kMaxBufferedBody) {
        sink_error =
            Status::io_error("answer larger than " + std::to_string(kMaxBufferedBody) + " bytes");
        return false;
      }
      buffered.append(bytes);
      return true;
    };
    remote::HttpOutcome outcome = remote::http_exchange(http, sink);
    std::string prefix = "remote " + chat_url_ + ": ";
    if (auto failure = transfer_failure<RemoteChatResult>(outcome, chat_url_, endpoint_)) {
      if (sse && outcome.failure == remote::HttpFailure::kTransport) {
        failure->result =
            Status::io_error(prefix + "stream cut after " + std::to_string(decoder.chunks()) +
                             " chunks (" + std::to_string(decoder.bytes()) +
                             " bytes), without the [DONE] sentinel: " + outcome.error);
      }
      return std::move(*failure);
    }
    Attempt<RemoteChatResult> a;
    if (outcome.failure == remote::HttpFailure::kAbortedBySink) {
      a.result = sink_error.with_context(prefix.substr(0, prefix.size() - 2));
      return a;
    }
    if (outcome.head.status != 200) {
      a.result = remote_http_error(chat_url_, outcome.head.status, buffered);
      a.retry = retryable_http_status(outcome.head.status);
      a.retry_after = outcome.head.retry_after;
      return a;
    }
    Result<RemoteChatResult> result =
        sse ? decoder.finish(events) : parse_chat_completion(buffered);
    if (!result) {
      a.result = result.status().with_context(prefix.substr(0, prefix.size() - 2));
      // A cut stream that gave the caller nothing can be asked again.
      a.retry = sse && !streamed;
      return a;
    }
    if (sse) {
      deliver();
    } else {
      emit_whole(result->message, on_event);
    }
    a.result = std::move(result);
    return a;
  };
  int attempts = 0;
  Result<RemoteChatResult> result = with_retries<RemoteChatResult>(
      endpoint_, chat_url_, cancel, streamed, attempt_once, attempts);
  if (result) result->attempts = attempts;
  return result;
}

Result<std::vector<std::string>> RemoteChatClient::list_models() const {
  remote::HttpRequest http;
  http.url = models_url_;
  http.connect_timeout = endpoint_.connect_timeout;
  http.timeout = endpoint_.timeout;
  http.headers = {"Accept: application/json"};
  if (!endpoint_.api_key.empty())
    http.headers.push_back("Authorization: Bearer " + endpoint_.api_key);
  const bool streamed = false;
  auto attempt_once = [&]() -> Attempt<std::vector<std::string>> {
    std::string buffered;
    remote::BodySink sink = [&](const remote::HttpHead&, std::string_view bytes) {
      buffered.append(bytes);
      return buffered.size() <= kMaxBufferedBody;
    };
    remote::HttpOutcome outcome = remote::http_exchange(http, sink);
    if (auto failure =
            transfer_failure<std::vector<std::string>>(outcome, models_url_, endpoint_)) {
      return std::move(*failure);
    }
    Attempt<std::vector<std::string>> a;
    if (outcome.failure == remote::HttpFailure::kAbortedBySink) {
      a.result = Status::io_error("remote " + models_url_ + ": answer too large");
    } else if (outcome.head.status != 200) {
      a.result = remote_http_error(models_url_, outcome.head.status, buffered);
      a.retry = retryable_http_status(outcome.head.status);
      a.retry_after = outcome.head.retry_after;
    } else {
      Result<std::vector<std::string>> ids = parse_model_list(buffered);
      a.result = ids ? std::move(ids)
                     : Result<std::vector<std::string>>(
                           ids.status().with_context("remote " + models_url_));
    }
    return a;
  };
  int attempts = 0;
  return with_retries<std::vector<std::string>>(endpoint_, models_url_, nullptr, streamed,
                                                attempt_once, attempts);
}

}  // namespace mnemo::inference
