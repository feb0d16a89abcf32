// `mnemo model info` and `mnemo model init`.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/model_config.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/inference/model_tensors.h>
#include <mnemo/inference/weights.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "default_model.h"

namespace mnemo::app {
namespace {

namespace fs = std::filesystem;
using inference::KvFigures;
using inference::KvKindFigures;
using inference::ModelConfig;

struct InfoOptions {
  std::string model;
  std::string config;
  int64_t context = 1048576;
  bool json = false;
};

struct InitCmdOptions {
  std::string preset;
  std::string out;
  uint64_t seed = 0;
  std::string weights = "bf16";
  bool force = false;
};

// Integral figures print as integers, the others with Python's repr (3514.25).
std::string num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<int64_t>(v));
  return json::python_float_repr(v);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string human_params(int64_t p) {
  char buf[32];
  if (p >= 1000000000000) {
    std::snprintf(buf, sizeof buf, "%.2fT", p / 1e12);
  } else if (p >= 1000000000) {
    std::snprintf(buf, sizeof buf, "%.2fB", p / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fM", p / 1e6);
  }
  return buf;
}

std::string kind_json(const KvKindFigures& k) {
  std::ostringstream o;
  o << "{\"kind\": \"" << inference::layer_kind_name(k.kind) << "\", \"layers\": " << k.layers
    << ", \"bf16_bytes_per_token\": " << num(k.bf16_bytes_per_token)
    << ", \"serving_bytes_per_token\": " << num(k.serving_bytes_per_token)
    << ", \"bf16_bytes_at_context\": " << k.bf16_bytes_at_context
    << ", \"serving_bytes_at_context\": " << k.serving_bytes_at_context
    << ", \"bf16_ring_bytes\": " << k.bf16_ring_bytes
    << ", \"serving_ring_bytes\": " << k.serving_ring_bytes
    << ", \"carry_bytes\": " << k.carry_bytes << "}";
  return o.str();
}

void print_json(const std::string& source, const ModelConfig& c, const inference::ParamCounts& p,
                const KvFigures& kv, const std::string& weights_line) {
  std::ostringstream o;
  o << "{\"source\": ";
  std::string q;
  json::append_string(q, source);
  o << q << ", \"layers\": {\"main\": " << c.num_hidden_layers
    << ", \"window\": " << c.num_layers_of(inference::LayerKind::kWindow)
    << ", \"csa\": " << c.num_layers_of(inference::LayerKind::kCsa)
    << ", \"hca\": " << c.num_layers_of(inference::LayerKind::kHca)
    << ", \"mtp\": " << c.num_nextn_predict_layers << "}, \"params\": {\"total\": " << p.total
    << ", \"active\": " << p.active << ", \"mtp_total\": " << p.mtp_total
    << ", \"mtp_active\": " << p.mtp_active << "}, \"kv\": {\"context\": " << kv.context
    << ", \"serving_entry_bytes\": " << inference::serving_kv_entry_bytes(c)
    << ", \"serving_indexer_key_bytes\": " << inference::serving_indexer_key_bytes(c)
    << ", \"bf16_bytes_per_token\": " << num(kv.bf16_bytes_per_token)
    << ", \"serving_bytes_per_token\": " << num(kv.serving_bytes_per_token)
    << ", \"bf16_bytes_at_context\": " << kv.bf16_bytes_at_context
    << ", \"serving_bytes_at_context\": " << kv.serving_bytes_at_context << ", \"kinds\": [";
  for (size_t i = 0; i < kv.kinds.size(); ++i) o << (i ? ", " : "") << kind_json(kv.kinds[i]);
  o << "], \"mtp\": " << kind_json(kv.mtp) << "}";
  if (!weights_line.empty()) {
    std::string w;
    json::append_string(w, weights_line);
    o << ", \"weights\": " << w;
  }
  o << "}\n";
  std::cout << o.str();
}

void print_text(const std::string& source, const ModelConfig& c, const inference::ParamCounts& p,
                const KvFigures& kv, const std::string& weights_line) {
  using inference::LayerKind;
  std::ostringstream o;
  o << "model: " << source << "\n";
  if (!weights_line.empty()) o << "weights: " << weights_line << "\n";
  o << "layers: " << c.num_hidden_layers << " (window " << c.num_layers_of(LayerKind::kWindow)
    << ", csa " << c.num_layers_of(LayerKind::kCsa) << ", hca " << c.num_layers_of(LayerKind::kHca)
    << ") + " << c.num_nextn_predict_layers << " mtp\n";
  o << "parameters: total " << human_params(p.total) << " (" << p.total << "), active "
    << human_params(p.active) << " (" << p.active << "); the mtp layers add "
    << human_params(p.mtp_total) << " / " << human_params(p.mtp_active) << "\n";
  o << "kv cache per sequence (main layers; serving = FP8 nope + bf16 rope, "
    << inference::serving_kv_entry_bytes(c) << " B/entry, FP4 indexer keys "
    << inference::serving_indexer_key_bytes(c) << " B):\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-7s %6s %14s %17s %16s %16s %12s %12s %12s\n", "kind",
                "layers", "bf16 B/token", "serving B/token", "bf16 @context", "serving @context",
                "ring bf16", "ring serving", "carry fp32");
  o << line;
  auto row = [&](const std::string& name, const KvKindFigures& k) {
    std::snprintf(
        line, sizeof line, "  %-7s %6lld %14s %17s %16s %16s %12s %12s %12s\n", name.c_str(),
        static_cast<long long>(k.layers), num(k.bf16_bytes_per_token).c_str(),
        num(k.serving_bytes_per_token).c_str(), human_bytes(k.bf16_bytes_at_context).c_str(),
        human_bytes(k.serving_bytes_at_context).c_str(), human_bytes(k.bf16_ring_bytes).c_str(),
        human_bytes(k.serving_ring_bytes).c_str(), human_bytes(k.carry_bytes).c_str());
    o << line;
  };
  for (const KvKindFigures& k : kv.kinds) row(std::string(inference::layer_kind_name(k.kind)), k);
  row("mtp", kv.mtp);
  o << "  bytes/token: bf16 " << num(kv.bf16_bytes_per_token) << ", serving "
    << num(kv.serving_bytes_per_token) << "\n";
  o << "  at context " << kv.context << " (with ring and carry): bf16 "
    << human_bytes(kv.bf16_bytes_at_context) << ", serving "
    << human_bytes(kv.serving_bytes_at_context) << "\n";
  std::cout << o.str();
}

int run_info(InfoOptions opt) {
  if (!opt.model.empty() && !opt.config.empty())
    return fail("model info: pass --model DIR or --config FILE, not both");
  if (opt.model.empty() && opt.config.empty()) {
    auto dir = ensure_default_model();
    if (!dir) return fail(dir.status().message());
    opt.model = *dir;
  }
  if (opt.context < 0) return fail("model info: --context must not be negative");
  std::string config_path =
      opt.config.empty() ? (fs::path(opt.model) / "config.json").string() : opt.config;
  auto config = inference::load_model_config(config_path);
  if (!config) return fail(config.status().message());
  auto format = inference::WeightFormat::kBf16;
  std::string weights_line;
  if (!opt.model.empty()) {
    auto weights = inference::Weights::open(opt.model);
    if (!weights) return fail(weights.status().message());
    auto detected = inference::detect_weight_format(*weights);
    if (!detected) return fail(detected.status().message());
    format = *detected;
    if (auto s = inference::validate(*weights, *config, format); !s) return fail(s.message());
    weights_line = std::string(inference::weight_format_name(format)) + ", " +
                   std::to_string(weights->size()) + " tensors, " +
                   human_bytes(static_cast<double>(weights->total_bytes())) +
                   ", matches config.json";
  }
  auto params = inference::count_params(*config, format);
  auto kv = inference::kv_figures(*config, opt.context);
  std::string source = opt.model.empty() ? config_path : opt.model;
  if (opt.json) {
    print_json(source, *config, params, kv, weights_line);
  } else {
    print_text(source, *config, params, kv, weights_line);
  }
  return 0;
}

int run_init(const InitCmdOptions& opt) {
  auto preset = inference::parse_model_preset(opt.preset);
  if (!preset) return fail(preset.status().message());
  if (opt.weights != "bf16" && opt.weights != "fp8")
    return fail("model init: --weights must be bf16 or fp8");
  std::error_code ec;
  for (const char* name : {"config.json", "model.safetensors"}) {
    if (!opt.force && fs::exists(fs::path(opt.out) / name, ec)) {
      return fail("model init: " + (fs::path(opt.out) / name).string() +
                  " exists; pass --force to overwrite");
    }
  }
  auto tokenizer_dir = find_v3_tokenizer_dir();
  if (!tokenizer_dir) return fail(tokenizer_dir.status().message());
  inference::InitOptions options;
  options.seed = opt.seed;
  options.format =
      opt.weights == "fp8" ? inference::WeightFormat::kFp8 : inference::WeightFormat::kBf16;
  options.progress =
      stderr_progress("mnemo: writing " + (fs::path(opt.out) / "model.safetensors").string());
  auto start = std::chrono::steady_clock::now();
  auto config = inference::preset_config(*preset);
  if (auto s = inference::init_model(opt.out, config, options, *tokenizer_dir); !s)
    return fail(s.message());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto params = inference::count_params(config, options.format);
  std::fprintf(stderr, "mnemo: wrote %s (preset %s, %s, %s parameters, %s) in %.1f s\n",
               opt.out.c_str(), opt.preset.c_str(), opt.weights.c_str(),
               human_params(params.total + params.mtp_total).c_str(),
               human_bytes(static_cast<double>(params.bytes)).c_str(), secs);
  return 0;
}

}  // namespace

void register_model_commands(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = app.add_subcommand("model", "Inspect or create model directories");
  model->require_subcommand(1);

  auto info = std::make_shared<InfoOptions>();
  CLI::App* info_cmd =
      model->add_subcommand("info",
                            "Layers, parameters and KV-cache bytes of a model directory (default: "
                            "the default model) or a config.json");
  info_cmd->add_option("--model", info->model,
                       "model directory (config.json + weights, which are checked)");
  info_cmd->add_option("--config", info->config, "a config.json alone");
  info_cmd->add_option("--context", info->context,
                       "context length for the KV-cache totals (default 1048576)");
  info_cmd->add_flag("--json", info->json, "print one JSON object");
  info_cmd->callback([info, &ctx] { ctx.exit_code = run_info(*info); });

  auto init = std::make_shared<InitCmdOptions>();
  CLI::App* init_cmd = model->add_subcommand(
      "init", "Write a deterministic synthetic checkpoint with the DeepSeek V4 tokenizer");
  init_cmd
      ->add_option("--preset", init->preset,
                   "tiny (the default embedded model) or small (benchmarks)")
      ->required();
  init_cmd->add_option("--out", init->out, "output directory")->required();
  init_cmd->add_option("--seed", init->seed, "random seed (default 0)");
  init_cmd->add_option("--weights", init->weights,
                       "bf16 (default) or fp8 (FP8 matrices, FP4 experts)");
  init_cmd->add_flag("--force", init->force, "overwrite an existing model in --out");
  init_cmd->callback([init, &ctx] { ctx.exit_code = run_init(*init); });
}

}  // namespace mnemo::app
