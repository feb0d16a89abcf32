#include <mnemo/inference/model_config.h>
#include <mnemo/inference/model_tensors.h>
#include <mnemo/inference/weights.h>

#include <catch2/catch.hpp>
#include <map>

#include "support/test_paths.h"

using namespace mnemo::inference;
using mnemo::Status;

namespace {

ModelConfig config(const std::string& name) {
  auto c = load_model_config(mnemo::test::data_path("configs/" + name));
  REQUIRE(c);
  return *c;
}

const Weights& golden_weights() {
  static auto w = Weights::open(mnemo::test::data_path("deepseek_v4_tiny"));
  REQUIRE(w);
  return *w;
}

const TensorSpec& spec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& s : specs) {
    if (s.name == name) return s;
  }
  FAIL("no spec " << name);
  return specs.front();
}

}  // namespace

TEST_CASE("the bf16 tensor list of golden-tiny's config is exactly the golden checkpoint's",
          "[model_tensors]") {
  ModelConfig c = config("golden_tiny_config.json");
  std::vector<TensorSpec> specs = expected_tensors(c, WeightFormat::kBf16);
  const Weights& w = golden_weights();
  REQUIRE(w.size() == 525);
  REQUIRE(specs.size() == w.size());
  std::map<std::string, const TensorSpec*> by_name;
  for (const TensorSpec& s : specs) by_name[s.name] = &s;
  REQUIRE(by_name.size() == specs.size());
  for (const Tensor* t : w.tensors()) {
    INFO(t->name);
    auto it = by_name.find(t->name);
    REQUIRE(it != by_name.end());
    CHECK(it->second->dtype == t->dtype);
    CHECK(it->second->shape == t->shape);
  }
  CHECK(validate(w, c));
  CHECK(detect_weight_format(w).value() == WeightFormat::kBf16);
}

TEST_CASE("validate names the first tensor that does not fit the config", "[model_tensors]") {
  ModelConfig c = config("golden_tiny_config.json");
  c.n_routed_experts = 17;
  Status s = validate(golden_weights(), c);
  REQUIRE(!s);
  CHECK_THAT(
      s.message(),
      Catch::Contains(
          "tensor 'layers.0.ffn.gate.weight' should be BF16 [17, 128] but is BF16 [16, 128]"));

  c = config("golden_tiny_config.json");
  c.n_routed_experts = 15;
  c.num_experts_per_tok = 4;
  s = validate(golden_weights(), c);
  REQUIRE(!s);
  CHECK_THAT(s.message(), Catch::Contains("[15, 128]"));

  c = config("golden_tiny_config.json");
  c.num_nextn_predict_layers = 0;
  c.compress_ratios.pop_back();
  s = validate(golden_weights(), c);
  REQUIRE(!s);
  CHECK_THAT(s.message(), Catch::Contains("unexpected tensor 'mtp.0."));

  s = validate(golden_weights(), config("golden_tiny_config.json"), WeightFormat::kFp8);
  REQUIRE(!s);
  CHECK_THAT(s.message(), Catch::Contains("should be F8_E4M3"));
}

TEST_CASE(
    "golden-tiny has 9.79M parameters, and active ones leave out 12 of 16 experts and all but one "
    "embedding row",
    "[model_tensors]") {
  ModelConfig c = config("golden_tiny_config.json");
  ParamCounts p = count_params(c, WeightFormat::kBf16);
  int64_t actual = 0;
  for (const Tensor* t : golden_weights().tensors()) actual += t->numel();
  CHECK(p.total + p.mtp_total == actual);
  CHECK(actual > 9785000);
  CHECK(actual < 9795000);
  int64_t expert = 3 * 128 * 128;
  CHECK(p.total - p.active == 6 * 12 * expert + (4096 - 1) * 128);
  CHECK(p.mtp_total - p.mtp_active == 12 * expert);
  CHECK(p.bytes == static_cast<int64_t>(golden_weights().total_bytes()));
}

TEST_CASE("the fp8 layout follows the official release: FP8 blocks, FP4 experts, BF16 and F32 rest",
          "[model_tensors]") {
  ModelConfig c = config("v4_flash_config.json");
  std::vector<TensorSpec> specs = expected_tensors(c, WeightFormat::kFp8);
  auto check = [&](const std::string& name, DType dtype, std::vector<int64_t> shape) {
    INFO(name);
    const TensorSpec& s = spec(specs, name);
    CHECK(s.dtype == dtype);
    CHECK(s.shape == shape);
  };
  check("layers.0.attn.wq_a.weight", DType::kF8E4M3, {1024, 4096});
  check("layers.0.attn.wq_a.scale", DType::kF8E8M0, {8, 32});
  check("layers.0.attn.wo_a.weight", DType::kF8E4M3, {8192, 4096});
  check("layers.0.attn.wo_a.scale", DType::kF8E8M0, {64, 32});
  check("layers.5.ffn.experts.255.w1.weight", DType::kI8, {2048, 2048});
  check("layers.5.ffn.experts.255.w1.scale", DType::kF8E8M0, {2048, 128});
  check("layers.5.ffn.experts.0.w2.weight", DType::kI8, {4096, 1024});
  check("layers.5.ffn.experts.0.w2.scale", DType::kF8E8M0, {4096, 64});
  check("layers.5.ffn.shared_experts.w2.weight", DType::kF8E4M3, {4096, 2048});
  check("layers.5.ffn.gate.weight", DType::kBF16, {256, 4096});
  check("layers.5.ffn.gate.bias", DType::kF32, {256});
  check("layers.0.ffn.gate.tid2eid", DType::kI64, {129280, 6});
  check("layers.2.attn.compressor.wkv.weight", DType::kBF16, {1024, 4096});
  check("layers.2.attn.compressor.ape", DType::kF32, {4, 1024});
  check("layers.3.attn.compressor.ape", DType::kF32, {128, 512});
  check("layers.2.attn.indexer.wq_b.weight", DType::kF8E4M3, {8192, 1024});
  check("layers.2.attn.indexer.weights_proj.weight", DType::kBF16, {64, 4096});
  check("layers.2.attn.indexer.compressor.wgate.weight", DType::kBF16, {256, 4096});
  check("mtp.0.e_proj.weight", DType::kF8E4M3, {4096, 4096});
  check("mtp.0.hc_head_fn", DType::kF32, {4, 16384});
  check("embed.weight", DType::kBF16, {129280, 4096});
  check("head.weight", DType::kBF16, {129280, 4096});
  check("layers.7.attn_norm.weight", DType::kBF16, {4096});
  check("layers.7.hc_attn_fn", DType::kF32, {24, 16384});
  check("layers.7.attn.attn_sink", DType::kF32, {64});
  // Packed FP4 counts two parameters per byte; scales count none.
  CHECK(spec(specs, "layers.5.ffn.experts.0.w2.weight").params == 4096 * 2048);
  CHECK(spec(specs, "layers.5.ffn.experts.0.w2.scale").params == 0);
  CHECK(count_params(c, WeightFormat::kFp8).total == count_params(c, WeightFormat::kBf16).total);
  CHECK(count_params(c, WeightFormat::kFp8).bytes < count_params(c, WeightFormat::kBf16).bytes / 3);
}

TEST_CASE("the official configs count about 284B/13B (Flash) and 1.6T/49B (Pro) parameters",
          "[model_tensors]") {
  ParamCounts flash = count_params(config("v4_flash_config.json"), WeightFormat::kFp8);
  CHECK(flash.total > 280e9);
  CHECK(flash.total < 290e9);
  CHECK(flash.active > 13.0e9);
  CHECK(flash.active < 13.5e9);
  ParamCounts pro = count_params(config("v4_pro_config.json"), WeightFormat::kFp8);
  CHECK(pro.total > 1.55e12);
  CHECK(pro.total < 1.65e12);
  CHECK(pro.active > 48.5e9);
  CHECK(pro.active < 49.5e9);
}

TEST_CASE("KV bytes per token match the spec: Flash 6,880 / ~3,514, Pro 9,848 / ~5,031",
          "[model_tensors]") {
  ModelConfig flash = config("v4_flash_config.json");
  CHECK(serving_kv_entry_bytes(flash) == 584);
  CHECK(serving_indexer_key_bytes(flash) == 68);
  KvFigures f = kv_figures(flash, 1048576);
  CHECK(f.bf16_bytes_per_token == 6880);
  CHECK(f.serving_bytes_per_token == 3514.25);
  REQUIRE(f.kinds.size() == 3);
  CHECK(f.kinds[0].kind == LayerKind::kWindow);
  CHECK(f.kinds[0].layers == 2);
  CHECK(f.kinds[0].bf16_bytes_per_token == 0);
  CHECK(f.kinds[1].bf16_bytes_per_token == 21 * 320);
  CHECK(f.kinds[2].bf16_bytes_per_token == 20 * 8);
  CHECK(f.kinds[1].bf16_bytes_at_context == int64_t{21} * 262144 * 1280);
  int64_t compressed = 0;
  for (const auto& k : f.kinds) compressed += k.bf16_bytes_at_context;
  CHECK(compressed == int64_t{6880} * 1048576);  // 6.7 GiB at 1M tokens
  CHECK(f.kinds[0].bf16_ring_bytes == 2 * 128 * 1024);
  CHECK(f.mtp.layers == 1);
  CHECK(f.mtp.bf16_bytes_per_token == 0);
  CHECK(f.mtp.serving_ring_bytes == 128 * 584);

  KvFigures p = kv_figures(config("v4_pro_config.json"), 1048576);
  CHECK(p.bf16_bytes_per_token == 9848);
  CHECK(p.serving_bytes_per_token == 5031.4375);

  // Short contexts count whole entries only, and the ring holds no more tokens than there are.
  KvFigures s = kv_figures(flash, 130);
  CHECK(s.kinds[2].bf16_bytes_at_context == 20 * 1024);
  CHECK(s.kinds[1].bf16_bytes_at_context == 21 * 32 * 1280);
  CHECK(kv_figures(flash, 5).kinds[0].bf16_ring_bytes == 2 * 5 * 1024);
}
