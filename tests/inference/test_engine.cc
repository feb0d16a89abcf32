// The Engine's scheduler: continuous batching whose tokens never depend on what else runs, with
// per-request errors, cancellation, limits and resume from an exported state.
#include <mnemo/inference/engine.h>
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "support/tiny_model.h"

using namespace mnemo::inference;

namespace {

const Model& tiny() { return mnemo::test::tiny_model(); }

std::vector<TokenId> golden_ids(const char* key) { return mnemo::test::tiny_tokens(key); }

std::vector<TokenId> slice(const std::vector<TokenId>& v, size_t from, size_t to) {
  return {v.begin() + static_cast<ptrdiff_t>(from), v.begin() + static_cast<ptrdiff_t>(to)};
}

// What one request streamed, filled on the scheduler thread and read by the test once done.
struct Run {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<TokenId> tokens;
  std::vector<float> logits;  // rows that chose each token, when asked for
  std::optional<RequestOutcome> outcome;
  std::function<void(size_t)> after_token;  // called with the number of tokens so far

  RequestOutcome& wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    return *outcome;
  }
};

Request request_for(Run& run, std::vector<TokenId> prompt, int64_t max_new,
                    SamplingParams sampling = {}, bool want_logits = false) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new;
  r.sampling = sampling;
  r.want_logits = want_logits;
  const auto vocab = static_cast<size_t>(tiny().config().vocab_size);
  r.on_token = [&run, vocab](TokenId t, const float* row) {
    run.tokens.push_back(t);
    if (row) run.logits.insert(run.logits.end(), row, row + vocab);
    if (run.after_token) run.after_token(run.tokens.size());
  };
  r.on_done = [&run](RequestOutcome out) {
    std::lock_guard lock(run.mu);
    run.outcome = std::move(out);
    run.done = true;
    run.cv.notify_all();
  };
  return r;
}

// The tokens a request generates when it is the only one in its Engine.
std::vector<TokenId> alone(std::vector<TokenId> prompt, int64_t max_new, SamplingParams sampling) {
  Engine engine(tiny());
  Run run;
  engine.submit(request_for(run, std::move(prompt), max_new, sampling));
  REQUIRE(run.wait().status);
  return run.tokens;
}

// An id the test thread stores right after submit() returns, read from a callback.
RequestId wait_for_id(const std::atomic<RequestId>& id) {
  while (id.load() == 0) std::this_thread::yield();
  return id.load();
}

SamplingParams sampled(uint64_t seed, float temperature = 0.9f, int top_k = 0, float top_p = 1.0f) {
  SamplingParams p;
  p.seed = seed;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

}  // namespace

TEST_CASE("greedy generation through the Engine gives the reference's 40 greedy tokens and logits",
          "[engine]") {
  const Model& m = tiny();
  const int64_t V = m.config().vocab_size;
  auto prompt = golden_ids("greedy_c_prompt");
  auto want = golden_ids("greedy_c_generated");
  REQUIRE(want.size() == 40);

  // Model::forward directly: prefill, then greedy one token at a time.
  Sequence seq = m.new_sequence();
  std::vector<float> prefill(prompt.size() * V), direct_logits;
  REQUIRE(m.forward(seq, prompt, prefill));
  std::vector<float> row(prefill.end() - V, prefill.end());
  Sampler greedy(SamplingParams{});
  std::vector<TokenId> direct;
  for (int i = 0; i < 40; ++i) {
    direct_logits.insert(direct_logits.end(), row.begin(), row.end());
    direct.push_back(greedy.sample(row));
    REQUIRE(m.forward(seq, std::span<const TokenId>(&direct.back(), 1), row));
  }
  CHECK(direct == want);

  Engine engine(m, EngineOptions{.max_batch_tokens = 64, .prefill_chunk = 16, .max_sequences = 4});
  Run run;
  engine.submit(request_for(run, prompt, 40, {}, true));
  RequestOutcome& out = run.wait();
  CHECK(out.reason == FinishReason::kLength);
  CHECK(out.generated == want);
  CHECK(run.tokens == want);
  REQUIRE(run.logits.size() == direct_logits.size());
  CHECK(std::memcmp(run.logits.data(), direct_logits.data(),
                    direct_logits.size() * sizeof(float)) == 0);
  // The last generated token is streamed but not fed.
  REQUIRE(out.sequence);
  CHECK(out.sequence->position() == static_cast<int64_t>(prompt.size() + 39));
  CHECK(out.prompt_tokens == 50);
}

TEST_CASE("concurrent requests submitted at different times generate what each generates alone",
          "[engine]") {
  auto all = golden_ids("sequence_337");
  struct Case {
    std::vector<TokenId> prompt;
    int64_t max_new;
    SamplingParams sampling;
  };
  std::vector<Case> cases{{slice(all, 0, 37), 30, sampled(1)},
                          {slice(all, 100, 229), 25, {}},
                          {slice(all, 5, 6), 40, sampled(2, 1.2f, 50, 0.9f)},
                          {slice(all, 200, 270), 20, sampled(3, 0.7f)}};
  std::vector<std::vector<TokenId>> want;
  for (const Case& c : cases) want.push_back(alone(c.prompt, c.max_new, c.sampling));

  // Small steps so that prefill chunks of the late joiners interleave with the others' decoding.
  Engine engine(tiny(),
                EngineOptions{.max_batch_tokens = 24, .prefill_chunk = 16, .max_sequences = 4});
  std::vector<Run> runs(cases.size());
  auto submit = [&](size_t i) {
    engine.submit(request_for(runs[i], cases[i].prompt, cases[i].max_new, cases[i].sampling));
  };
  // Request 1 joins when 0 has 3 tokens, 2 when 1 has 5, and 3 when 0 has 12: from the callbacks,
  // so the interleaving is the same on every run.
  runs[0].after_token = [&](size_t n) {
    if (n == 3) submit(1);
    if (n == 12) submit(3);
  };
  runs[1].after_token = [&](size_t n) {
    if (n == 5) submit(2);
  };
  submit(0);
  for (size_t i = 0; i < cases.size(); ++i) {
    RequestOutcome& out = runs[i].wait();
    INFO("request " << i);
    CHECK(out.status);
    CHECK(out.reason == FinishReason::kLength);
    CHECK(runs[i].tokens == want[i]);
  }
}

TEST_CASE("a request joining while another decodes leaves both token streams unchanged",
          "[engine]") {
  auto all = golden_ids("sequence_337");
  auto long_prompt = slice(all, 0, 60), late_prompt = slice(all, 60, 160);
  auto want_long = alone(long_prompt, 40, sampled(11));
  auto want_late = alone(late_prompt, 10, {});

  Engine engine(tiny(),
                EngineOptions{.max_batch_tokens = 40, .prefill_chunk = 32, .max_sequences = 8});
  Run first, late;
  size_t first_tokens_when_late_started = 0;
  late.after_token = [&](size_t n) {
    if (n == 1) first_tokens_when_late_started = first.tokens.size();
  };
  first.after_token = [&](size_t n) {
    if (n == 8) engine.submit(request_for(late, late_prompt, 10));
  };
  engine.submit(request_for(first, long_prompt, 40, sampled(11)));
  first.wait();
  late.wait();
  CHECK(first.tokens == want_long);
  CHECK(late.tokens == want_late);
  // The late request's 100-token prefill took several steps, during which the first kept decoding.
  CHECK(first_tokens_when_late_started > 8);
  CHECK(first_tokens_when_late_started < 40);
}

TEST_CASE("cancel ends a request mid-decode and leaves the others running", "[engine]") {
  auto all = golden_ids("sequence_337");
  auto prompt = slice(all, 0, 20), other_prompt = slice(all, 20, 45);
  auto want = alone(prompt, 30, {});
  auto want_other = alone(other_prompt, 30, sampled(5));

  Engine engine(tiny());
  Run victim, other;
  std::atomic<RequestId> victim_id = 0;
  bool cancelled = false;  // Catch2 assertions stay on the test thread
  victim.after_token = [&](size_t n) {
    if (n == 5) cancelled = engine.cancel(wait_for_id(victim_id));
  };
  victim_id = engine.submit(request_for(victim, prompt, 1000));
  engine.submit(request_for(other, other_prompt, 30, sampled(5)));
  RequestOutcome& out = victim.wait();
  CHECK(cancelled);
  CHECK(out.reason == FinishReason::kCancelled);
  CHECK(out.status);
  // Cancellation takes effect at the next step boundary: exactly the 5 tokens streamed so far.
  CHECK(out.generated == slice(want, 0, 5));
  REQUIRE(out.sequence);
  CHECK(out.sequence->position() == 20 + 4);
  CHECK_FALSE(engine.cancel(victim_id.load()));
  CHECK(other.wait().reason == FinishReason::kLength);
  CHECK(other.tokens == want_other);
  CHECK_FALSE(engine.cancel(12345));
}

TEST_CASE("a request cancelled before it joins ends without running", "[engine]") {
  auto all = golden_ids("sequence_337");
  Engine engine(tiny(), EngineOptions{.max_sequences = 1});
  Run running, queued;
  std::atomic<RequestId> queued_id = 0;
  bool cancelled = false;
  running.after_token = [&](size_t n) {
    if (n == 1) cancelled = engine.cancel(wait_for_id(queued_id));
  };
  engine.submit(request_for(running, slice(all, 0, 10), 5));
  queued_id = engine.submit(request_for(queued, slice(all, 10, 20), 5));
  CHECK(running.wait().reason == FinishReason::kLength);
  RequestOutcome& out = queued.wait();
  CHECK(cancelled);
  CHECK(out.reason == FinishReason::kCancelled);
  CHECK(queued.tokens.empty());
  CHECK_FALSE(out.sequence);
}

TEST_CASE("length, stop-token and context limits end a request with their reason", "[engine]") {
  const Model& m = tiny();
  auto all = golden_ids("sequence_337");
  auto prompt = slice(all, 0, 30);
  auto want = alone(prompt, 10, {});
  Engine engine(m);

  Run length;
  engine.submit(request_for(length, prompt, 7));
  CHECK(length.wait().reason == FinishReason::kLength);
  CHECK(length.tokens == slice(want, 0, 7));

  Run stop;
  Request r = request_for(stop, prompt, 10);
  r.stop_tokens = {want[3]};
  engine.submit(std::move(r));
  CHECK(stop.wait().reason == FinishReason::kStop);
  CHECK(stop.tokens == slice(want, 0, 4));

  Run prefill_only;
  engine.submit(request_for(prefill_only, prompt, 0));
  RequestOutcome& p = prefill_only.wait();
  CHECK(p.reason == FinishReason::kLength);
  CHECK(p.generated.empty());
  REQUIRE(p.sequence);
  CHECK(p.sequence->position() == 30);

  // 1020 prompt tokens in a 1024-position model: 5 tokens fit (the 5th is never fed).
  std::vector<TokenId> long_prompt;
  while (long_prompt.size() < 1020) long_prompt.push_back(all[long_prompt.size() % all.size()]);
  Run full;
  engine.submit(request_for(full, long_prompt, 100));
  RequestOutcome& f = full.wait();
  CHECK(f.reason == FinishReason::kContextFull);
  CHECK(f.generated.size() == 5);
  CHECK(f.sequence->position() == 1024);

  long_prompt.resize(1025, 7);
  Run too_long;
  engine.submit(request_for(too_long, long_prompt, 1));
  RequestOutcome& t = too_long.wait();
  CHECK(t.reason == FinishReason::kError);
  CHECK(t.status.message().find("exceeds max_position_embeddings 1024") != std::string::npos);
}

TEST_CASE("a bad request fails alone while the others run on", "[engine]") {
  auto all = golden_ids("sequence_337");
  auto good_prompt = slice(all, 0, 40);
  auto want = alone(good_prompt, 20, sampled(9));
  Engine engine(tiny());
  Run good, bad_id, empty, bad_sampling, bad_state;
  engine.submit(request_for(good, good_prompt, 20, sampled(9)));
  engine.submit(request_for(bad_id, {5, 6, 4096, 7}, 5));
  engine.submit(request_for(empty, {}, 5));
  engine.submit(request_for(bad_sampling, {5}, 5, sampled(1, -1.0f)));
  Request r = request_for(bad_state, {5}, 5, sampled(1));
  r.sampler_state = "short";
  engine.submit(std::move(r));

  RequestOutcome& b = bad_id.wait();
  CHECK(b.reason == FinishReason::kError);
  CHECK(b.status.message() == "prompt token 2 has id 4096, outside the vocabulary of 4096");
  CHECK(bad_id.tokens.empty());
  CHECK(empty.wait().status.message().find("prompt is empty") != std::string::npos);
  CHECK(bad_sampling.wait().status.message().find("temperature") != std::string::npos);
  CHECK(bad_state.wait().status.message().find("sampler_state") != std::string::npos);
  CHECK(good.wait().reason == FinishReason::kLength);
  CHECK(good.tokens == want);
}

TEST_CASE("a request resumed from an imported state continues as if never interrupted",
          "[engine]") {
  const Model& m = tiny();
  auto all = golden_ids("sequence_337");
  auto prompt = slice(all, 0, 120);  // the break falls past a 128-token block end
  const SamplingParams sampling = sampled(21, 0.8f, 40);
  auto want = alone(prompt, 30, sampling);

  Engine engine(m);
  Run first;
  engine.submit(request_for(first, prompt, 12, sampling));
  RequestOutcome& out = first.wait();
  REQUIRE(out.reason == FinishReason::kLength);
  CHECK(out.generated == slice(want, 0, 12));
  auto exported = m.export_state(*out.sequence, 0, 128);
  REQUIRE(exported);
  auto restored = m.import_state(exported->segments, exported->tail);
  REQUIRE(restored);
  CHECK(restored->position() == 120 + 11);

  Run rest;
  Request r = request_for(rest, {out.generated.back()}, 18, sampling);
  r.sequence = std::move(restored).value();
  r.sampler_state = out.sampler_state;
  engine.submit(std::move(r));
  REQUIRE(rest.wait().reason == FinishReason::kLength);
  CHECK(rest.tokens == slice(want, 12, 30));
}

TEST_CASE("destroying the Engine cancels running and queued requests", "[engine]") {
  auto all = golden_ids("sequence_337");
  Run running, queued;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  {
    Engine engine(tiny(), EngineOptions{.max_sequences = 1});
    running.after_token = [&](size_t n) {
      std::lock_guard lock(mu);
      started = true;
      cv.notify_all();
    };
    engine.submit(request_for(running, slice(all, 0, 10), 100000));
    engine.submit(request_for(queued, slice(all, 10, 20), 5));
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  CHECK(running.wait().reason == FinishReason::kCancelled);
  CHECK(queued.wait().reason == FinishReason::kCancelled);
  CHECK(queued.tokens.empty());
}
