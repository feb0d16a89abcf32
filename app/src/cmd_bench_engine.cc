// `mnemo bench decode` and `mnemo bench prefill`: the engine against the machine's own limits, measured
// in the same run. Decode is bound by memory bandwidth: the bytes of weights and KV a step really reads
// (counted by the kernels from the routing the step took) per second, over a STREAM-like triad on all
// cores. Prefill is bound by compute: the matmuls' flop rate over OpenBLAS sgemm on the same shapes.
#include <dlfcn.h>
#include <mnemo/base/json_text.h>
#include <mnemo/inference/kv_state.h>
#include <mnemo/inference/model.h>
#include <mnemo/kernels/cpu_features.h>
#include <mnemo/kernels/thread_pool.h>
#include <mnemo/kernels/traffic.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

using Clock = std::chrono::steady_clock;
using inference::Model;
using inference::Sequence;
using inference::SequenceChunk;
using inference::TokenId;

struct EngineBenchOptions {
  std::string model;
  std::string precision = "fp32";
  std::vector<int> batch{1, 8, 32};
  std::vector<int> tokens{512, 4096};
  int context = 512;
  int steps = 8;
  bool json = false;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool progress_enabled() { return isatty(STDERR_FILENO) == 1; }

void progress(const std::string& line) {
  if (progress_enabled()) std::cerr << "bench: " << line << '\n';
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// STREAM triad a = b + s * c on all cores, best of 5; bytes counted as STREAM does (3 arrays, no
// write-allocate). Arrays of twice the last-level cache each, so the figure is DRAM's.
double triad_gbs() {
  long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  size_t bytes = std::max<size_t>(size_t{256} << 20, llc > 0 ? 2 * static_cast<size_t>(llc) : 0);
  if (pages > 0 && page > 0) bytes = std::min(bytes, static_cast<size_t>(pages) * static_cast<size_t>(page) / 8);
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
  const int64_t grain = 1 << 16;
  kernels::parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) a[i] = 0, b[i] = 1.0f, c[i] = 2.0f;
  });
  double best = 1e300;
  for (int rep = 0; rep < 5; ++rep) {
    const float s = 0.5f + static_cast<float>(rep);
    auto t0 = Clock::now();
    kernels::parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
      float* __restrict pa = a.get();
      const float* __restrict pb = b.get();
      const float* __restrict pc = c.get();
      for (int64_t i = lo; i < hi; ++i) pa[i] = pb[i] + s * pc[i];
    });
    best = std::min(best, seconds_since(t0));
  }
  return 3.0 * static_cast<double>(n) * sizeof(float) / best / 1e9;
}

// Debian's OpenBLAS, loaded for the sgemm measurement only, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
// unset while it reads its environment so it picks its kernel for this CPU itself.
class OpenBlas {
 public:
  static Result<OpenBlas> load() {
    std::vector<std::pair<std::string, std::string>> saved;
    for (const char* name : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}) {
      if (const char* v = std::getenv(name)) saved.emplace_back(name, v);
      unsetenv(name);
    }
    void* lib = nullptr;
    for (const char* so : {"libopenblas.so.0", "libopenblas.so"}) {
      if ((lib = dlopen(so, RTLD_NOW | RTLD_LOCAL))) break;
    }
    for (const auto& [name, value] : saved) setenv(name.c_str(), value.c_str(), 1);
    if (!lib) return Status::not_found("libopenblas.so.0 not found (apt-get install libopenblas-dev)");
    OpenBlas b;
    b.sgemm_ = reinterpret_cast<SgemmFn>(dlsym(lib, "cblas_sgemm"));
    auto corename = reinterpret_cast<const char* (*)()>(dlsym(lib, "openblas_get_corename"));
    auto config = reinterpret_cast<const char* (*)()>(dlsym(lib, "openblas_get_config"));
    auto threads = reinterpret_cast<int (*)()>(dlsym(lib, "openblas_get_num_threads"));
    if (!b.sgemm_) return Status::not_found("libopenblas has no cblas_sgemm");
    b.core = corename ? corename() : "?";
    b.config = config ? config() : "?";
    b.threads = threads ? threads() : 0;
    return b;
  }

  // C[m, n] = A[m, k] B[n, k]^T, row-major: the layout of the engine's matmuls.
  void gemm(int m, int n, int k, const float* a, const float* b, float* c) const {
    constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
    sgemm_(kRowMajor, kNoTrans, kTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
  }

  std::string core, config;
  int threads = 0;

 private:
  using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                           float*, int);
  SgemmFn sgemm_ = nullptr;
};

// sgemm's rate (GFLOP/s) over a list of matmul shapes, weighted as the engine ran them: total flops over
// the sum of each shape's time times its call count. Very wide shapes are timed on a slice of rows.
double sgemm_gflops(const OpenBlas& blas, const std::vector<kernels::MatmulShape>& shapes) {
  constexpr int64_t kMaxRows = 16384;
  int64_t max_m = 1, max_n = 1, max_k = 1;
  for (const auto& s : shapes) {
    max_m = std::max(max_m, s.tokens);
    max_n = std::max(max_n, std::min(s.rows, kMaxRows));
    max_k = std::max(max_k, s.cols);
  }
  std::vector<float> a(static_cast<size_t>(max_m * max_k), 0.01f), b(static_cast<size_t>(max_n * max_k), 0.02f);
  std::vector<float> c(static_cast<size_t>(max_m * max_n));
  double flops = 0, seconds = 0;
  for (const auto& s : shapes) {
    const int64_t n = std::min(s.rows, kMaxRows);
    const double call_flops = 2.0 * static_cast<double>(s.tokens) * static_cast<double>(n) * static_cast<double>(s.cols);
    const int reps = static_cast<int>(std::clamp(2e8 / call_flops, 1.0, 50.0));
    blas.gemm(static_cast<int>(s.tokens), static_cast<int>(n), static_cast<int>(s.cols), a.data(), b.data(), c.data());
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) {
      blas.gemm(static_cast<int>(s.tokens), static_cast<int>(n), static_cast<int>(s.cols), a.data(), b.data(), c.data());
    }
    const double per_call = seconds_since(t0) / reps * (static_cast<double>(s.rows) / static_cast<double>(n));
    flops += 2.0 * static_cast<double>(s.tokens) * static_cast<double>(s.rows) * static_cast<double>(s.cols) *
             static_cast<double>(s.calls);
    seconds += per_call * static_cast<double>(s.calls);
  }
  return seconds > 0 ? flops / seconds / 1e9 : 0;
}

std::vector<TokenId> bench_tokens(int64_t n, uint32_t seed, int64_t vocab) {
  std::vector<TokenId> out(static_cast<size_t>(n));
  for (auto& t : out) {
    seed = seed * 1664525u + 1013904223u;
    t = static_cast<TokenId>(2 + (seed >> 8) % static_cast<uint32_t>(vocab - 2));
  }
  return out;
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::string dir;
};

Result<Loaded> load_model(const EngineBenchOptions& opt) {
  Loaded l;
  l.dir = opt.model;
  if (l.dir.empty()) {
    auto dir = ensure_default_model();
    if (!dir) return dir.status();
    l.dir = *dir;
  }
  auto precision = inference::parse_precision(opt.precision);
  if (!precision) return precision.status();
  progress("loading " + l.dir);
  auto model = Model::load(l.dir, {*precision});
  if (!model) return model.status();
  l.model = std::move(model).value();
  return l;
}

void print_machine(double gbs, const OpenBlas* blas) {
  std::cout << "machine: " << kernels::cpu_features().brand << ", " << kernels::thread_count()
            << " threads, kernels " << kernels::isa_name(kernels::active_isa()) << "\n";
  std::cout << "  memory bandwidth (triad, all cores): " << fixed(gbs, 1) << " GB/s\n";
  if (blas) std::cout << "  OpenBLAS: kernel " << blas->core << ", " << blas->threads << " threads\n";
}

// The matmul shapes that took the most time: a profile of where the step goes.
void print_top_shapes(kernels::Traffic traffic, double total_s) {
  std::sort(traffic.shapes.begin(), traffic.shapes.end(), [](const auto& a, const auto& b) { return a.ns > b.ns; });
  for (size_t i = 0; i < std::min<size_t>(4, traffic.shapes.size()); ++i) {
    const auto& s = traffic.shapes[i];
    const double secs = static_cast<double>(s.ns) * 1e-9;
    std::cout << "    " << s.tokens << " tokens x " << s.rows << "x" << s.cols << ", " << s.calls << " calls: "
              << fixed(100 * secs / total_s, 1) << "% of the time, "
              << fixed(2.0 * s.tokens * s.rows * s.cols * s.calls / secs / 1e9, 1) << " GFLOP/s\n";
  }
}

std::string header_json(const char* bench, const Loaded& l, const EngineBenchOptions& opt) {
  return std::string("{\"bench\":\"") + bench + "\",\"model\":" + json::quote(l.dir) +
         ",\"precision\":" + json::quote(opt.precision) +
         ",\"isa\":" + json::quote(kernels::isa_name(kernels::active_isa())) +
         ",\"threads\":" + std::to_string(kernels::thread_count());
}

int run_decode(const EngineBenchOptions& opt) {
  auto loaded = load_model(opt);
  if (!loaded) return fail("bench decode: " + loaded.status().message());
  const Model& m = *loaded->model;
  const int64_t V = m.config().vocab_size;
  progress("measuring memory bandwidth");
  const double gbs = triad_gbs();
  auto blas = OpenBlas::load();
  if (!blas) return fail("bench decode: " + blas.status().message());
  if (!opt.json) print_machine(gbs, &*blas);

  // One prefilled context, cloned into every sequence of the batch through its exported state.
  progress("prefilling a context of " + std::to_string(opt.context) + " tokens");
  Sequence base = m.new_sequence();
  auto context = bench_tokens(opt.context, 7, V);
  std::vector<float> logits(static_cast<size_t>(std::max(opt.context, 1)) * V);
  if (opt.context > 0) {
    if (auto s = m.forward(base, context, logits); !s) return fail("bench decode: " + s.message());
  }
  auto state = m.export_state(base, 0);
  if (!state) return fail("bench decode: " + state.status().message());

  for (int batch : opt.batch) {
    std::vector<Sequence> seqs;
    for (int b = 0; b < batch; ++b) {
      auto seq = m.import_state(state->segments, state->tail);
      if (!seq) return fail("bench decode: " + seq.status().message());
      seqs.push_back(std::move(seq).value());
    }
    std::vector<float> out(static_cast<size_t>(batch) * V);
    auto step = [&](int k) -> Status {
      auto toks = bench_tokens(batch, 1000 + k, V);
      std::vector<SequenceChunk> chunks;
      for (int b = 0; b < batch; ++b) chunks.push_back({&seqs[b], std::span<const TokenId>(&toks[b], 1)});
      return m.forward_batch(chunks, out);
    };
    progress("decode batch " + std::to_string(batch));
    if (auto s = step(0); !s) return fail("bench decode: " + s.message());  // warm-up: page in, allocate
    kernels::traffic_start();
    auto t0 = Clock::now();
    for (int k = 1; k <= opt.steps; ++k) {
      if (auto s = step(k); !s) {
        (void)kernels::traffic_stop();
        return fail("bench decode: " + s.message());
      }
    }
    const double secs = seconds_since(t0);
    kernels::Traffic traffic = kernels::traffic_stop();
    const double step_s = secs / opt.steps;
    const double bytes = static_cast<double>(traffic.weight_bytes + traffic.kv_bytes) / opt.steps;
    const double roofline = bytes / step_s / 1e9 / gbs;
    const double tps = batch / step_s;
    const double mm_gflops = traffic.matmul_flops / (static_cast<double>(traffic.matmul_ns) * 1e-9) / 1e9;
    const double blas_gflops = sgemm_gflops(*blas, traffic.shapes);
    if (opt.json) {
      std::cout << header_json("decode", *loaded, opt) << ",\"batch\":" << batch << ",\"tokens\":" << batch
                << ",\"context\":" << opt.context << ",\"steps\":" << opt.steps
                << ",\"tokens_per_s\":" << json::python_float_repr(tps)
                << ",\"step_ms\":" << json::python_float_repr(step_s * 1e3)
                << ",\"bytes_per_step\":" << static_cast<int64_t>(bytes)
                << ",\"weight_bytes_per_step\":" << traffic.weight_bytes / opt.steps
                << ",\"kv_bytes_per_step\":" << traffic.kv_bytes / opt.steps
                << ",\"bandwidth_gbs\":" << json::python_float_repr(gbs)
                << ",\"roofline_fraction\":" << json::python_float_repr(roofline)
                << ",\"matmul_share\":" << json::python_float_repr(traffic.matmul_ns * 1e-9 / secs)
                << ",\"matmul_gflops\":" << json::python_float_repr(mm_gflops)
                << ",\"sgemm_gflops\":" << json::python_float_repr(blas_gflops)
                << ",\"openblas_core\":" << json::quote(blas->core) << "}\n";
    } else {
      std::cout << "decode batch " << batch << " (context " << opt.context << ", " << opt.steps
                << " steps): " << fixed(tps, 2) << " tokens/s, " << fixed(step_s * 1e3, 2) << " ms/step, "
                << fixed(bytes / 1e6, 1) << " MB read/step (weights " << fixed(traffic.weight_bytes / 1e6 / opt.steps, 1)
                << ", KV " << fixed(traffic.kv_bytes / 1e6 / opt.steps, 1) << "), " << fixed(bytes / step_s / 1e9, 2)
                << " GB/s = " << fixed(100 * roofline, 1) << "% of the roofline; matmuls "
                << fixed(100 * traffic.matmul_ns * 1e-9 / secs, 0) << "% of the time at " << fixed(mm_gflops, 1)
                << " GFLOP/s (sgemm on these shapes " << fixed(blas_gflops, 1) << ")\n";
      print_top_shapes(traffic, secs);
    }
    std::cout.flush();
  }
  return 0;
}

int run_prefill(const EngineBenchOptions& opt) {
  auto loaded = load_model(opt);
  if (!loaded) return fail("bench prefill: " + loaded.status().message());
  const Model& m = *loaded->model;
  const int64_t V = m.config().vocab_size;
  progress("measuring memory bandwidth");
  const double gbs = triad_gbs();
  auto blas = OpenBlas::load();
  if (!blas) return fail("bench prefill: " + blas.status().message());
  if (!opt.json) print_machine(gbs, &*blas);
  {
    // Warm-up: pages the weights in and starts the thread pool.
    Sequence warm = m.new_sequence();
    auto toks = bench_tokens(16, 3, V);
    std::vector<float> logits(toks.size() * V);
    if (auto s = m.forward(warm, toks, logits); !s) return fail("bench prefill: " + s.message());
  }
  for (int n : opt.tokens) {
    progress("prefill " + std::to_string(n) + " tokens");
    Sequence seq = m.new_sequence();
    auto toks = bench_tokens(n, 11, V);
    std::vector<float> logits(static_cast<size_t>(n) * V);
    kernels::traffic_start();
    auto t0 = Clock::now();
    Status s = m.forward(seq, toks, logits);
    const double secs = seconds_since(t0);
    kernels::Traffic traffic = kernels::traffic_stop();
    if (!s) return fail("bench prefill: " + s.message());
    progress("sgemm on the prefill's " + std::to_string(traffic.shapes.size()) + " shapes");
    const double mm_s = static_cast<double>(traffic.matmul_ns) * 1e-9;
    const double mm_gflops = traffic.matmul_flops / mm_s / 1e9;
    const double blas_gflops = sgemm_gflops(*blas, traffic.shapes);
    const double tps = n / secs;
    if (opt.json) {
      std::cout << header_json("prefill", *loaded, opt) << ",\"batch\":1,\"tokens\":" << n
                << ",\"tokens_per_s\":" << json::python_float_repr(tps)
                << ",\"seconds\":" << json::python_float_repr(secs)
                << ",\"matmul_seconds\":" << json::python_float_repr(mm_s)
                << ",\"matmul_gflops\":" << json::python_float_repr(mm_gflops)
                << ",\"sgemm_gflops\":" << json::python_float_repr(blas_gflops)
                << ",\"sgemm_fraction\":" << json::python_float_repr(mm_gflops / blas_gflops)
                << ",\"openblas_core\":" << json::quote(blas->core)
                << ",\"bandwidth_gbs\":" << json::python_float_repr(gbs) << "}\n";
    } else {
      std::cout << "prefill " << n << " tokens: " << fixed(tps, 1) << " tokens/s (" << fixed(secs, 2)
                << " s); matmuls " << fixed(mm_s, 2) << " s at " << fixed(mm_gflops, 1)
                << " GFLOP/s = " << fixed(100 * mm_gflops / blas_gflops, 1) << "% of OpenBLAS sgemm on the same "
                << traffic.shapes.size() << " shapes (" << fixed(blas_gflops, 1) << " GFLOP/s)\n";
      print_top_shapes(traffic, secs);
    }
    std::cout.flush();
  }
  return 0;
}

void add_common(CLI::App* cmd, EngineBenchOptions& opt) {
  cmd->add_option("--model", opt.model, "model directory (default: the default model)");
  cmd->add_option("--precision", opt.precision, "fp32, bf16 or serving")->capture_default_str();
  cmd->add_flag("--json", opt.json, "one JSON line per measurement");
}

}  // namespace

void register_engine_benches(CLI::App& bench, CommandContext& ctx) {
  auto opt = std::make_shared<EngineBenchOptions>();
  auto* decode = bench.add_subcommand(
      "decode", "Decode tokens/s and bytes read per step against the measured memory bandwidth (roofline)");
  add_common(decode, *opt);
  decode->add_option("--batch", opt->batch, "sequences decoded together, e.g. 1,8,32")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  decode->add_option("--context", opt->context, "tokens prefilled before decoding")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  decode->add_option("--steps", opt->steps, "timed decode steps per batch size")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  decode->callback([opt, &ctx] { ctx.exit_code = run_decode(*opt); });

  auto* prefill = bench.add_subcommand(
      "prefill", "Prefill tokens/s and the matmuls' flop rate against OpenBLAS sgemm on the same shapes");
  add_common(prefill, *opt);
  prefill->add_option("--tokens", opt->tokens, "prompt lengths, e.g. 512,4096")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 20));
  prefill->callback([opt, &ctx] { ctx.exit_code = run_prefill(*opt); });
}

}  // namespace mnemo::app
