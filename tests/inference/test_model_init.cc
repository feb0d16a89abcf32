#include <mnemo/base/file.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>
#include <mnemo/inference/weights.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "support/test_paths.h"

using namespace mnemo::inference;
using mnemo::Result;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d =
      fs::temp_directory_path() / ("mnemo-init-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Golden-tiny's architecture with its 4096-token vocabulary: fast to write.
ModelConfig small_vocab_tiny() {
  ModelConfig c = preset_config(ModelPreset::kTiny);
  c.vocab_size = 4096;
  return c;
}

std::string write(const fs::path& dir, const std::string& name, const ModelConfig& c,
                  InitOptions o) {
  std::string path = (dir / name).string();
  REQUIRE(write_synthetic_weights(path, c, o));
  return path;
}

std::string slurp(const std::string& path) {
  auto r = mnemo::read_file(path);
  REQUIRE(r);
  return *r;
}

struct Stats {
  double mean = 0, std = 0;
};

template <typename Decode>
Stats stats(const Tensor& t, int64_t n, Decode decode) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = decode(i);
    s += v;
    s2 += v * v;
  }
  Stats r;
  r.mean = s / n;
  r.std = std::sqrt(s2 / n - r.mean * r.mean);
  return r;
}

float bf16_at(const Tensor& t, int64_t i) {
  uint16_t v;
  std::memcpy(&v, t.data + 2 * i, 2);
  return bf16_to_f32(v);
}

}  // namespace

TEST_CASE("preset tiny is golden-tiny's architecture with the real vocabulary and a 1M context",
          "[model_init]") {
  ModelConfig c = preset_config(ModelPreset::kTiny);
  auto golden = load_model_config(mnemo::test::data_path("configs/golden_tiny_config.json"));
  REQUIRE(golden);
  CHECK(c.vocab_size == 129280);
  CHECK(c.max_position_embeddings == 1048576);
  c.vocab_size = golden->vocab_size;
  c.max_position_embeddings = golden->max_position_embeddings;
  CHECK(c.to_json() == golden->to_json());
  CHECK(parse_model_preset("small").value() == ModelPreset::kSmall);
  CHECK(!parse_model_preset("huge"));
}

TEST_CASE("preset small is a 1-2 GB benchmark model with every layer kind, hash layers and MTP",
          "[model_init]") {
  ModelConfig c = preset_config(ModelPreset::kSmall);
  REQUIRE(c.validate());
  ParamCounts p = count_params(c, WeightFormat::kBf16);
  CHECK(p.bytes > 1000000000);
  CHECK(p.bytes < 2000000000);
  CHECK(c.n_routed_experts >= 64);
  CHECK(c.num_experts_per_tok == 6);
  CHECK(c.num_layers_of(LayerKind::kWindow) >= 1);
  CHECK(c.num_layers_of(LayerKind::kCsa) >= 1);
  CHECK(c.num_layers_of(LayerKind::kHca) >= 1);
  CHECK(c.num_hash_layers >= 1);
  CHECK(c.num_nextn_predict_layers == 1);
  CHECK(serving_kv_entry_bytes(c) == 584);  // the real attention geometry
}

TEST_CASE("synthetic weights validate, and depend only on the seed, not on threads",
          "[model_init]") {
  fs::path dir = temp_dir("determinism");
  ModelConfig c = small_vocab_tiny();
  InitOptions one;
  one.seed = 7;
  one.threads = 1;
  InitOptions four = one;
  four.threads = 4;
  InitOptions other = one;
  other.seed = 8;
  std::string a = slurp(write(dir, "a.safetensors", c, one));
  std::string b = slurp(write(dir, "b.safetensors", c, four));
  std::string d = slurp(write(dir, "d.safetensors", c, other));
  CHECK(a == b);
  CHECK(a.size() == d.size());
  CHECK(a != d);
  fs::rename(dir / "a.safetensors", dir / "model.safetensors");
  auto w = Weights::open(dir.string());
  REQUIRE(w);
  CHECK(validate(*w, c));
  fs::remove_all(dir);
}

TEST_CASE("synthetic values follow golden-tiny's init recipe", "[model_init]") {
  fs::path dir = temp_dir("recipe");
  ModelConfig c = small_vocab_tiny();
  write(dir, "model.safetensors", c, {});
  auto w = Weights::open(dir.string());
  REQUIRE(w);
  auto st = [&](const std::string& name) {
    const Tensor& t = *w->find(name);
    if (t.dtype == DType::kF32) {
      return stats(t, t.numel(), [&](int64_t i) {
        float v;
        std::memcpy(&v, t.data + 4 * i, 4);
        return v;
      });
    }
    return stats(t, t.numel(), [&](int64_t i) { return bf16_at(t, i); });
  };
  CHECK(st("embed.weight").std == Approx(1.0).epsilon(0.02));
  CHECK(st("head.weight").std == Approx(2.0 / std::sqrt(128.0)).epsilon(0.02));
  CHECK(st("layers.1.attn.wq_b.weight").std == Approx(1.0 / std::sqrt(128.0)).epsilon(0.03));
  CHECK(st("layers.1.ffn.experts.4.w1.weight").std == Approx(6.0 / std::sqrt(128.0)).epsilon(0.03));
  CHECK(st("layers.1.ffn.experts.5.w1.weight").std == Approx(1.0 / std::sqrt(128.0)).epsilon(0.03));
  CHECK(st("layers.1.ffn.shared_experts.w3.weight").std ==
        Approx(4.0 / std::sqrt(128.0)).epsilon(0.03));
  CHECK(st("layers.1.attn_norm.weight").mean == Approx(1.0).epsilon(0.03));
  CHECK(st("layers.1.hc_attn_fn").std == Approx(0.02).epsilon(0.05));
  Stats scale = st("layers.1.hc_attn_scale");
  CHECK(scale.mean > 0.5);
  CHECK(scale.mean < 1.5);
  const Tensor& tid = *w->find("layers.0.ffn.gate.tid2eid");
  REQUIRE(tid.dtype == DType::kI64);
  for (int64_t r = 0; r < tid.shape[0]; ++r) {
    std::set<int64_t> ids;
    for (int64_t k = 0; k < tid.shape[1]; ++k) {
      int64_t v;
      std::memcpy(&v, tid.data + 8 * (r * tid.shape[1] + k), 8);
      CHECK(v >= 0);
      CHECK(v < c.n_routed_experts);
      ids.insert(v);
    }
    REQUIRE(static_cast<int64_t>(ids.size()) == tid.shape[1]);
  }
  fs::remove_all(dir);
}

TEST_CASE("fp8 weights are FP8 blocks and FP4 experts with power-of-two scales of the right size",
          "[model_init]") {
  fs::path dir = temp_dir("fp8");
  ModelConfig c = small_vocab_tiny();
  InitOptions o;
  o.format = WeightFormat::kFp8;
  write(dir, "model.safetensors", c, o);
  auto w = Weights::open(dir.string());
  REQUIRE(w);
  CHECK(detect_weight_format(*w).value() == WeightFormat::kFp8);
  CHECK(validate(*w, c));
  // Dequantized FP8: std 1/sqrt(fan_in), the block's largest value within one binade below 448.
  const Tensor& q = *w->find("layers.1.attn.wq_b.weight");
  const Tensor& qs = *w->find("layers.1.attn.wq_b.scale");
  REQUIRE(qs.shape == std::vector<int64_t>{8, 1});
  const int64_t cols = q.shape[1];
  Stats s = stats(q, q.numel(), [&](int64_t i) {
    int64_t r = i / cols, col = i % cols;
    return e4m3_to_f32(q.data[i]) * ue8m0_to_f32(qs.data[(r / 128) * qs.shape[1] + col / 128]);
  });
  CHECK(s.std == Approx(1.0 / std::sqrt(128.0)).epsilon(0.03));
  for (int64_t i = 0; i < qs.numel(); ++i) CHECK(qs.data[i] != 0xFF);
  float amax = 0;
  for (int64_t i = 0; i < 128 * cols; ++i) amax = std::max(amax, std::fabs(e4m3_to_f32(q.data[i])));
  CHECK(amax > 224.0f);
  CHECK(amax <= 448.0f);
  // FP4 experts: two per byte (low nibble first), one scale per 32 inputs.
  const Tensor& e = *w->find("layers.1.ffn.experts.4.w1.weight");
  const Tensor& es = *w->find("layers.1.ffn.experts.4.w1.scale");
  REQUIRE(e.shape == std::vector<int64_t>{128, 64});
  REQUIRE(es.shape == std::vector<int64_t>{128, 4});
  Stats fs4 = stats(e, 2 * e.numel(), [&](int64_t i) {
    int64_t r = i / 128, col = i % 128;
    uint8_t byte = e.data[r * 64 + col / 2];
    uint8_t nibble = col % 2 == 0 ? (byte & 0xF) : (byte >> 4);
    return e2m1_to_f32(nibble) * ue8m0_to_f32(es.data[r * 4 + col / 32]);
  });
  CHECK(fs4.std == Approx(6.0 / std::sqrt(128.0)).epsilon(0.1));
  fs::remove_all(dir);
}

TEST_CASE("the V4 tokenizer is V3's with the V4 special tokens, as JSON the loader accepts",
          "[model_init]") {
  std::string v3_text = slurp(mnemo::test::v3_tokenizer_path());
  auto v4_text = v4_tokenizer_json(v3_text);
  REQUIRE(v4_text);
  auto v4 = Tokenizer::from_json(*v4_text, "v4");
  REQUIRE(v4);
  auto v3 = Tokenizer::from_json(v3_text, "v3");
  REQUIRE(v3);
  for (const auto& t : tokens::kV4AddedTokens) {
    auto ids = v4->encode(t.text);
    REQUIRE(ids);
    CHECK(*ids == std::vector<TokenId>{t.id});
  }
  std::string text = "Hello, world! 你好 <｜User｜>x = 3.14";
  CHECK(v4->encode(text).value() == v3->encode(text).value());
  CHECK(v4->encode("a<think>b</think>").value().size() == 4);
  CHECK(!v4_tokenizer_json(*v4_text));  // already V4
  CHECK(!v4_tokenizer_json("{\"model\": {}}"));
}

TEST_CASE("init_model writes a complete model directory", "[model_init]") {
  fs::path dir = temp_dir("full");
  ModelConfig c = small_vocab_tiny();
  fs::path v3_dir = fs::path(mnemo::test::v3_tokenizer_path()).parent_path();
  uint64_t last = 0, total = 0;
  InitOptions o;
  o.progress = [&](uint64_t done, uint64_t all) {
    CHECK(done >= last);
    last = done;
    total = all;
  };
  REQUIRE(init_model((dir / "m").string(), c, o, v3_dir.string()));
  CHECK(last == total);
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    CHECK(fs::exists(dir / "m" / f));
    CHECK(!fs::exists(dir / "m" / (std::string(f) + ".partial")));
  }
  auto loaded = load_model_config((dir / "m" / "config.json").string());
  REQUIRE(loaded);
  CHECK(loaded->to_json() == c.to_json());
  auto w = Weights::open((dir / "m").string());
  REQUIRE(w);
  CHECK(validate(*w, *loaded));
  CHECK(Tokenizer::load((dir / "m" / "tokenizer.json").string()));
  fs::remove_all(dir);
}
