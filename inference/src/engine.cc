#include <mnemo/inference/engine.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <utility>

namespace mnemo::inference {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

EngineOptions normalized(EngineOptions o) {
  o.max_batch_tokens = std::max<int64_t>(o.max_batch_tokens, 1);
  o.prefill_chunk = std::clamp<int64_t>(o.prefill_chunk, 1, o.max_batch_tokens);
  o.max_sequences =
      std::clamp<int64_t>(o.max_sequences, 1, o.max_batch_tokens - o.prefill_chunk + 1);
  return o;
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context_full";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

// One request inside the scheduler.
struct Active {
  RequestId id = 0;
  Request request;
  Sampler sampler{SamplingParams{}};
  bool sampler_ready = false;  // set once the request's own sampler is in place
  size_t fed = 0;              // prompt tokens already fed
  bool decoding = false;       // the prompt is in; `next` is the token to feed
  TokenId next = 0;
  bool done = false;
  std::vector<TokenId> generated;
  Clock::time_point joined{}, first_token{};
};

struct Engine::Impl {
  Impl(const Model& m, EngineOptions o) : model(m), options(normalized(o)) {}

  void run();
  void take_new_work(std::vector<Active>& active, std::vector<Active>& cancelled_pending);
  void admit(Active& a);
  void cancel_marked(std::vector<Active>& active);
  void step(std::vector<Active>& active);
  void sampled(Active& a, float* row);
  void finish(Active& a, FinishReason reason, Status status);

  const Model& model;
  const EngineOptions options;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Active> pending;             // guarded by mutex
  std::unordered_set<RequestId> live;     // submitted and not finished; guarded by mutex
  std::unordered_set<RequestId> cancels;  // guarded by mutex
  RequestId next_id = 1;                  // guarded by mutex
  bool stopping = false;                  // guarded by mutex

  // Scheduler thread only. Reused every step so that the steady state allocates nothing here.
  std::vector<RequestId> cancel_ids;
  std::vector<SequenceChunk> chunks;
  std::vector<Active*> owners;
  std::vector<float> logits;

  std::thread thread;
};

Engine::Engine(const Model& model, EngineOptions options)
    : impl_(std::make_unique<Impl>(model, options)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
}

const EngineOptions& Engine::options() const { return impl_->options; }

RequestId Engine::submit(Request request) {
  Active a;
  a.request = std::move(request);
  RequestId id;
  {
    std::lock_guard lock(impl_->mutex);
    id = impl_->next_id++;
    a.id = id;
    impl_->live.insert(id);
    impl_->pending.push_back(std::move(a));
  }
  impl_->wake.notify_all();
  return id;
}

bool Engine::cancel(RequestId id) {
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->live.contains(id)) return false;
    impl_->cancels.insert(id);
  }
  impl_->wake.notify_all();
  return true;
}

void Engine::Impl::run() {
  std::vector<Active> active, cancelled_pending;
  active.reserve(static_cast<size_t>(options.max_sequences));
  for (;;) {
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !active.empty() || !pending.empty(); });
      if (stopping) break;
    }
    take_new_work(active, cancelled_pending);
    for (Active& a : cancelled_pending) finish(a, FinishReason::kCancelled, Status::ok());
    cancelled_pending.clear();
    cancel_marked(active);
    std::erase_if(active, [](const Active& a) { return a.done; });
    if (!active.empty()) step(active);
    std::erase_if(active, [](const Active& a) { return a.done; });
  }
  for (Active& a : active) finish(a, FinishReason::kCancelled, Status::ok());
  // on_done callbacks may still submit: drain until nothing is left.
  for (;;) {
    std::unique_lock lock(mutex);
    if (pending.empty()) break;
    Active a = std::move(pending.front());
    pending.pop_front();
    lock.unlock();
    finish(a, FinishReason::kCancelled, Status::ok());
  }
}

// Moves pending requests into free slots (in submission order) and separates the cancelled ones.
void Engine::Impl::take_new_work(std::vector<Active>& active,
                                 std::vector<Active>& cancelled_pending) {
  size_t first_new = active.size();
  {
    std::lock_guard lock(mutex);
    for (auto it = pending.begin(); it != pending.end();) {
      if (cancels.contains(it->id)) {
        cancelled_pending.push_back(std::move(*it));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    while (!pending.empty() && active.size() < static_cast<size_t>(options.max_sequences)) {
      active.push_back(std::move(pending.front()));
      pending.pop_front();
    }
  }
  for (size_t i = first_new; i < active.size(); ++i) admit(active[i]);
}

// Checks a joining request; a bad one finishes at once with kError.
void Engine::Impl::admit(Active& a) {
  Request& r = a.request;
  a.joined = Clock::now();
  if (!r.sequence) r.sequence.emplace(model.new_sequence());
  const ModelConfig& c = model.config();
  Status s;
  if (r.prompt.empty()) {
    s = Status::invalid_argument("the prompt is empty: a request needs at least one token to feed");
  } else if (r.max_new_tokens < 0) {
    s = Status::invalid_argument("max_new_tokens must be >= 0");
  } else if (Status v = r.sampling.validate(); !v) {
    s = v.with_context("sampling");
  } else if (r.sequence->position() + static_cast<int64_t>(r.prompt.size()) >
             c.max_position_embeddings) {
    s = Status::invalid_argument("a prompt of " + std::to_string(r.prompt.size()) +
                                 " tokens at position " + std::to_string(r.sequence->position()) +
                                 " exceeds max_position_embeddings " +
                                 std::to_string(c.max_position_embeddings));
  } else {
    for (size_t i = 0; i < r.prompt.size(); ++i) {
      if (r.prompt[i] < 0 || r.prompt[i] >= c.vocab_size) {
        s = Status::invalid_argument("prompt token " + std::to_string(i) + " has id " +
                                     std::to_string(r.prompt[i]) + ", outside the vocabulary of " +
                                     std::to_string(c.vocab_size));
        break;
      }
    }
  }
  if (s) {
    a.sampler = Sampler(r.sampling);
    if (!r.sampler_state.empty())
      s = a.sampler.import_state(r.sampler_state).with_context("sampler_state");
    a.sampler_ready = s.is_ok();
  }
  if (!s) {
    finish(a, FinishReason::kError, std::move(s));
    return;
  }
  a.generated.reserve(static_cast<size_t>(std::min<int64_t>(r.max_new_tokens, 4096)));
}

void Engine::Impl::cancel_marked(std::vector<Active>& active) {
  cancel_ids.clear();
  {
    std::lock_guard lock(mutex);
    if (cancels.empty()) return;
    cancel_ids.assign(cancels.begin(), cancels.end());
  }
  for (Active& a : active) {
    if (!a.done && std::find(cancel_ids.begin(), cancel_ids.end(), a.id) != cancel_ids.end()) {
      finish(a, FinishReason::kCancelled, Status::ok());
    }
  }
}

// One forward_batch: the oldest prefilling request's next chunk first (so prefills always
// progress), then every decoding request's token, then more prefill chunks while they fit. A chunk
// that does not fit waits for a later step whole: chunk boundaries never depend on load.
void Engine::Impl::step(std::vector<Active>& active) {
  chunks.clear();
  owners.clear();
  int64_t budget = options.max_batch_tokens;
  auto add_prefill = [&](Active& a) {
    const auto& prompt = a.request.prompt;
    const size_t len = std::min(static_cast<size_t>(options.prefill_chunk), prompt.size() - a.fed);
    if (static_cast<int64_t>(len) > budget) return false;
    chunks.push_back({&*a.request.sequence, std::span<const TokenId>(prompt.data() + a.fed, len)});
    owners.push_back(&a);
    budget -= static_cast<int64_t>(len);
    return true;
  };
  Active* first_prefill = nullptr;
  for (Active& a : active) {
    if (!a.done && !a.decoding) {
      first_prefill = &a;
      add_prefill(a);
      break;
    }
  }
  for (Active& a : active) {
    if (a.done || !a.decoding || budget == 0) continue;
    chunks.push_back({&*a.request.sequence, std::span<const TokenId>(&a.next, 1)});
    owners.push_back(&a);
    --budget;
  }
  for (Active& a : active) {
    if (!a.done && !a.decoding && &a != first_prefill && budget > 0) add_prefill(a);
  }
  if (chunks.empty()) return;

  // Sampling needs each chunk's last row only.
  for (SequenceChunk& c : chunks) c.last_logits_only = true;
  const size_t rows = chunks.size();
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  if (logits.size() < rows * vocab) logits.resize(rows * vocab);
  Status s = model.forward_batch(chunks, std::span<float>(logits.data(), rows * vocab));
  if (!s) {
    // Requests were checked when they joined, so this is an engine fault: fail this step's requests
    // only.
    for (Active* a : owners) finish(*a, FinishReason::kError, s.with_context("forward step"));
    return;
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    Active& a = *owners[i];
    float* last = logits.data() + i * vocab;
    if (a.decoding) {
      sampled(a, last);
      continue;
    }
    a.fed += chunks[i].tokens.size();
    if (a.fed < a.request.prompt.size()) continue;
    a.decoding = true;
    if (a.request.max_new_tokens == 0) {
      finish(a, FinishReason::kLength, Status::ok());
    } else {
      sampled(a, last);
    }
  }
}

// Draws the next token from `row`, streams it and decides whether the request goes on.
void Engine::Impl::sampled(Active& a, float* row) {
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  LogitsProcessor* processor = a.request.logits_processor.get();
  if (processor) {
    const int64_t by_length = a.request.max_new_tokens - static_cast<int64_t>(a.generated.size());
    const int64_t by_context =
        model.config().max_position_embeddings - a.request.sequence->position() + 1;
    processor->apply(row, static_cast<int64_t>(vocab), std::min(by_length, by_context));
  }
  const TokenId token = a.sampler.sample(std::span<const float>(row, vocab));
  if (processor) {
    if (Status s = processor->accept(token); !s) {
      finish(a, FinishReason::kError, s.with_context("logits processor"));
      return;
    }
  }
  if (a.generated.empty()) a.first_token = Clock::now();
  a.generated.push_back(token);
  const Request& r = a.request;
  if (r.on_token) r.on_token(token, r.want_logits ? row : nullptr);
  if (std::find(r.stop_tokens.begin(), r.stop_tokens.end(), token) != r.stop_tokens.end()) {
    finish(a, FinishReason::kStop, Status::ok());
  } else if (static_cast<int64_t>(a.generated.size()) >= r.max_new_tokens) {
    finish(a, FinishReason::kLength, Status::ok());
  } else if (r.sequence->position() >= model.config().max_position_embeddings) {
    finish(a, FinishReason::kContextFull, Status::ok());
  } else {
    a.next = token;
  }
}

void Engine::Impl::finish(Active& a, FinishReason reason, Status status) {
  a.done = true;
  {
    std::lock_guard lock(mutex);
    live.erase(a.id);
    cancels.erase(a.id);
  }
  if (!a.request.on_done) return;
  const Clock::time_point now = Clock::now();
  RequestOutcome out;
  out.id = a.id;
  out.reason = reason;
  out.status = std::move(status);
  out.sequence = std::move(a.request.sequence);
  // A request that never drew keeps the state it came with.
  out.sampler_state = a.sampler_ready                   ? a.sampler.export_state()
                      : a.request.sampler_state.empty() ? Sampler(a.request.sampling).export_state()
                                                        : a.request.sampler_state;
  out.generated = std::move(a.generated);
  out.prompt_tokens = static_cast<int64_t>(a.request.prompt.size());
  if (a.joined != Clock::time_point{}) {
    const bool any = !out.generated.empty();
    out.prefill_seconds = seconds_between(a.joined, any ? a.first_token : now);
    out.decode_seconds = any ? seconds_between(a.first_token, now) : 0;
  }
  a.request.on_done(std::move(out));
}

}  // namespace mnemo::inference
