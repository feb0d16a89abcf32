#pragma once
// The remote backend: a client for any OpenAI-compatible server (vLLM, SGLang, llama-server,
// DeepSeek's API) over POST {base_url}/v1/chat/completions, streamed as server-sent events, with
// retries, timeouts and cancellation. The parsers it uses are public so they can be tested alone.
#include <mnemo/base/status.h>
#include <mnemo/inference/chat.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::inference {

struct RemoteEndpoint {
  // "http://127.0.0.1:8080" or "https://api.deepseek.com", with or without a trailing "/v1".
  std::string base_url;
  std::string model;
  std::string api_key;  // sent as Authorization: Bearer when non-empty
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{600000};  // one whole attempt
  // Retries on 429/500/502/503/504 and connection failures, never once something was streamed.
  int max_retries = 4;
  // Attempt n waits a random time in [base * 2^(n-1) / 2, base * 2^(n-1)], or Retry-After when the
  // server sent one, never more than max_backoff.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds max_backoff{60000};
};

struct RemoteChatRequest {
  std::string messages_json;     // JSON array of OpenAI messages
  std::string tools_json;        // JSON array of tool definitions, or empty
  std::string tool_choice_json;  // "\"auto\"", "\"required\"", "\"none\"", an object, or empty
  std::optional<double> temperature, top_p;
  std::optional<uint64_t> seed;
  std::optional<int64_t> max_tokens;
  bool stream = true;  // SSE with stream_options.include_usage
};

struct RemoteUsage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

struct RemoteChatResult {
  AssistantMessage message;  // tool calls keep the server's id in ToolCall::id
  std::string
      finish_reason;  // "stop", "length", "tool_calls", ...; empty when the server sent none
  RemoteUsage usage;
  int attempts = 1;
};

// Streamed pieces as they arrive: kTextDelta, kReasoningDelta, kToolCallBegin, kToolCallArgsDelta,
// kToolCallEnd (tool_index is the call's position in the result's tool_calls).
using RemoteEventFn = std::function<void(const ChatEvent&)>;

class RemoteChatClient {
 public:
  explicit RemoteChatClient(RemoteEndpoint endpoint);

  const RemoteEndpoint& endpoint() const { return endpoint_; }
  // The URL chat completions are posted to.
  const std::string& chat_url() const { return chat_url_; }

  // Blocking; run it on a worker thread. `on_event` may be empty. `cancel` (may be null) is polled
  // every few milliseconds; once set the call returns a status for which is_remote_cancellation()
  // holds.
  Result<RemoteChatResult> complete(const RemoteChatRequest& request, const RemoteEventFn& on_event,
                                    const std::atomic<bool>* cancel) const;
  // GET /v1/models: the ids, in the server's order.
  Result<std::vector<std::string>> list_models() const;

 private:
  RemoteEndpoint endpoint_;
  std::string chat_url_;
  std::string models_url_;
};

// base_url + "/v1/" + path, for a base_url given with or without "/v1" and trailing slashes.
std::string remote_api_url(std::string_view base_url, std::string_view path);

// Whether a status is the one complete() returns when cancelled.
bool is_remote_cancellation(const Status& status);

// The JSON body complete() posts. Errors name a request field that is not valid JSON of its kind.
Result<std::string> remote_request_body(const RemoteEndpoint& endpoint,
                                        const RemoteChatRequest& request);

// One server-sent event's data (its `data:` lines joined with "\n").
struct SseEvent {
  std::string data;
  size_t number = 0;  // 1-based, counting events with data
  size_t offset = 0;  // stream byte where the event's first line began
};

// Incremental server-sent-events parser: bytes in any split; lines end in LF, CRLF or CR; `:`
// comments, `event:`, `id:` and `retry:` lines are ignored; events end at a blank line. After
// `data: [DONE]` the rest of the stream is ignored.
class SseParser {
 public:
  void push(std::string_view bytes, std::vector<SseEvent>& events);
  bool done() const { return done_; }
  // Whether the stream so far ends inside an event (a line or data not yet closed).
  bool in_event() const { return !line_.empty() || has_data_; }
  size_t bytes() const { return bytes_; }
  size_t events() const { return events_; }

 private:
  void end_line(std::vector<SseEvent>& events);

  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;
  bool done_ = false;
  size_t bytes_ = 0;
  size_t line_start_ = 0;
  size_t event_start_ = 0;
  size_t events_ = 0;
};

// Assembles a streamed answer from its chat.completion.chunk objects: content and reasoning
// (`reasoning_content`, or `reasoning` as newer vLLM names it) deltas, tool calls from their
// pieces (tool_calls[i].index, id, function.name, function.arguments), finish_reason and usage.
// Unknown fields are ignored; only choice 0 is read.
class ChatChunkAccumulator {
 public:
  // `where` names the chunk in errors ("chunk 3 at stream byte 812").
  Status add(std::string_view chunk_json, std::string_view where, std::vector<ChatEvent>& events);
  // Ends every tool call (kToolCallEnd, in order) and hands over the result.
  RemoteChatResult finish(std::vector<ChatEvent>& events);

 private:
  RemoteChatResult result_;
  std::map<int64_t, size_t> tool_slots_;  // the server's tool index -> position in tool_calls
  bool tools_ended_ = false;
};

// SseParser + ChatChunkAccumulator: the body of a streamed completion, in any split.
class RemoteStreamDecoder {
 public:
  // An error (malformed chunk, an error object in the stream) sticks: later pushes return it.
  Status push(std::string_view bytes, std::vector<ChatEvent>& events);
  // The result, or an error naming what was missing: the [DONE] sentinel, or the rest of an event
  // the stream was cut in.
  Result<RemoteChatResult> finish(std::vector<ChatEvent>& events);
  size_t chunks() const { return sse_.events(); }
  size_t bytes() const { return sse_.bytes(); }

 private:
  SseParser sse_;
  ChatChunkAccumulator accumulator_;
  std::vector<SseEvent> pending_;
  Status failed_;
};

// A non-streamed chat.completion body.
Result<RemoteChatResult> parse_chat_completion(std::string_view body);

// A GET /v1/models body: {"data": [{"id": ...}, ...]}.
Result<std::vector<std::string>> parse_model_list(std::string_view body);

// The status for an HTTP error answer: "remote URL: HTTP 400 TYPE: MESSAGE" from an OpenAI error
// body ({"error": {"message", "type", "code"}}), else the start of the body. 4xx are
// kInvalidArgument (404 kNotFound), the rest kIoError.
Status remote_http_error(std::string_view url, long http_status, std::string_view body);

// The offset of the first byte where `text` stops being one JSON value (text.size() when it ends
// too soon), or std::string_view::npos when it is valid JSON.
size_t json_error_offset(std::string_view text);

}  // namespace mnemo::inference
