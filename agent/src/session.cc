// GCC 12 reports -Wmismatched-new-delete for Asio's coroutine frames: awaitable_frame_base has
// a class-specific operator new/delete pair (a recycling allocator) that the warning does not
// match across the inlined frame destruction. A known false positive of GCC 12, silenced
// for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include "session.h"

#include <mnemo/inference/chat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdlib>

#include "event_payloads.h"
#include "model_turn.h"
#include "processors.h"

namespace mnemo::agent::internal {

namespace asio = boost::asio;
using inference::TokenId;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string neutralize(std::string text) {
  static constexpr std::string_view kBar = "｜";
  size_t pos = 0;
  while ((pos = text.find(kBar, pos)) != std::string::npos) text.replace(pos, kBar.size(), "|");
  return text;
}

Session::Session(Runtime::Impl& runtime, JobState state, EmbeddedModel* model, JobObserver observer)
    : rt_(runtime), state_(std::move(state)), model_(model), observer_(std::move(observer)) {}

Status Session::setup() {
  if (set_up_) return Status::ok();
  set_up_ = true;
  MNEMO_RETURN_IF_ERROR(build_tools(state_, &rt_.store, registry_, tool_ctx_));
  deadline_ = Clock::now() + state_.spec.limits.timeout;
  if (!model_) return setup_remote();
  const ToolChoice& choice = state_.spec.tool_choice;
  if (choice.kind == ToolChoiceKind::kRequired || choice.kind == ToolChoiceKind::kTool ||
      choice.kind == ToolChoiceKind::kAuto) {
    std::vector<std::string> schemas = registry_.function_schemas();
    if (!schemas.empty()) {
      inference::ToolCallGrammarOptions options;
      if (choice.kind == ToolChoiceKind::kTool) options.forced_tool = choice.tool;
      auto grammar = inference::ToolCallGrammar::compile(schemas, options);
      if (!grammar) return Status::invalid_argument("tools: " + grammar.status().message());
      grammar_ = std::move(grammar).value();
      if (!grammar_->unenforced().empty()) live("notice", unenforced_notice(), 0, "tools");
    }
  }
  deadline_ = Clock::now() + state_.spec.limits.timeout;
  return Status::ok();
}

std::string Session::unenforced_notice() const {
  // "tools[I].function.parameters.PATH" -> "NAME: PATH".
  const std::vector<std::string> names = registry_.names();
  std::string out;
  for (const std::string& where : grammar_->unenforced()) {
    std::string item = where;
    const size_t close = where.find("].function.");
    if (where.rfind("tools[", 0) == 0 && close != std::string::npos) {
      const size_t i = std::strtoul(where.c_str() + 6, nullptr, 10);
      if (i < names.size()) item = names[i] + ": " + where.substr(close + 11);
    }
    out += (out.empty() ? "" : ", ") + item;
  }
  return "schema keywords not enforced while decoding (each call is checked against them before "
         "it runs): " + out;
}

inference::Conversation Session::conversation(size_t message_count) const {
  inference::Conversation conv;
  conv.tool_schemas = registry_.function_schemas();
  conv.thinking_mode = inference::ThinkingMode::kChat;
  for (size_t i = 0; i < message_count; ++i) {
    inference::ChatMessage m = state_.messages[i];
    if (m.role == inference::ChatRole::kUser || m.role == inference::ChatRole::kTool)
      m.content = neutralize(m.content);
    conv.messages.push_back(std::move(m));
  }
  return conv;
}

size_t Session::messages_through_last_turn() const {
  size_t n = state_.messages.size();
  while (n > 0 && state_.messages[n - 1].role != inference::ChatRole::kAssistant) --n;
  return n;
}

asio::awaitable<Status> Session::begin(const std::string& input) {
  auto prepared = prepare_input(input);
  if (!prepared) co_return prepared.status();
  auto c = commit_input(std::move(prepared).value());
  co_return co_await std::move(c);
}

asio::awaitable<Status> Session::retry() {
  MNEMO_CO_RETURN_IF_ERROR(setup());
  auto c = commit({retried_event(state_.error)}, false);
  co_return co_await std::move(c);
}

asio::awaitable<Status> Session::commit_input(PreparedInput in) {
  auto c = commit({std::move(in.event)}, false);
  co_return co_await std::move(c);
}

Result<Session::PreparedInput> Session::prepare_input(const std::string& input) {
  MNEMO_RETURN_IF_ERROR(setup());
  const bool first = state_.messages.empty();
  if (!model_) {  // a remote model renders its own prompt: no tokens here
    // Bytes bound what the remote server is sent on the operator's key (a token is >= 1 byte).
    if (input_ceiling_ && input.size() + state_.spec.instructions.size() > 4 * input_ceiling_) {
      return Status::permission_denied("the input is " + std::to_string(input.size()) +
                                       " bytes, over the " + std::to_string(input_ceiling_) +
                                       "-token ceiling the operator set for prompts");
    }
    return PreparedInput{input_event(first ? state_.spec.instructions : "", input, {})};
  }
  inference::Conversation conv = conversation(state_.messages.size());
  if (first && !state_.spec.instructions.empty()) {
    inference::ChatMessage sys;
    sys.role = inference::ChatRole::kSystem;
    sys.content_kind = inference::ContentKind::kText;
    sys.content = state_.spec.instructions;
    conv.messages.push_back(std::move(sys));
  }
  std::string before;
  if (!first) {
    auto b = inference::render_v4_prompt(conv);
    if (!b) return Status::internal("rendering the session: " + b.status().message());
    before = std::move(b).value();
  }
  inference::ChatMessage user;
  user.role = inference::ChatRole::kUser;
  user.content_kind = inference::ContentKind::kText;
  user.content = neutralize(input);
  conv.messages.push_back(std::move(user));
  auto text = inference::render_v4_prompt(conv);
  if (!text) return Status::invalid_argument("the input: " + text.status().message());
  size_t drop = 0;
  if (text->compare(0, before.size(), before) != 0) {
    // The last run ended on tool results the model never answered: their rendering ends with the
    // assistant's generation prompt, where the format puts the user's text instead. Those tokens
    // were never fed to the model; the new input replaces them from the last assistant turn on.
    const size_t assistant = messages_through_last_turn();
    auto base = inference::render_v4_prompt(conversation(assistant));
    if (!base || assistant == state_.messages.size() ||
        text->compare(0, base->size(), *base) != 0 ||
        state_.tokens_after_turn > state_.transcript.size() ||
        fed_ > state_.transcript.size() - state_.tokens_after_turn) {
      return Status::internal("the rendered conversation changed before the new input");
    }
    before = std::move(base).value();
    drop = state_.tokens_after_turn;
  }
  auto tokens = model_->tokenizer->encode(std::string_view(*text).substr(before.size()));
  if (!tokens) return Status::invalid_argument("the input: " + tokens.status().message());
  if (input_ceiling_ && tokens->size() > input_ceiling_) {
    return Status::permission_denied(
        std::string(first ? "the job's prompt (instructions, tools and input)" : "the input") +
        " is " + std::to_string(tokens->size()) + " tokens, over the ceiling of " +
        std::to_string(input_ceiling_) + " the operator set (limits.prompt_tokens)");
  }
  return PreparedInput{
      input_event(first ? state_.spec.instructions : "", input, *tokens, drop)};
}

ResumeRecord Session::restore_kv() {
  ResumeRecord r;
  const auto transcript = static_cast<int64_t>(state_.transcript.size());
  r.tokens_prefilled = transcript;
  auto restored = rt_.store.restore(*model_->model, state_.id);
  if (!restored) {
    r.reason = "no usable KV snapshot (" + restored.status().message() + ")";
    return r;
  }
  const auto& tokens = restored->tokens;
  if (tokens.size() > state_.transcript.size() ||
      !std::equal(tokens.begin(), tokens.end(), state_.transcript.begin())) {
    r.reason = "KV snapshot " + std::to_string(restored->info.number) + " (position " +
               std::to_string(restored->info.position) + ") does not match the transcript";
    return r;
  }
  sequence_ = std::move(restored->sequence);
  fed_ = tokens.size();
  r.from_snapshot = true;
  r.snapshot = restored->info.number;
  r.position = static_cast<int64_t>(fed_);
  r.tokens_prefilled = transcript - r.position;
  return r;
}

Result<std::vector<TokenId>> Session::fed_tokens(std::span<const TokenId> uncommitted) const {
  const size_t have = state_.transcript.size();
  if (fed_ > have + uncommitted.size()) {
    return Status::internal("the sequence holds " + std::to_string(fed_) +
                            " tokens, more than the transcript's " + std::to_string(have) +
                            " and the turn's " + std::to_string(uncommitted.size()));
  }
  std::vector<TokenId> out(state_.transcript.begin(),
                           state_.transcript.begin() + static_cast<std::ptrdiff_t>(std::min(fed_, have)));
  if (fed_ > have) {
    out.insert(out.end(), uncommitted.begin(),
               uncommitted.begin() + static_cast<std::ptrdiff_t>(fed_ - have));
  }
  return out;
}

asio::awaitable<Status> Session::run(bool restore) {
  if (restore) {
    MNEMO_CO_RETURN_IF_ERROR(setup());
    // The remote side owns its cache; a job that never ran a turn has nothing to restore.
    if (!state_.finished && model_ && state_.steps > 0) {
      ResumeRecord how = restore_kv();
      if (!how.from_snapshot)
        live("notice", how.reason + "; prefilling the transcript", 0, "resume");
      auto c = commit({resumed_event(how)}, false);
      MNEMO_CO_RETURN_IF_ERROR(co_await std::move(c));
    }
  }
  asio::steady_timer deadline(co_await asio::this_coro::executor, deadline_);
  deadline.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      if (stop_ == Stop::kNone) stop_ = Stop::kTime;
      cancel_model();
      if (tool_signal_) tool_signal_->emit(asio::cancellation_type::terminal);
    }
  });
  Status status;
  while (!state_.finished) {
    if (stop_ != Stop::kNone) {
      auto f = finish_stopped();
      status = co_await std::move(f);
      break;
    }
    if (!state_.calls_settled()) {
      auto settle = settle_calls();
      Result<bool> waiting = co_await std::move(settle);
      if (!waiting) {
        status = waiting.status();
        break;
      }
      if (*waiting) break;
      continue;
    }
    if (auto limit = limit_reached()) {
      auto c = commit({limit_event(*limit, *limit == "disk" ? disk_detail() : ""),
                       finished_event("limit", state_.answer, state_.steps,
                                      state_.generated_tokens, *limit)},
                      false);
      status = co_await std::move(c);
      break;
    }
    auto t = turn();
    status = co_await std::move(t);
    if (!status) break;
  }
  deadline.cancel();
  auto d = drain();
  Status drained = co_await std::move(d);
  co_return status ? drained : status;
}

void Session::stop(StopMode mode) {
  if (stop_ == Stop::kNone || mode == StopMode::kCancel)
    stop_ = mode == StopMode::kCancel ? Stop::kCancel : Stop::kPause;
  cancel_model();
  if (tool_signal_) tool_signal_->emit(asio::cancellation_type::terminal);
}

asio::awaitable<Status> Session::finish_stopped() {
  if (stop_ == Stop::kPause) co_return Status::ok();
  std::vector<memory::NewEvent> events;
  if (stop_ == Stop::kTime) {
    events.push_back(limit_event("time", "limits.timeout"));
    events.push_back(
        finished_event("limit", state_.answer, state_.steps, state_.generated_tokens, "time"));
  } else {
    events.push_back(
        finished_event("cancelled", state_.answer, state_.steps, state_.generated_tokens, ""));
  }
  auto c = commit(std::move(events), false);
  co_return co_await std::move(c);
}

std::optional<std::string> Session::limit_reached() const {
  const LimitsSpec& limits = state_.spec.limits;
  if (state_.run_steps >= limits.max_steps) return "steps";
  if (state_.run_generated_tokens >= limits.max_tokens) return "tokens";
  if (model_ && static_cast<int64_t>(state_.transcript.size()) >=
                    model_->model->config().max_position_embeddings) {
    return "context";
  }
  if (Clock::now() >= deadline_) return "time";
  if (!disk_detail().empty()) return "disk";
  return std::nullopt;
}

std::string Session::disk_detail() const {
  const uint64_t quota = state_.spec.sandbox.disk_bytes;
  if (quota == 0 || quota == UINT64_MAX || tool_ctx_.workspace.empty()) return {};
  const uint64_t used = workspace_bytes(tool_ctx_.workspace, quota);
  if (used <= quota) return {};
  return "the workspace holds more than " + format_size(quota) + " (sandbox.disk)";
}

std::shared_ptr<inference::LogitsProcessor> Session::processor(int64_t budget,
                                                               Status& refusal) const {
  const ToolChoice& choice = state_.spec.tool_choice;
  if (choice.kind == ToolChoiceKind::kNone || registry_.names().empty()) {
    return model_->dsml >= 0 ? make_ban_processor({model_->dsml}) : nullptr;
  }
  if (choice.kind == ToolChoiceKind::kAuto) {
    return make_auto_tool_processor(grammar_, model_->vocab, *model_->tokenizer, model_->dsml);
  }
  auto constraint = std::make_shared<inference::ToolCallConstraint>(grammar_, model_->vocab);
  if (constraint->min_tokens() > budget) {
    refusal =
        Status::invalid_argument("the " + std::to_string(budget) +
                                 " tokens left cannot hold a complete tool call (it needs up to " +
                                 std::to_string(constraint->min_tokens()) + ")");
  }
  return constraint;
}

void Session::live_from_chat(const inference::ChatEvent& e) {
  switch (e.kind) {
    case inference::ChatEventKind::kToolCallBegin:
      // The parser names a call once, at its beginning; its argument deltas carry only the index.
      if (call_names_.size() <= e.tool_index) call_names_.resize(e.tool_index + 1);
      call_names_[e.tool_index] = e.name;
      break;
    case inference::ChatEventKind::kTextDelta:
      live("message.delta", e.text);
      break;
    case inference::ChatEventKind::kReasoningDelta:
      live("reasoning.delta", e.text);
      break;
    case inference::ChatEventKind::kToolCallArgsDelta:
      live("tool_call.args.delta", e.text, e.tool_index,
           e.tool_index < call_names_.size() && !call_names_[e.tool_index].empty()
               ? call_names_[e.tool_index]
               : e.name);
      break;
    default:
      break;
  }
}

void Session::live(std::string type, std::string text, size_t tool_index, std::string name) {
  if (!observer_.on_live) return;
  observer_.on_live(LiveEvent{.type = std::move(type),
                              .seq = state_.last_seq + 1,
                              .text = std::move(text),
                              .tool_index = tool_index,
                              .name = std::move(name),
                              .call_id = {},
                              .stream = {}});
}

void Session::cancel_model() {
  if (request_ && model_) model_->engine->cancel(*request_);
  if (remote_cancel_) remote_cancel_->store(true);
}

asio::awaitable<Status> Session::turn() {
  if (!model_) {
    auto t = remote_turn();
    co_return co_await std::move(t);
  }
  step_start_ = Clock::now();
  step_stats_ = StepStats{};
  step_stats_.step = state_.steps + 1;
  const LimitsSpec& limits = state_.spec.limits;
  const int64_t context_left = model_->model->config().max_position_embeddings -
                               static_cast<int64_t>(state_.transcript.size());
  const int64_t tokens_left = static_cast<int64_t>(limits.max_tokens - state_.run_generated_tokens);
  const int64_t budget =
      std::min({context_left, tokens_left, static_cast<int64_t>(limits.max_turn_tokens)});
  Status refusal;
  auto proc = processor(budget, refusal);
  if (!refusal && budget == static_cast<int64_t>(limits.max_turn_tokens)) {
    refusal = Status::invalid_argument("limits.max_turn_tokens: " + refusal.message());
  }
  if (!refusal) {
    const std::string which =
        context_left <= tokens_left && context_left < static_cast<int64_t>(limits.max_turn_tokens)
            ? "context"
            : "tokens";
    auto c = commit(
        {limit_event(which, refusal.message()),
         finished_event("limit", state_.answer, state_.steps, state_.generated_tokens, which)},
        false);
    co_return co_await std::move(c);
  }

  TurnOptions opt;
  if (fed_ > state_.transcript.size())
    co_return Status::internal("the sequence is ahead of the transcript");
  opt.prompt.assign(state_.transcript.begin() + static_cast<std::ptrdiff_t>(fed_),
                    state_.transcript.end());
  opt.sequence = std::move(sequence_);
  sequence_.reset();
  opt.sampling.temperature = state_.spec.sampling.temperature;
  opt.sampling.top_p = state_.spec.sampling.top_p;
  opt.sampling.seed = state_.origin.seed;
  opt.sampler_state = state_.sampler_state;
  opt.max_new_tokens = budget;
  opt.processor = std::move(proc);
  opt.on_submit = [this](inference::RequestId id) { request_ = id; };
  call_names_.clear();
  opt.on_event = [this](const inference::ChatEvent& e) { live_from_chat(e); };
  auto run = run_embedded_turn(*model_, std::move(opt));
  TurnOutput out = co_await std::move(run);
  request_.reset();
  step_stats_.model_ms = ms_since(step_start_);
  step_stats_.generated_tokens = static_cast<int64_t>(out.generated.size());
  step_stats_.prompt_tokens = out.prompt_tokens;
  if (out.sequence) {
    sequence_ = std::move(out.sequence);
    fed_ = static_cast<size_t>(sequence_->position());
  } else {
    fed_ = 0;
  }
  if (out.reason == inference::FinishReason::kCancelled) {
    // The partial turn is dropped; the sequence holds tokens the log does not, so it goes too.
    sequence_.reset();
    fed_ = 0;
    co_return Status::ok();
  }
  if (out.reason == inference::FinishReason::kError) {
    sequence_.reset();
    fed_ = 0;
    auto c =
        commit({error_event("model: " + out.status.message()),
                finished_event("error", state_.answer, state_.steps, state_.generated_tokens, "")},
               false);
    co_return co_await std::move(c);
  }

  auto c = commit_turn(out, budget);
  co_return co_await std::move(c);
}

asio::awaitable<Status> Session::commit_turn(TurnOutput& out, int64_t budget) {
  const LimitsSpec& limits = state_.spec.limits;
  const uint32_t step = state_.steps + 1;
  TurnRecord record;
  record.step = step;
  record.message = std::move(out.message);
  for (size_t i = 0; i < record.message.tool_calls.size(); ++i) {
    record.message.tool_calls[i].id = tool_call_id(state_.id, step, i);
  }
  record.tokens = out.generated;
  record.sampler_state = out.sampler_state;
  record.prompt_tokens = out.prompt_tokens;
  record.completion_tokens = out.completion_tokens;
  const bool calls = !record.message.tool_calls.empty();
  std::vector<memory::NewEvent> events;
  bool snapshot = false;
  switch (out.reason) {
    case inference::FinishReason::kStop:
      record.finish = calls ? "tool_calls" : "stop";
      break;
    case inference::FinishReason::kLength:
      record.finish = "length";
      break;
    default:
      record.finish = "context";
      break;
  }
  events.push_back(message_event(record));
  const uint64_t generated = state_.generated_tokens + static_cast<uint64_t>(out.completion_tokens);
  if (out.reason == inference::FinishReason::kStop && calls) {
    CallState first;
    first.id = record.message.tool_calls[0].id;
    first.name = record.message.tool_calls[0].name;
    first.arguments = record.message.tool_calls[0].arguments;
    const ToolSpec* spec = state_.spec.find_tool(first.name);
    // The first call's intent rides with the turn when it can run at once.
    if (!spec || spec->approval == Approval::kNever) {
      events.push_back(intent_event(step, first));
      fresh_intents_.insert(first.id);
    }
  } else {
    snapshot = true;
    if (out.reason == inference::FinishReason::kStop) {
      events.push_back(finished_event("completed", record.message.content, step, generated, ""));
    } else {
      const char* which = out.reason == inference::FinishReason::kLength ? "tokens" : "context";
      std::string detail;
      if (out.reason == inference::FinishReason::kLength) {
        detail = budget == static_cast<int64_t>(limits.max_turn_tokens)
                     ? "the turn reached limits.max_turn_tokens (" + std::to_string(budget) + ")"
                     : "the job reached limits.max_tokens";
      }
      events.push_back(limit_event(which, detail));
      events.push_back(finished_event("limit", record.message.content, step, generated, which));
    }
  }
  auto c = commit(std::move(events), snapshot, false, out.generated);
  Status s = co_await std::move(c);
  if (!calls || !s) {
    step_stats_.total_ms = ms_since(step_start_);
    if (observer_.on_step) observer_.on_step(step_stats_);
  }
  co_return s;
}

struct Session::Pending {
  std::vector<memory::Event> events;  // applied to the state, not yet told to observers
  std::optional<Result<memory::StepCommit>> result;
  Status status;  // of the whole commit, once result is set
  std::shared_ptr<asio::experimental::channel<void(boost::system::error_code)>> done;
  std::vector<TokenId> tokens;  // the snapshot's, owned here while the commit is written
  std::optional<inference::KvExport> exported;
};

void Session::notify(const memory::Event& e) {
  if (observer_.on_event) observer_.on_event(e);
}

asio::awaitable<Status> Session::drain() {
  if (!pending_) co_return Status::ok();
  std::shared_ptr<Pending> p = pending_;
  if (!p->result) {
    auto wait = p->done->async_receive(asio::use_awaitable);
    co_await std::move(wait);
  }
  pending_.reset();
  co_return p->status;
}

asio::awaitable<Status> Session::commit(std::vector<memory::NewEvent> events, bool snapshot,
                                        bool background,
                                        std::span<const TokenId> uncommitted_tokens) {
  {
    auto d = drain();
    MNEMO_CO_RETURN_IF_ERROR(co_await std::move(d));
  }
  memory::SnapshotSource source;
  const bool with_snapshot = snapshot && model_ && sequence_ &&
                             fed_ == static_cast<size_t>(sequence_->position()) && fed_ > 0;
  // The snapshot's token ids are owned by this commit (never a view of the transcript, which
  // lacks a committing turn's tokens until its message is applied).
  std::vector<TokenId> snapshot_tokens;
  if (with_snapshot) {
    auto fed = fed_tokens(uncommitted_tokens);
    if (!fed) co_return fed.status();
    snapshot_tokens = std::move(fed).value();
    source.model = model_->model.get();
    source.sequence = &*sequence_;
    source.tokens = snapshot_tokens;
  }
  memory::Store& store = rt_.store;
  const std::string id = state_.id;
  const int64_t now = unix_ms_now();

  if (background && with_snapshot) {
    // Export now (a copy of the live tail and of the chunks not stored yet), write later.
    const int64_t span = store.chunk_tokens();
    auto p = std::make_shared<Pending>();
    auto exported =
        model_->model->export_state(*sequence_, state_.last_snapshot_position / span * span, span);
    if (!exported)
      co_return Status::internal("exporting the KV state: " + exported.status().message());
    p->exported = std::move(exported).value();
    p->tokens = std::move(snapshot_tokens);
    source.sequence = nullptr;
    source.exported = &*p->exported;
    source.tokens = p->tokens;
    for (size_t i = 0; i < events.size(); ++i) {
      memory::Event e{state_.last_seq + 1, std::move(events[i].type), std::move(events[i].payload),
                      now};
      MNEMO_CO_RETURN_IF_ERROR(apply_event(state_, e));
      p->events.push_back(std::move(e));
    }
    auto ex = co_await asio::this_coro::executor;
    p->done = std::make_shared<asio::experimental::channel<void(boost::system::error_code)>>(ex, 1);
    pending_ = p;
    asio::co_spawn(
        ex,
        [this, p, source, id]() -> asio::awaitable<void> {
          std::vector<memory::NewEvent> batch;
          for (const memory::Event& e : p->events) batch.push_back({e.type, e.payload});
          memory::Store& st = rt_.store;
          auto op = run_on_pool<Result<memory::StepCommit>>(
              rt_.store_pool,
              [&st, &batch, &source, &id]() { return st.commit_step(id, batch, &source); });
          p->result = co_await std::move(op);
          if (!*p->result) {
            p->status =
                Status::io_error("committing job " + id + ": " + p->result->status().message());
          } else {
            for (size_t i = 0; i < p->events.size() && p->status; ++i) {
              if ((*p->result)->seqs[i] != p->events[i].seq) {
                p->status = Status::internal("job " + id + ": the store numbered event " +
                                             std::to_string(p->events[i].seq) + " as " +
                                             std::to_string((*p->result)->seqs[i]));
              }
            }
            // Durable now: observers hear of the events, and of the snapshot's step.committed.
            for (const memory::Event& e : p->events) notify(e);
            if (p->status && (*p->result)->committed_seq != 0) {
              auto stored = st.read_events(id, (*p->result)->committed_seq - 1, 1);
              if (stored && !stored->empty()) {
                p->status = apply_event(state_, stored->front());
                notify(stored->front());
              }
            }
          }
          p->done->try_send(boost::system::error_code{});
        },
        asio::detached);
    co_return Status::ok();
  }

  auto op = run_on_pool<Result<memory::StepCommit>>(rt_.store_pool, [&]() {
    return store.commit_step(id, events, with_snapshot ? &source : nullptr);
  });
  Result<memory::StepCommit> done = co_await std::move(op);
  if (!done) co_return Status::io_error("committing job " + id + ": " + done.status().message());
  // In log order: the store puts step.committed between the step's events and the run's end.
  size_t next = 0;
  for (uint64_t seq : done->seqs) {
    memory::Event e;
    if (seq == done->committed_seq) {
      auto stored = store.read_events(id, seq - 1, 1);
      if (!stored || stored->empty())
        co_return Status::io_error("job " + id + ": step.committed went missing");
      e = std::move(stored->front());
    } else {
      e = memory::Event{seq, std::move(events[next].type), std::move(events[next].payload), now};
      ++next;
    }
    MNEMO_CO_RETURN_IF_ERROR(apply_event(state_, e));
    notify(e);
  }
  co_return Status::ok();
}

}  // namespace mnemo::agent::internal
