// `mnemo bench ...`: benchmarks that print figures and ratios against a reference implementation.
// `bench tokenizer` times mnemo's tokenizer against HF tokenizers (bench/tokenizer/hf_encode.mjs,
// run with node) on one thread over the same corpus, and refuses to call it a result unless both
// produced the same ids for every document.
#include <mnemo/base/file.h>
#include <mnemo/base/json_text.h>
#include <mnemo/base/status.h>
#include <mnemo/base/utf8.h>
#include <mnemo/inference/tokenizer.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "paths.h"

namespace mnemo::app {
namespace {

namespace fs = std::filesystem;
using inference::TokenId;
using inference::Tokenizer;

constexpr std::string_view kTokenizerFile = "third_party/deepseek_v3_tokenizer/tokenizer.json";
constexpr std::string_view kPeerDir = "bench/tokenizer";
constexpr std::string_view kPeerName = "hf-tokenizers";

struct TokenizerBenchOptions {
  std::string corpus;
  std::string tokenizer;
  int repeat = 3;
  bool json = false;
  bool no_peer = false;
};

struct Corpus {
  std::vector<std::string> docs;
  std::vector<size_t> line_numbers;
  size_t bytes = 0;
};

// One implementation's figures over the whole corpus; seconds is the best timed pass.
struct Measurement {
  std::string impl;
  std::string version;
  size_t bytes = 0;
  size_t docs = 0;
  size_t tokens = 0;
  double seconds = 0;
  double mb_per_s() const { return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0; }
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

bool progress_enabled() { return isatty(STDERR_FILENO) == 1; }

void progress(std::string_view line) {
  if (progress_enabled()) std::cerr << "bench tokenizer: " << line << '\n';
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs COMMAND with /bin/sh and returns its stdout; stderr goes to ours. A non-zero exit is an
// error carrying `what` and the exit status.
Result<std::string> run_capture(const std::string& command, std::string_view what) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return Status::io_error(std::string(what) + ": cannot start /bin/sh");
  std::string out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  int status = pclose(pipe);
  if (status == -1) return Status::io_error(std::string(what) + ": lost the child process");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return Status::not_found(std::string(what) + ": command not found (" + command + ")");
  }
  std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  return Status::internal(std::string(what) + " failed (" + how + ")");
}

// The source tree holds the vocabulary, the corpus script and the HF peer.
Result<fs::path> find_source_dir() {
  return find_source_tree({kTokenizerFile, std::string(kPeerDir) + "/hf_encode.mjs"});
}

fs::path cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return fs::path(xdg) / "mnemo" / "bench";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".cache" / "mnemo" / "bench";
  }
  return fs::temp_directory_path() / "mnemo-bench";
}

// FNV-1a, to name the cached corpus after the script that built it: a changed script builds anew.
uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

Result<std::string> default_corpus(const fs::path& source_dir) {
  fs::path script = source_dir / kPeerDir / "make_corpus.sh";
  auto script_text = read_file(script.string());
  if (!script_text) return script_text.status();
  char name[64];
  std::snprintf(name, sizeof name, "tokenizer-corpus-%016llx.jsonl",
                static_cast<unsigned long long>(fnv1a(*script_text)));
  fs::path path = cache_dir() / name;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    progress("corpus: " + path.string() + " (cached)");
    return path.string();
  }
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return Status::io_error("cannot create " + path.parent_path().string() + ": " + ec.message());
  progress("building the corpus with " + script.string() + " into " + path.string());
  auto summary =
      run_capture("bash " + shell_quote(script.string()) + " " + shell_quote(path.string()),
                  "building the corpus (" + script.string() + ")");
  if (!summary) return summary.status();
  if (progress_enabled()) std::cerr << *summary;
  return path.string();
}

Result<Corpus> load_corpus(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.status();
  Corpus corpus;
  simdjson::dom::parser parser;
  std::istringstream lines(std::move(*text));
  size_t line_no = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(line_no);
    simdjson::dom::element doc;
    if (auto error = parser.parse(line).get(doc)) {
      return Status::invalid_argument(where + ": not JSON (" + simdjson::error_message(error) +
                                      ")");
    }
    std::string_view doc_text;
    if (doc["text"].get(doc_text) != simdjson::SUCCESS) {
      return Status::invalid_argument(where + ": no string field \"text\"");
    }
    if (auto st = utf8::validate(doc_text); !st) return st.with_context(where);
    corpus.bytes += doc_text.size();
    corpus.docs.emplace_back(doc_text);
    corpus.line_numbers.push_back(line_no);
  }
  if (corpus.docs.empty()) return Status::invalid_argument(path + ": no documents");
  return corpus;
}

using Clock = std::chrono::steady_clock;

// Encodes the corpus once to warm up, then `repeat` timed passes; ids are those of the last pass.
Result<Measurement> measure_mnemo(const Tokenizer& tokenizer, const Corpus& corpus, int repeat,
                                  std::vector<std::vector<TokenId>>& ids) {
  Measurement m;
  m.impl = "mnemo";
  m.bytes = corpus.bytes;
  m.docs = corpus.docs.size();
  m.seconds = 1e300;
  for (int pass = 0; pass <= repeat; ++pass) {
    std::vector<std::vector<TokenId>> pass_ids(corpus.docs.size());
    auto start = Clock::now();
    for (size_t i = 0; i < corpus.docs.size(); ++i) {
      auto encoded = tokenizer.encode(corpus.docs[i]);
      if (!encoded) {
        return encoded.status().with_context("encoding document " + std::to_string(i + 1));
      }
      pass_ids[i] = std::move(*encoded);
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (pass == 0) {
      progress("mnemo warm-up: " + fixed(seconds, 3) + " s");
    } else {
      progress("mnemo pass " + std::to_string(pass) + "/" + std::to_string(repeat) + ": " +
               fixed(seconds, 3) + " s");
      m.seconds = std::min(m.seconds, seconds);
    }
    ids.swap(pass_ids);
  }
  for (const auto& doc_ids : ids) m.tokens += doc_ids.size();
  return m;
}

// Reads hf_encode.mjs's ids file: per document an int32 LE count, then that many int32 LE ids.
Result<std::vector<std::vector<TokenId>>> read_peer_ids(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.status();
  auto word = [&](size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes->data()) + at * 4;
    return static_cast<int32_t>(uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
                                uint32_t{p[3]} << 24);
  };
  if (bytes->size() % 4 != 0) return Status::corruption(path + ": size is not a multiple of 4");
  size_t words = bytes->size() / 4;
  std::vector<std::vector<TokenId>> ids;
  for (size_t at = 0; at < words;) {
    int32_t count = word(at++);
    if (count < 0 || static_cast<size_t>(count) > words - at) {
      return Status::corruption(path + ": document " + std::to_string(ids.size() + 1) + " claims " +
                                std::to_string(count) + " ids past the end");
    }
    auto& doc = ids.emplace_back(static_cast<size_t>(count));
    for (auto& id : doc) id = word(at++);
  }
  return ids;
}

// Checked before mnemo's passes, so that a missing node fails in a second, not after the timing.
Result<fs::path> prepare_peer(const fs::path& peer_dir) {
  if (!run_capture("command -v node", "looking for node")) {
    return Status::not_found(
        "node is not on PATH; the HF tokenizers peer needs Node >= 18 (or pass --no-peer)");
  }
  std::error_code ec;
  if (fs::is_directory(peer_dir / "node_modules" / "tokenizers", ec)) return peer_dir;
  progress("installing the HF tokenizers peer: npm ci in " + peer_dir.string());
  std::string sink = progress_enabled() ? " >&2" : " >/dev/null";
  auto done = run_capture("cd " + shell_quote(peer_dir.string()) +
                              " && npm ci --no-audit --no-fund --no-progress" + sink,
                          "npm ci in " + peer_dir.string());
  if (!done) {
    return done.status().with_context(
        "the HF peer needs Node >= 18 and npm with registry access (or run `npm ci` in " +
        peer_dir.string() + " yourself, or pass --no-peer)");
  }
  return peer_dir;
}

Result<Measurement> measure_peer(const fs::path& peer_dir, const std::string& corpus,
                                 const std::string& tokenizer, int repeat,
                                 std::vector<std::vector<TokenId>>& ids) {
  std::string tmpl = (fs::temp_directory_path() / "mnemo-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Status::io_error("cannot create a temporary directory like " + tmpl);
  }
  fs::path tmp_dir = tmpl;
  std::string ids_path = (tmp_dir / "hf.ids").string();
  progress("running HF tokenizers (node " + (peer_dir / "hf_encode.mjs").string() + "), " +
           std::to_string(repeat) + " timed pass" + (repeat == 1 ? "" : "es"));
  auto line = run_capture(
      "RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false UV_THREADPOOL_SIZE=1 node " +
          shell_quote((peer_dir / "hf_encode.mjs").string()) + " " + shell_quote(corpus) + " " +
          shell_quote(tokenizer) + " " + shell_quote(ids_path) + " " + std::to_string(repeat),
      "the HF tokenizers peer");
  Result<std::vector<std::vector<TokenId>>> peer_ids =
      line ? read_peer_ids(ids_path) : Result<std::vector<std::vector<TokenId>>>(line.status());
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  if (!peer_ids) return peer_ids.status();
  ids = std::move(*peer_ids);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view version;
  uint64_t bytes = 0, docs = 0, tokens = 0;
  double seconds = 0;
  if (parser.parse(*line).get(doc) || doc["version"].get(version) || doc["bytes"].get(bytes) ||
      doc["docs"].get(docs) || doc["tokens"].get(tokens) || doc["seconds"].get(seconds)) {
    return Status::corruption("the HF tokenizers peer printed an unexpected line: " + *line);
  }
  return Measurement{.impl = std::string(kPeerName),
                     .version = std::string(version),
                     .bytes = bytes,
                     .docs = docs,
                     .tokens = tokens,
                     .seconds = seconds};
}

// The first difference between mnemo's and the peer's ids, described for a person to debug; empty
// when they agree everywhere.
std::string first_mismatch(const Tokenizer& tokenizer, const Corpus& corpus,
                           const std::vector<std::vector<TokenId>>& ours,
                           const std::vector<std::vector<TokenId>>& theirs) {
  if (ours.size() != theirs.size()) {
    return "mnemo encoded " + std::to_string(ours.size()) + " documents, HF tokenizers " +
           std::to_string(theirs.size());
  }
  for (size_t d = 0; d < ours.size(); ++d) {
    const auto& a = ours[d];
    const auto& b = theirs[d];
    if (a == b) continue;
    size_t k = std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin();
    size_t offset = 0;
    for (size_t i = 0; i < k; ++i) offset += tokenizer.token_bytes(a[i]).size();
    auto token = [&](const std::vector<TokenId>& ids) {
      if (k >= ids.size()) return std::string("(end, ") + std::to_string(ids.size()) + " tokens)";
      return std::to_string(ids[k]) + " " + json::quote(utf8::lossy(tokenizer.token_bytes(ids[k])));
    };
    const std::string& text = corpus.docs[d];
    // About 48 bytes from the mismatch, cut at a character boundary.
    size_t from = std::min(offset, text.size());
    size_t to = std::min(from + 48, text.size());
    while (to > from && to < text.size() && (static_cast<unsigned char>(text[to]) & 0xC0) == 0x80)
      --to;
    std::string context = utf8::lossy(std::string_view(text).substr(from, to - from));
    return "document " + std::to_string(d + 1) + " (corpus line " +
           std::to_string(corpus.line_numbers[d]) + "), token " + std::to_string(k) + " (byte " +
           std::to_string(offset) + "): mnemo " + token(a) + ", HF tokenizers " + token(b) +
           "; text there: " + json::quote(context);
  }
  return {};
}

std::string json_line(const Measurement& m, const TokenizerBenchOptions& opts,
                      const std::string& corpus, std::optional<double> ratio_vs_hf,
                      std::optional<bool> ids_match) {
  std::string out = "{\"bench\":\"tokenizer\",\"impl\":" + json::quote(m.impl);
  if (!m.version.empty()) out += ",\"version\":" + json::quote(m.version);
  out += ",\"corpus\":" + json::quote(corpus) + ",\"docs\":" + std::to_string(m.docs) +
         ",\"bytes\":" + std::to_string(m.bytes) + ",\"tokens\":" + std::to_string(m.tokens) +
         ",\"threads\":1,\"passes\":" + std::to_string(opts.repeat) +
         ",\"seconds\":" + json::python_float_repr(m.seconds) +
         ",\"mb_per_s\":" + json::python_float_repr(m.mb_per_s());
  out += ",\"ratio_vs_hf\":" + (ratio_vs_hf ? json::python_float_repr(*ratio_vs_hf) : "null");
  out += ",\"ids_match\":" + std::string(ids_match ? (*ids_match ? "true" : "false") : "null");
  return out + "}";
}

void print_human(const Measurement& m) {
  char line[160];
  std::snprintf(line, sizeof line, "  %-14s %8.3f s  %8.2f MB/s  %9zu tokens  %6.3f bytes/token\n",
                m.impl.c_str(), m.seconds, m.mb_per_s(), m.tokens,
                m.tokens ? static_cast<double>(m.bytes) / static_cast<double>(m.tokens) : 0.0);
  std::cout << line;
}

int run_tokenizer_bench(TokenizerBenchOptions opts) {
  std::optional<fs::path> source_dir;
  if (opts.tokenizer.empty() || opts.corpus.empty() || !opts.no_peer) {
    auto found = find_source_dir();
    if (!found) return fail("bench tokenizer: " + found.status().message());
    source_dir = *found;
  }
  if (opts.tokenizer.empty()) opts.tokenizer = (*source_dir / kTokenizerFile).string();
  if (opts.corpus.empty()) {
    auto built = default_corpus(*source_dir);
    if (!built) return fail("bench tokenizer: " + built.status().message());
    opts.corpus = *built;
  }
  std::optional<fs::path> peer_dir;
  if (!opts.no_peer) {
    auto ready = prepare_peer(*source_dir / kPeerDir);
    if (!ready) return fail("bench tokenizer: " + ready.status().message());
    peer_dir = *ready;
  }

  progress("loading " + opts.tokenizer);
  auto tokenizer = Tokenizer::load(opts.tokenizer);
  if (!tokenizer) return fail("bench tokenizer: " + tokenizer.status().message());
  auto corpus = load_corpus(opts.corpus);
  if (!corpus) return fail("bench tokenizer: " + corpus.status().message());
  progress("corpus: " + std::to_string(corpus->docs.size()) + " documents, " +
           fixed(static_cast<double>(corpus->bytes) / 1e6, 2) + " MB");

  std::vector<std::vector<TokenId>> ours;
  auto mnemo = measure_mnemo(*tokenizer, *corpus, opts.repeat, ours);
  if (!mnemo) return fail("bench tokenizer: " + mnemo.status().message());

  std::optional<Measurement> hf;
  std::optional<double> ratio;
  std::optional<bool> ids_match;
  std::string mismatch;
  if (peer_dir) {
    std::vector<std::vector<TokenId>> theirs;
    auto peer = measure_peer(*peer_dir, opts.corpus, opts.tokenizer, opts.repeat, theirs);
    if (!peer) return fail("bench tokenizer: " + peer.status().message());
    if (peer->bytes != mnemo->bytes) {
      return fail("bench tokenizer: HF tokenizers read " + std::to_string(peer->bytes) +
                  " bytes of text from the corpus, mnemo " + std::to_string(mnemo->bytes));
    }
    hf = *peer;
    mismatch = first_mismatch(*tokenizer, *corpus, ours, theirs);
    ids_match = mismatch.empty();
    ratio = hf->mb_per_s() > 0 ? mnemo->mb_per_s() / hf->mb_per_s() : 0.0;
  }

  if (opts.json) {
    std::cout << json_line(*mnemo, opts, opts.corpus, ratio, ids_match) << '\n';
    if (hf) std::cout << json_line(*hf, opts, opts.corpus, 1.0, ids_match) << '\n';
  } else {
    std::cout << "tokenizer: " << corpus->docs.size() << " documents, "
              << fixed(static_cast<double>(corpus->bytes) / 1e6, 2) << " MB of UTF-8 ("
              << opts.corpus << "), one thread, best of " << opts.repeat << " timed pass"
              << (opts.repeat == 1 ? "" : "es") << " after a warm-up\n";
    print_human(*mnemo);
    if (hf) {
      print_human(*hf);
      std::cout << "  mnemo/HF " << fixed(*ratio, 2) << "x, ids "
                << (*ids_match ? "identical in every document" : "DIFFER") << '\n';
    }
  }
  std::cout.flush();
  if (!mismatch.empty()) {
    return fail("bench tokenizer: ids differ from HF tokenizers, so the figures above are void: " +
                mismatch);
  }
  return 0;
}

}  // namespace

void register_bench_commands(CLI::App& app, CommandContext& ctx) {
  auto* bench = app.add_subcommand(
      "bench", "Benchmarks: figures and ratios against reference implementations");
  bench->require_subcommand(1);

  auto opts = std::make_shared<TokenizerBenchOptions>();
  auto* tokenizer = bench->add_subcommand(
      "tokenizer",
      "Encoding throughput (MB/s, one thread) of mnemo's tokenizer vs HF tokenizers, "
      "with a check that both give identical ids");
  tokenizer
      ->add_option("--corpus", opts->corpus,
                   "JSON lines {\"text\": ...}, a document a line (default: built by "
                   "bench/tokenizer/make_corpus.sh into ~/.cache/mnemo/bench)")
      ->check(CLI::ExistingFile);
  tokenizer
      ->add_option("--tokenizer", opts->tokenizer,
                   "tokenizer.json (default: third_party/deepseek_v3_tokenizer/tokenizer.json)")
      ->check(CLI::ExistingFile);
  tokenizer
      ->add_option("--repeat", opts->repeat, "timed passes after the warm-up; the best one counts")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  tokenizer->add_flag("--json", opts->json, "one JSON line per implementation");
  tokenizer->add_flag("--no-peer", opts->no_peer, "time mnemo only: no node, no id check");
  tokenizer->callback([opts, &ctx] { ctx.exit_code = run_tokenizer_bench(*opts); });
}

}  // namespace mnemo::app
