// `mnemo bench resume`: restoring a session's KV state from the store and producing the next token,
// against prefilling the same history and producing the next token, in the same run; and the bytes
// the state takes at rest per token against its bf16 size.
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>
#include <mnemo/memory/store.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using inference::TokenId;

struct ResumeBenchOptions {
  std::string model;
  std::string tokens = "4096,16384";
  std::string precision = "fp32";
  bool json = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void progress(const std::string& line) {
  if (isatty(STDERR_FILENO) == 1) std::cerr << "bench resume: " << line << '\n';
}

Result<std::vector<int64_t>> parse_lengths(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1)
      return Status::invalid_argument("--tokens: '" + item + "' is not a length");
    out.push_back(v);
  }
  if (out.empty()) return Status::invalid_argument("--tokens: no lengths");
  return out;
}

// A fixed pseudo-random history inside the vocabulary: the benchmark measures state size, not text.
std::vector<TokenId> history(int64_t n, int64_t vocab) {
  std::vector<TokenId> out(static_cast<size_t>(n));
  uint32_t x = 12345;
  for (auto& t : out) {
    x = x * 1664525u + 1013904223u;
    t = static_cast<TokenId>((x >> 8) % static_cast<uint32_t>(vocab));
  }
  return out;
}

// Prefills tokens in pieces (bounding the logits buffer; the split changes no bit).
Status prefill(const inference::Model& m, inference::Sequence& seq,
               std::span<const TokenId> tokens) {
  constexpr size_t kPiece = 256;
  std::vector<float> logits;
  for (size_t at = 0; at < tokens.size(); at += kPiece) {
    size_t n = std::min(kPiece, tokens.size() - at);
    logits.resize(n * static_cast<size_t>(m.config().vocab_size));
    MNEMO_RETURN_IF_ERROR(m.forward(seq, tokens.subspan(at, n), logits));
  }
  return Status::ok();
}

// Floats of the whole state (segments and tail): the bf16 size of the same state is twice this.
Result<int64_t> state_floats(const inference::Model& m, const inference::Sequence& seq) {
  auto ex = m.export_state(seq, 0);
  if (!ex) return ex.status();
  int64_t n = 0;
  for (const std::string& s : ex->segments) {
    auto seg = inference::read_kv_segment(m, s);
    if (!seg) return seg.status();
    for (const auto& l : seg->layers)
      n += static_cast<int64_t>(l.entries.size() + l.index_keys.size());
  }
  auto tail = inference::read_kv_tail(m, ex->tail);
  if (!tail) return tail.status();
  for (const auto& l : tail->layers) {
    n += static_cast<int64_t>(l.ring.size());
    for (const auto* c : {&l.compressor, &l.index_compressor}) {
      n += static_cast<int64_t>(c->kv.size() + c->score.size() + c->prev_kv.size() +
                                c->prev_score.size());
    }
  }
  return n;
}

size_t argmax(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

int run_resume_bench(const ResumeBenchOptions& opt) {
  auto lengths = parse_lengths(opt.tokens);
  if (!lengths) return fail(lengths.status().message());
  auto precision = inference::parse_precision(opt.precision);
  if (!precision) return fail(precision.status().message());
  auto dir_or = model_dir_or_default(opt.model);
  if (!dir_or) return fail(dir_or.status().message());
  const std::string dir = *dir_or;
  auto loaded = inference::Model::load(dir, {*precision});
  if (!loaded) return fail(loaded.status().message());
  const inference::Model& m = **loaded;
  const int64_t V = m.config().vocab_size;
  for (int64_t n : *lengths) {
    if (n + 1 > m.config().max_position_embeddings) {
      return fail("--tokens " + std::to_string(n) + " exceeds the model's max_position_embeddings");
    }
    auto tokens = history(n + 1, V);
    std::span<const TokenId> hist(tokens.data(), static_cast<size_t>(n));
    std::span<const TokenId> next(tokens.data() + n, 1);
    progress("prefilling " + std::to_string(n) + " tokens");
    inference::Sequence live = m.new_sequence();
    auto t0 = Clock::now();
    if (auto s = prefill(m, live, hist); !s) return fail(s.message());
    const double prefill_only = seconds_since(t0);
    auto floats = state_floats(m, live);
    if (!floats) return fail(floats.status().message());
    const double bf16_per_token = 2.0 * static_cast<double>(*floats) / static_cast<double>(n);

    for (memory::AtRest mode : {memory::AtRest::kExact, memory::AtRest::kCompact}) {
      const std::string mode_name(memory::at_rest_name(mode));
      fs::path store_dir =
          fs::temp_directory_path() / ("mnemo-bench-resume-" + std::to_string(::getpid()));
      fs::remove_all(store_dir);
      int64_t sst_bytes = 0;
      {
        auto store = memory::Store::open(store_dir.string());
        if (!store) return fail(store.status().message());
        if (auto s = (*store)->create_session("bench", "bench"); !s) return fail(s.message());
        memory::SnapshotSource src{&m, &live, hist, mode};
        auto c = (*store)->commit_step("bench", {}, &src);
        if (!c) return fail(c.status().message());
        if (auto s = (*store)->flush(); !s) return fail(s.message());
        sst_bytes = (*store)->stats()->sst_bytes;
      }
      auto store = memory::Store::open(store_dir.string());
      if (!store) return fail(store.status().message());
      progress("restoring " + std::to_string(n) + " tokens (" + mode_name + ")");
      std::vector<float> restored_logits(static_cast<size_t>(V));
      auto t1 = Clock::now();
      auto restored = (*store)->restore(m, "bench", {.allow_compact = true});
      if (!restored) return fail(restored.status().message());
      if (auto s = m.forward(restored->sequence, next, restored_logits); !s)
        return fail(s.message());
      const double restore_s = seconds_since(t1);
      store->reset();
      fs::remove_all(store_dir);

      // The prefill path's next token, on a copy of the live state (the live sequence stays at n).
      auto ex = m.export_state(live, 0);
      auto copy = m.import_state(ex->segments, ex->tail);
      std::vector<float> prefill_logits(static_cast<size_t>(V));
      auto t2 = Clock::now();
      if (auto s = m.forward(*copy, next, prefill_logits); !s) return fail(s.message());
      const double prefill_s = prefill_only + seconds_since(t2);
      const bool same_bits = std::memcmp(prefill_logits.data(), restored_logits.data(),
                                         prefill_logits.size() * sizeof(float)) == 0;
      const bool same_top1 = argmax(prefill_logits) == argmax(restored_logits);
      const double at_rest = static_cast<double>(sst_bytes) / static_cast<double>(n);
      if (opt.json) {
        std::printf(
            "{\"bench\":\"resume\",\"at_rest\":\"%s\",\"tokens\":%lld,\"prefill_s\":%.6f,\"restore_"
            "s\":%.6f,"
            "\"speedup\":%.2f,\"bytes_per_token_at_rest\":%.1f,\"bytes_per_token_bf16\":%.1f,"
            "\"next_token_bits_equal\":%s,\"next_token_top1_equal\":%s,\"precision\":\"%s\"}\n",
            mode_name.c_str(), (long long)n, prefill_s, restore_s, prefill_s / restore_s, at_rest,
            bf16_per_token, same_bits ? "true" : "false", same_top1 ? "true" : "false",
            opt.precision.c_str());
      } else {
        std::printf(
            "resume %6lld tokens %-7s prefill+next %9.4f s  restore+next %8.4f s  %8.1fx  at rest "
            "%8.1f B/token "
            "(bf16 %8.1f, %5.1f%%)  next token %s\n",
            (long long)n, mode_name.c_str(), prefill_s, restore_s, prefill_s / restore_s, at_rest,
            bf16_per_token, 100.0 * at_rest / bf16_per_token,
            same_bits   ? "bit-identical"
            : same_top1 ? "same top-1"
                        : "DIFFERENT top-1");
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

void register_resume_bench(CLI::App& bench, CommandContext& ctx) {
  auto opt = std::make_shared<ResumeBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "resume", "Restore+next token from the store against prefill+next token");
  cmd->add_option("--model", opt->model, "model directory (default: the embedded tiny model)");
  cmd->add_option("--tokens", opt->tokens, "history lengths, comma-separated (default 4096,16384)");
  cmd->add_option("--precision", opt->precision, "fp32 (default), bf16 or serving");
  cmd->add_flag("--json", opt->json, "one JSON line per length and mode");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_resume_bench(*opt); });
}

}  // namespace mnemo::app
