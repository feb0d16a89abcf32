// `mnemo generate`: one prompt or conversation through the Engine, its text streamed as it is
// decoded. Content goes to stdout; reasoning (--chat in thinking mode) to stderr, dimmed on a
// terminal; the figures line goes to stderr at the end. Ctrl-C cancels the request and exits with
// status 130.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/tokenizer.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string chat;
  int64_t max_tokens = 256;
  inference::SamplingParams sampling;
  std::string precision = "serving";
};

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

// Installs the Ctrl-C handler for the command's lifetime; a second Ctrl-C kills as usual.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

// Tokens and the outcome handed from the scheduler thread to the command's thread.
struct Stream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<inference::TokenId> tokens;
  std::optional<inference::RequestOutcome> outcome;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::io_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Prints decoded text: plain, or through the V4 output parser when generating a chat turn.
class Printer {
 public:
  explicit Printer(std::unique_ptr<inference::ChatOutputParser> parser)
      : parser_(std::move(parser)), dim_(::isatty(STDERR_FILENO)) {}

  void text(std::string_view piece, bool is_stop) {
    if (!parser_ || parser_->failed()) {
      if (!is_stop) out(piece);
      return;
    }
    events_.clear();
    parser_->push(piece, events_);
    show(piece);
  }

  // Ends the turn; a turn cut short (length, Ctrl-C) is not reported as malformed.
  void finish(bool complete) {
    if (parser_ && complete && !parser_->failed()) {
      events_.clear();
      parser_->finish(events_);
      show({});
    }
    if (!last_out_newline_) out("\n");
    if (reasoning_open_) std::fputc('\n', stderr);
  }

 private:
  void show(std::string_view piece) {
    for (const inference::ChatEvent& e : events_) {
      switch (e.kind) {
        case inference::ChatEventKind::kTextDelta:
          out(e.text);
          break;
        case inference::ChatEventKind::kReasoningDelta:
          std::fprintf(stderr, "%s%.*s%s", dim_ ? "\x1b[2m" : "", static_cast<int>(e.text.size()),
                       e.text.data(), dim_ ? "\x1b[0m" : "");
          std::fflush(stderr);
          reasoning_open_ = !e.text.empty() && e.text.back() != '\n';
          break;
        case inference::ChatEventKind::kToolCallEnd:
          out("\n[tool call] " + e.name + " " + e.arguments + "\n");
          break;
        case inference::ChatEventKind::kError:
          // Not a well-formed V4 turn: say so once and show the rest as raw text.
          std::fprintf(
              stderr,
              "\nmnemo: the output is not a well-formed V4 turn (%s); the rest is raw text\n",
              e.text.c_str());
          out(piece);
          break;
        default:
          break;
      }
    }
  }

  void out(std::string_view s) {
    if (s.empty()) return;
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    last_out_newline_ = s.back() == '\n';
  }

  std::unique_ptr<inference::ChatOutputParser> parser_;
  std::vector<inference::ChatEvent> events_;
  bool dim_;
  bool last_out_newline_ = true;
  bool reasoning_open_ = false;  // the last reasoning text on stderr did not end a line
};

// The first generated token comes out of the prefill step, so decode speed counts the ones after
// it.
void print_stats(const inference::RequestOutcome& o) {
  const auto n = static_cast<int64_t>(o.generated.size());
  auto rate = [](double count, double seconds) {
    char buf[32];
    if (seconds <= 0 || count <= 0) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.1f", count / seconds);
    return std::string(buf);
  };
  std::fprintf(
      stderr,
      "prompt %lld tokens, prefill %s tokens/s; generated %lld tokens, decode %s tokens/s (%s)\n",
      static_cast<long long>(o.prompt_tokens),
      rate(static_cast<double>(o.prompt_tokens), o.prefill_seconds).c_str(),
      static_cast<long long>(n), rate(static_cast<double>(n - 1), o.decode_seconds).c_str(),
      std::string(inference::finish_reason_name(o.reason)).c_str());
}

int run_generate(const GenerateOptions& opt) {
  if (Status s = opt.sampling.validate(); !s) return fail(s.message());
  auto precision = inference::parse_precision(opt.precision);
  if (!precision) return fail(precision.status().message());

  std::optional<inference::Conversation> conversation;
  if (!opt.chat.empty()) {
    auto text = read_file(opt.chat);
    if (!text) return fail(text.status().message());
    auto conv = inference::parse_conversation_json(*text);
    if (!conv) return fail(opt.chat + ": " + conv.status().message());
    conversation = std::move(conv).value();
  }
  auto loaded = load_model(opt.model, *precision);
  if (!loaded) return fail(loaded.status().message());
  const inference::Tokenizer& tokenizer = *loaded->tokenizer;
  const inference::Model& model = *loaded->model;
  const inference::ModelConfig& config = model.config();

  std::vector<inference::TokenId> prompt;
  std::unique_ptr<inference::ChatOutputParser> parser;
  if (conversation) {
    auto rendered = inference::render_v4_prompt(*conversation);
    if (!rendered) return fail(opt.chat + ": " + rendered.status().message());
    auto ids = tokenizer.encode(*rendered);  // the rendered prompt starts with the BOS token's text
    if (!ids) return fail(ids.status().message());
    prompt = std::move(ids).value();
    parser = inference::make_v4_output_parser(conversation->thinking_mode);
  } else {
    auto ids = tokenizer.encode(opt.prompt);
    if (!ids) return fail("--prompt: " + ids.status().message());
    prompt.push_back(static_cast<inference::TokenId>(config.bos_token_id));
    prompt.insert(prompt.end(), ids->begin(), ids->end());
  }

  SigintGuard sigint;
  Stream stream;
  inference::Request request;
  request.prompt = std::move(prompt);
  request.sampling = opt.sampling;
  request.max_new_tokens = opt.max_tokens;
  const auto eos = static_cast<inference::TokenId>(config.eos_token_id);
  request.stop_tokens = {eos};
  request.on_token = [&stream](inference::TokenId t, const float*) {
    std::lock_guard lock(stream.mu);
    stream.tokens.push_back(t);
    stream.cv.notify_one();
  };
  request.on_done = [&stream](inference::RequestOutcome o) {
    std::lock_guard lock(stream.mu);
    stream.outcome = std::move(o);
    stream.cv.notify_one();
  };

  inference::Engine engine(model);
  const inference::RequestId id = engine.submit(std::move(request));
  inference::StreamDecoder decoder(tokenizer);
  Printer printer(std::move(parser));
  bool cancelled = false;
  std::deque<inference::TokenId> batch;
  for (;;) {
    bool finished;
    {
      std::unique_lock lock(stream.mu);
      // Wakes for tokens, the end, or every 50 ms to notice Ctrl-C (a handler cannot lock).
      stream.cv.wait_for(lock, std::chrono::milliseconds(50),
                         [&] { return !stream.tokens.empty() || stream.outcome.has_value(); });
      batch.swap(stream.tokens);
      finished = stream.outcome.has_value();
    }
    for (inference::TokenId t : batch) {
      auto piece = decoder.push(t);
      if (piece) {
        printer.text(*piece, t == eos);
      } else {
        // An id the model has but the tokenizer lacks (vocabulary padding) shows as U+FFFD.
        printer.text(decoder.finish() + "\xEF\xBF\xBD", false);
      }
    }
    batch.clear();
    if (finished) break;
    if (g_interrupted && !cancelled) cancelled = engine.cancel(id);
  }
  inference::RequestOutcome& outcome = *stream.outcome;
  printer.text(decoder.finish(), false);
  printer.finish(outcome.reason == inference::FinishReason::kStop);
  if (outcome.reason == inference::FinishReason::kError) return fail(outcome.status.message());
  print_stats(outcome);
  return g_interrupted ? 130 : 0;
}

}  // namespace

void register_generate_command(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate",
                                     "Generate text from a prompt or a conversation, streamed as "
                                     "it is decoded; figures on stderr");
  cmd->add_option("--model", opt->model,
                  "model directory (default: the embedded tiny model, created on first use)");
  auto* prompt = cmd->add_option("--prompt", opt->prompt, "prompt text (BOS is added)");
  auto* chat = cmd->add_option(
      "--chat", opt->chat,
      "JSON file holding one conversation, as `mnemo chat render` reads it; rendered "
      "with the V4 format, the reply parsed (reasoning goes to stderr)");
  prompt->excludes(chat);
  chat->excludes(prompt);
  cmd->add_option("--max-tokens", opt->max_tokens, "stop after this many generated tokens")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", opt->sampling.temperature, "0 samples greedily")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--top-k", opt->sampling.top_k, "keep the K most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--top-p", opt->sampling.top_p, "nucleus: keep this much probability mass")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--min-p", opt->sampling.min_p, "drop tokens below P times the top probability")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--seed", opt->sampling.seed, "random seed of the sampler")
      ->capture_default_str();
  cmd->add_option("--precision", opt->precision, "fp32, bf16 or serving")
      ->check(CLI::IsMember({"fp32", "bf16", "serving"}))
      ->capture_default_str();
  cmd->callback([opt, prompt, chat, &ctx] {
    // Thrown as a usage error: main prints it as one line and exits with CLI11's status.
    if (prompt->count() == 0 && chat->count() == 0) throw CLI::RequiredError("--prompt or --chat");
    ctx.exit_code = run_generate(*opt);
  });
}

}  // namespace mnemo::app
