#include "model_turn.h"

#include <mnemo/inference/turn_mask.h>

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <variant>

namespace mnemo::agent::internal {

namespace asio = boost::asio;
using inference::TokenId;

namespace {

// What the scheduler thread hands to the turn: a sampled token, or the request's end.
struct TurnMessage {
  std::variant<TokenId, inference::RequestOutcome> value;
};
using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code,
                                                            std::shared_ptr<TurnMessage>)>;

}  // namespace

asio::awaitable<TurnOutput> run_embedded_turn(EmbeddedModel& m, TurnOptions opt) {
  auto ex = co_await asio::this_coro::executor;
  // Room for every token and the outcome, so the scheduler's try_send never fails or waits.
  auto channel = std::make_shared<Channel>(ex, static_cast<size_t>(opt.max_new_tokens) + 4);

  TurnOutput out;
  out.prompt_tokens = static_cast<int64_t>(opt.prompt.size());
  inference::Request request;
  request.prompt = std::move(opt.prompt);
  request.sequence = std::move(opt.sequence);
  request.sampling = opt.sampling;
  request.sampler_state = opt.sampler_state;
  request.max_new_tokens = opt.max_new_tokens;
  request.stop_tokens = {m.eos};
  // Special and unknown tokens have no place in a reply, whatever the turn's own processor.
  request.logits_processor = inference::with_banned_tokens(m.banned, opt.processor);
  request.on_token = [channel](TokenId t, const float*) {
    channel->try_send(boost::system::error_code{}, std::make_shared<TurnMessage>(TurnMessage{t}));
  };
  request.on_done = [channel](inference::RequestOutcome o) {
    channel->try_send(boost::system::error_code{},
                      std::make_shared<TurnMessage>(TurnMessage{std::move(o)}));
  };
  const inference::RequestId id = m.engine->submit(std::move(request));
  if (opt.on_submit) opt.on_submit(id);

  inference::StreamDecoder decoder(*m.tokenizer);
  std::unique_ptr<inference::ChatOutputParser> parser =
      inference::make_v4_output_parser(inference::ThinkingMode::kChat);
  std::vector<inference::ChatEvent> events;
  auto feed = [&](std::string_view piece) {
    events.clear();
    parser->push(piece, events);
    if (opt.on_event) {
      for (const auto& e : events) opt.on_event(e);
    }
  };
  for (;;) {
    auto receive = channel->async_receive(asio::use_awaitable);
    std::shared_ptr<TurnMessage> msg = co_await std::move(receive);
    if (auto* token = std::get_if<TokenId>(&msg->value)) {
      auto piece = decoder.push(*token);
      // An id the model has but the tokenizer lacks (vocabulary padding) shows as U+FFFD.
      feed(piece ? *piece : decoder.finish() + "\xEF\xBF\xBD");
      continue;
    }
    inference::RequestOutcome& o = std::get<inference::RequestOutcome>(msg->value);
    feed(decoder.finish());
    out.reason = o.reason;
    out.status = o.status;
    out.sequence = std::move(o.sequence);
    out.sampler_state = std::move(o.sampler_state);
    out.generated = std::move(o.generated);
    out.completion_tokens = static_cast<int64_t>(out.generated.size());
    break;
  }
  if (out.reason == inference::FinishReason::kStop) {
    events.clear();
    parser->finish(events);
    for (const auto& e : events) {
      if (e.kind == inference::ChatEventKind::kError) out.parse_error = e.text;
      if (opt.on_event) opt.on_event(e);
    }
    out.well_formed = !parser->failed();
  } else {
    out.parse_error = "the turn ended before the model finished it";
  }
  if (out.well_formed) {
    out.message = parser->message();
  } else {
    // Not a well-formed turn: keep what the model wrote as plain content, with no tool calls.
    std::string raw = parser->raw_text();
    if (out.reason == inference::FinishReason::kStop) {
      auto eos = m.tokenizer->token_bytes(m.eos);
      if (raw.size() >= eos.size() && raw.compare(raw.size() - eos.size(), eos.size(), eos) == 0) {
        raw.resize(raw.size() - eos.size());
      }
    }
    out.message.content = std::move(raw);
  }
  co_return out;
}

}  // namespace mnemo::agent::internal
