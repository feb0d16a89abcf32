// GCC 12 reports -Wmismatched-new-delete for Asio's coroutine frames: awaitable_frame_base has
// a class-specific operator new/delete pair (a recycling allocator) that the warning does not
// match across the inlined frame destruction. A known false positive of GCC 12, silenced
// for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <mnemo/inference/constraint.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/turn_mask.h>
#include <mnemo/server/openai_api.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <limits>
#include <map>
#include <mutex>

#include "openai_request.h"
#include "turn.h"

namespace mnemo::server {
namespace json = boost::json;
using inference::FinishReason;
using inference::TokenId;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// tool_choice "none": the DSML token, which every call starts with, is never sampled.
class BanToken final : public inference::LogitsProcessor {
 public:
  explicit BanToken(TokenId token) : token_(token) {}
  void apply(float* logits, int64_t vocab, int64_t) override {
    if (token_ >= 0 && token_ < vocab) logits[token_] = -std::numeric_limits<float>::infinity();
  }
  Status accept(TokenId) override { return Status::ok(); }

 private:
  TokenId token_;
};

// Tokens and the outcome handed from the engine's scheduler thread to the connection's strand: the
// callbacks queue under a lock and wake the coroutine by cancelling its timer on the strand.
struct Feed : std::enable_shared_from_this<Feed> {
  explicit Feed(asio::any_io_executor strand) : wake(std::move(strand)) {}
  std::mutex mu;
  std::vector<TokenId> tokens;
  std::optional<inference::RequestOutcome> outcome;
  bool wake_pending = false;
  asio::steady_timer wake;

  void notify() {
    // Called with mu held; one wake-up in flight is enough.
    if (wake_pending) return;
    wake_pending = true;
    asio::post(wake.get_executor(), [self = shared_from_this()] {
      {
        std::lock_guard lock(self->mu);
        self->wake_pending = false;
      }
      self->wake.cancel();
    });
  }
};

struct Prepared {
  std::vector<TokenId> prompt;
  int64_t max_new_tokens = 0;
  std::shared_ptr<inference::LogitsProcessor> processor;
};

std::string_view finish_reason(const TurnAssembler& turn, FinishReason reason) {
  if (turn.stopped()) return "stop";
  if (!turn.tool_calls().empty()) return "tool_calls";
  if (reason == FinishReason::kLength || reason == FinishReason::kContextFull) return "length";
  return "stop";
}

json::object usage_of(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

}  // namespace

struct OpenAiApi::Impl {
  const inference::Model& model;
  inference::Tokenizer tokenizer;
  OpenAiOptions options;
  std::shared_ptr<Metrics> metrics;
  std::shared_ptr<const inference::ConstraintVocabulary> vocab;
  std::unique_ptr<inference::ChatCodec> codec;
  int64_t context = 0;
  TokenId eos = 0;
  TokenId dsml = -1;
  // What no completion may sample, by thinking mode (inference/turn_mask.h).
  std::shared_ptr<const std::vector<TokenId>> banned_chat, banned_thinking;
  int64_t created = unix_seconds();
  std::mutex grammar_mu;
  std::map<std::string, std::shared_ptr<const inference::ToolCallGrammar>> grammars;
  // Declared last, destroyed first: its scheduler thread uses everything above.
  std::unique_ptr<inference::Engine> engine;

  Impl(const inference::Model& m, inference::Tokenizer t) : model(m), tokenizer(std::move(t)) {}

  json::object model_object() const {
    return {{"id", options.model_id}, {"object", "model"}, {"created", created},
            {"owned_by", "mnemo"}};
  }
  asio::awaitable<void> list_models(Exchange& ex);
  asio::awaitable<void> get_model(Exchange& ex);
  asio::awaitable<void> chat_completions(Exchange& ex);
  std::optional<ApiError> prepare(const CompletionRequest& req, Prepared& out);
  Result<std::shared_ptr<const inference::ToolCallGrammar>> grammar(const CompletionRequest& req);
};

Result<std::shared_ptr<const inference::ToolCallGrammar>> OpenAiApi::Impl::grammar(
    const CompletionRequest& req) {
  inference::ToolCallGrammarOptions o;
  if (req.tool_choice == ToolChoice::kNamed) o.forced_tool = req.forced_tool;
  o.max_calls = req.parallel_tool_calls ? 0 : 1;
  o.reasoning = req.thinking == inference::ThinkingMode::kThinking;
  std::string key = o.forced_tool.value_or("") + '\n' + std::to_string(o.max_calls) +
                    (o.reasoning ? "r" : "c");
  for (const std::string& t : req.tools) key += '\n' + t;
  std::lock_guard lock(grammar_mu);
  if (auto it = grammars.find(key); it != grammars.end()) return it->second;
  auto g = inference::ToolCallGrammar::compile(req.tools, o);
  if (!g) return g.status();
  if (grammars.size() >= 64) grammars.clear();
  grammars.emplace(std::move(key), *g);
  return *g;
}

std::optional<ApiError> OpenAiApi::Impl::prepare(const CompletionRequest& req, Prepared& out) {
  auto invalid = [](const Status& s, std::string param) {
    const std::string& m = s.message();
    // The codec's errors start with the field: "messages[2].role: ...".
    if (size_t colon = m.find(':'); colon != std::string::npos && colon < 64 &&
                                    (m.starts_with("messages") || m.starts_with("tools"))) {
      param = m.substr(0, colon);
    }
    return ApiError{400, m, "invalid_request_error", param, "invalid_value"};
  };
  if (Status s = req.sampling.validate(); !s) return invalid(s, "temperature");
  auto conv = inference::parse_conversation_json(req.conversation_json);
  if (!conv) return invalid(conv.status(), "messages");
  auto text = codec->render(*conv);
  if (!text) return invalid(text.status(), "messages");
  auto ids = tokenizer.encode(*text);
  if (!ids) return invalid(ids.status(), "messages");
  out.prompt = std::move(ids).value();
  const auto prompt = static_cast<int64_t>(out.prompt.size());
  if (prompt >= context) {
    return ApiError{400,
                    "the prompt is " + std::to_string(prompt) +
                        " tokens, and the context holds " + std::to_string(context) +
                        " (prompt and completion together)",
                    "exceed_context_size_error", "messages", "context_length_exceeded"};
  }
  const int64_t room = context - prompt;
  out.max_new_tokens = std::min(room, req.max_tokens.value_or(options.default_max_tokens));
  if (req.tool_choice == ToolChoice::kRequired || req.tool_choice == ToolChoice::kNamed) {
    auto g = grammar(req);
    if (!g) return invalid(g.status(), "tools");
    auto c = std::make_shared<inference::ToolCallConstraint>(*g, vocab);
    // A forced call always gets the budget of its shortest form, so it is complete and valid;
    // without a max_tokens it also gets room for longer arguments.
    const int64_t least = c->min_tokens() + (req.max_tokens ? 0 : 64);
    if (least > room) {
      return ApiError{400,
                      "the forced tool call needs up to " + std::to_string(c->min_tokens()) +
                          " tokens and the context has room for " + std::to_string(room),
                      "exceed_context_size_error", "messages", "context_length_exceeded"};
    }
    out.max_new_tokens = std::max(out.max_new_tokens, least);
    out.processor = std::move(c);
  } else if (req.tool_choice == ToolChoice::kNone && !req.tools.empty()) {
    out.processor = std::make_shared<BanToken>(dsml);
  }
  // Special and unknown tokens have no place in a reply, constrained or not.
  out.processor = inference::with_banned_tokens(
      req.thinking == inference::ThinkingMode::kThinking ? banned_thinking : banned_chat,
      std::move(out.processor));
  return std::nullopt;
}

asio::awaitable<void> OpenAiApi::Impl::list_models(Exchange& ex) {
  json::array data;
  data.push_back(model_object());
  json::object body{{"object", "list"}, {"data", std::move(data)}};
  auto write = ex.respond_json(http::status::ok, json::serialize(body));
  co_await std::move(write);
}

asio::awaitable<void> OpenAiApi::Impl::get_model(Exchange& ex) {
  if (ex.param("id") != options.model_id) {
    auto write = ex.respond_error(http::status::not_found,
                                  "no model '" + std::string(ex.param("id")) + "'", {}, "model",
                                  "model_not_found");
    co_await std::move(write);
    co_return;
  }
  auto write = ex.respond_json(http::status::ok, json::serialize(model_object()));
  co_await std::move(write);
}

asio::awaitable<void> OpenAiApi::Impl::chat_completions(Exchange& ex) {
  CompletionRequest req;
  Prepared prep;
  std::optional<ApiError> error = parse_completion_request(ex.request().body(), req);
  if (!error && req.model && *req.model != options.model_id) {
    error = ApiError{404, "no model '" + *req.model + "' (this server has '" + options.model_id + "')",
                     "invalid_request_error", "model", "model_not_found"};
  }
  if (!error) error = prepare(req, prep);
  if (error) {
    auto write = ex.respond_error(static_cast<http::status>(error->status), error->message,
                                  error->type, error->param, error->code);
    co_await std::move(write);
    co_return;
  }
  const auto started = std::chrono::steady_clock::now();
  const std::string id = "chatcmpl-" + req.digest.substr(0, 24);
  const int64_t created_at = unix_seconds();
  auto chunk = [&](json::value choices_or_null, bool final_usage, int64_t prompt_n,
                   int64_t completion_n) {
    json::object c{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created_at},
                   {"model", options.model_id}, {"system_fingerprint", "mnemo"}};
    c["choices"] = std::move(choices_or_null);
    if (req.include_usage) {
      c["usage"] = final_usage ? json::value(usage_of(prompt_n, completion_n)) : json::value(nullptr);
    }
    return "data: " + json::serialize(c) + "\n\n";
  };
  auto choice_chunk = [&](json::object delta, json::value finish) {
    json::array choices;
    choices.push_back(json::object{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                                   {"finish_reason", std::move(finish)}});
    return chunk(std::move(choices), false, 0, 0);
  };

  bool client_ok = true;
  if (req.stream) {
    auto begin = ex.begin_stream(http::status::ok, "text/event-stream");
    client_ok = co_await std::move(begin);
    if (client_ok) {
      auto first = ex.write_chunk(choice_chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
      client_ok = co_await std::move(first);
    }
    if (!client_ok) co_return;
  }

  auto strand = co_await asio::this_coro::executor;
  auto feed = std::make_shared<Feed>(strand);
  inference::Request request;
  request.prompt = prep.prompt;
  request.sampling = req.sampling;
  request.max_new_tokens = prep.max_new_tokens;
  request.stop_tokens = {eos};
  request.logits_processor = prep.processor;
  request.on_token = [feed](TokenId t, const float*) {
    std::lock_guard lock(feed->mu);
    feed->tokens.push_back(t);
    feed->notify();
  };
  request.on_done = [feed](inference::RequestOutcome o) {
    std::lock_guard lock(feed->mu);
    feed->outcome = std::move(o);
    feed->notify();
  };
  const inference::RequestId rid = engine->submit(std::move(request));
  // Nobody waits for the answer once the client is gone: the request ends, also mid-prefill.
  auto gone = std::make_shared<bool>(false);
  ex.watch_disconnect([gone, feed] {
    *gone = true;
    feed->wake.cancel();
  });
  struct StopWatch {
    Exchange& ex;
    ~StopWatch() { ex.stop_watch(); }
  } stop_watch{ex};

  inference::StreamDecoder decoder(tokenizer);
  TurnAssembler turn(req.thinking, req.stop, req.digest);
  std::vector<TokenId> batch;
  std::vector<json::object> deltas;
  std::optional<inference::RequestOutcome> outcome;
  bool cancelled = false;
  for (;;) {
    {
      std::lock_guard lock(feed->mu);
      batch.swap(feed->tokens);
      if (feed->outcome) outcome = std::move(feed->outcome);
    }
    for (TokenId t : batch) {
      auto piece = decoder.push(t);
      std::string text = piece ? std::move(piece).value() : decoder.finish() + "\xEF\xBF\xBD";
      if (t == eos && turn.failed()) continue;
      turn.push(text, deltas);
    }
    metrics->add_generated_tokens(static_cast<int64_t>(batch.size()));
    batch.clear();
    if (outcome) break;
    if (req.stream && client_ok) {
      for (json::object& d : deltas) {
        auto write = ex.write_chunk(choice_chunk(std::move(d), nullptr));
        if (!(client_ok = co_await std::move(write))) break;
      }
    }
    deltas.clear();
    if (*gone) client_ok = false;
    if ((turn.stopped() || !client_ok) && !cancelled) cancelled = engine->cancel(rid);
    feed->wake.expires_at(asio::steady_timer::time_point::max());
    auto wait = feed->wake.async_wait(kTuple);
    co_await std::move(wait);
  }
  metrics->observe_request_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  turn.push(decoder.finish(), deltas);
  turn.finish(outcome->reason == FinishReason::kStop, deltas);
  const auto prompt_n = static_cast<int64_t>(prep.prompt.size());
  const auto completion_n = static_cast<int64_t>(outcome->generated.size());
  const bool failed = outcome->reason == FinishReason::kError;

  if (req.stream) {
    for (json::object& d : deltas) {
      if (!client_ok) break;
      auto write = ex.write_chunk(choice_chunk(std::move(d), nullptr));
      client_ok = co_await std::move(write);
    }
    std::string tail;
    if (failed) {
      HttpResponse err = error_response(http::status::internal_server_error,
                                        outcome->status.message(), "server_error");
      tail += "data: " + err.body() + "\n";
    } else {
      tail += choice_chunk({}, json::string(finish_reason(turn, outcome->reason)));
      if (req.include_usage) tail += chunk(json::array(), true, prompt_n, completion_n);
    }
    tail += "data: [DONE]\n\n";
    if (client_ok) {
      auto write = ex.write_chunk(tail);
      client_ok = co_await std::move(write);
    }
    if (client_ok) {
      auto end = ex.end_stream();
      co_await std::move(end);
    }
    co_return;
  }

  if (failed) {
    auto write = ex.respond_error(http::status::internal_server_error, outcome->status.message(),
                                  "server_error");
    co_await std::move(write);
    co_return;
  }
  json::object message{{"role", "assistant"}};
  message["content"] = turn.content().empty() && !turn.tool_calls().empty()
                           ? json::value(nullptr)
                           : json::value(turn.content());
  if (req.thinking == inference::ThinkingMode::kThinking) {
    message["reasoning_content"] = turn.reasoning();
  }
  if (!turn.tool_calls().empty()) {
    json::array calls;
    for (const inference::ToolCall& c : turn.tool_calls()) {
      calls.push_back(json::object{
          {"id", c.id},
          {"type", "function"},
          {"function", json::object{{"name", c.name}, {"arguments", c.arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  json::array choices;
  choices.push_back(json::object{{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr},
                                 {"finish_reason", finish_reason(turn, outcome->reason)}});
  json::object body{{"id", id},
                    {"object", "chat.completion"},
                    {"created", created_at},
                    {"model", options.model_id},
                    {"system_fingerprint", "mnemo"},
                    {"choices", std::move(choices)},
                    {"usage", usage_of(prompt_n, completion_n)}};
  auto write = ex.respond_json(http::status::ok, json::serialize(body));
  co_await std::move(write);
}

OpenAiApi::OpenAiApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OpenAiApi::~OpenAiApi() = default;

Result<std::unique_ptr<OpenAiApi>> OpenAiApi::create(const inference::Model& model,
                                                     inference::Tokenizer tokenizer,
                                                     OpenAiOptions options,
                                                     std::shared_ptr<Metrics> metrics) {
  auto impl = std::make_unique<Impl>(model, std::move(tokenizer));
  const inference::ModelConfig& config = model.config();
  impl->options = std::move(options);
  impl->metrics = metrics ? std::move(metrics) : std::make_shared<Metrics>();
  impl->context = config.max_position_embeddings;
  if (impl->options.max_context > 0) {
    impl->context = std::min(impl->context, impl->options.max_context);
  }
  impl->eos = static_cast<TokenId>(config.eos_token_id);
  auto dsml = impl->tokenizer.token_id(inference::tokens::kDsml);
  if (!dsml) {
    return Status::invalid_argument(
        "the model's tokenizer has no DSML token: not a V4 tokenizer (tool calls need one)");
  }
  impl->dsml = *dsml;
  auto banned = [&](inference::ThinkingMode mode) {
    return std::make_shared<const std::vector<TokenId>>(
        inference::tokens_banned_in_turns(impl->tokenizer, config.vocab_size, mode, impl->eos));
  };
  impl->banned_chat = banned(inference::ThinkingMode::kChat);
  impl->banned_thinking = banned(inference::ThinkingMode::kThinking);
  auto codec = inference::make_chat_codec("v4");
  if (!codec) return codec.status();
  impl->codec = std::move(codec).value();
  auto vocab = inference::ConstraintVocabulary::build(impl->tokenizer);
  if (!vocab) return vocab.status().with_context("building the tool-call constraint");
  impl->vocab = *vocab;
  impl->engine = std::make_unique<inference::Engine>(model, impl->options.engine);
  return std::unique_ptr<OpenAiApi>(new OpenAiApi(std::move(impl)));
}

void OpenAiApi::add_routes(Router& router) {
  Impl* impl = impl_.get();
  router.add(http::verb::get, "/v1/models",
             [impl](Exchange& ex) { return impl->list_models(ex); });
  router.add(http::verb::get, "/v1/models/{id}",
             [impl](Exchange& ex) { return impl->get_model(ex); });
  router.add(http::verb::post, "/v1/chat/completions",
             [impl](Exchange& ex) { return impl->chat_completions(ex); });
}

}  // namespace mnemo::server
