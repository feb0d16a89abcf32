#include <mnemo/base/file.h>
#include <mnemo/inference/model_config.h>

#include <catch2/catch.hpp>
#include <regex>

#include "support/test_paths.h"

using namespace mnemo::inference;

namespace {

std::string config_text(const std::string& name) {
  auto r = mnemo::read_file(mnemo::test::data_path("configs/" + name));
  REQUIRE(r);
  return *r;
}

// The golden-tiny config with one key's value replaced (or the key removed when value is empty).
std::string edited(const std::string& key, const std::string& value) {
  std::string text = config_text("golden_tiny_config.json");
  std::regex re("\"" + key + "\": (\\[[^\\]]*\\]|\\{[^}]*\\}|[^,\\n]+),?\\n");
  std::smatch m;
  REQUIRE(std::regex_search(text, m, re));
  std::string replacement = value.empty() ? "" : "\"" + key + "\": " + value + ",\n";
  return m.prefix().str() + replacement + m.suffix().str();
}

std::string error_of(const std::string& json) {
  auto r = parse_model_config(json, "config.json");
  REQUIRE(!r);
  return r.status().message();
}

}  // namespace

TEST_CASE("golden-tiny's config parses with every key of the spec", "[config]") {
  auto c = load_model_config(mnemo::test::data_path("configs/golden_tiny_config.json"));
  REQUIRE(c);
  CHECK(c->vocab_size == 4096);
  CHECK(c->hidden_size == 128);
  CHECK(c->num_hidden_layers == 6);
  CHECK(c->num_attention_heads == 8);
  CHECK(c->head_dim == 128);
  CHECK(c->qk_rope_head_dim == 64);
  CHECK(c->nope_head_dim() == 64);
  CHECK(c->q_lora_rank == 128);
  CHECK(c->o_groups == 2);
  CHECK(c->o_lora_rank == 64);
  CHECK(c->sliding_window == 16);
  CHECK(c->compress_ratios == std::vector<int>{0, 0, 4, 128, 4, 128, 0});
  CHECK(c->index_n_heads == 16);
  CHECK(c->index_head_dim == 128);
  CHECK(c->index_topk == 8);
  CHECK(c->n_routed_experts == 16);
  CHECK(c->n_shared_experts == 1);
  CHECK(c->num_experts_per_tok == 4);
  CHECK(c->moe_intermediate_size == 128);
  CHECK(c->num_hash_layers == 3);
  CHECK(c->scoring_func == "sqrtsoftplus");
  CHECK(c->routed_scaling_factor == 1.5);
  CHECK(c->norm_topk_prob);
  CHECK(c->swiglu_limit == 10.0);
  CHECK(c->hc_mult == 4);
  CHECK(c->hc_sinkhorn_iters == 20);
  CHECK(c->hc_eps == 1e-6);
  CHECK(c->rope_theta == 10000.0);
  CHECK(c->compress_rope_theta == 160000.0);
  CHECK(c->rope_scaling.type == "yarn");
  CHECK(c->rope_scaling.factor == 16.0);
  CHECK(c->rope_scaling.original_max_position_embeddings == 65536);
  CHECK(c->rope_scaling.beta_fast == 32);
  CHECK(c->rope_scaling.beta_slow == 1);
  CHECK(c->rms_norm_eps == 1e-6);
  CHECK(c->max_position_embeddings == 1024);
  CHECK(c->num_nextn_predict_layers == 1);
  CHECK(c->bos_token_id == 0);
  CHECK(c->eos_token_id == 1);
  CHECK(c->layer_kind(0) == LayerKind::kWindow);
  CHECK(c->layer_kind(2) == LayerKind::kCsa);
  CHECK(c->layer_kind(3) == LayerKind::kHca);
  CHECK(c->layer_kind(6) == LayerKind::kWindow);  // the MTP block
  CHECK(c->num_layers_of(LayerKind::kCsa) == 2);
  CHECK(c->is_hash_layer(2));
  CHECK(!c->is_hash_layer(3));
}

TEST_CASE("the official Flash and Pro configs parse, layer kinds only from compress_ratios",
          "[config]") {
  auto flash = load_model_config(mnemo::test::data_path("configs/v4_flash_config.json"));
  REQUIRE(flash);
  CHECK(flash->num_hidden_layers == 43);
  CHECK(flash->compress_ratios.size() == 44);
  CHECK(flash->num_layers_of(LayerKind::kWindow) == 2);
  CHECK(flash->num_layers_of(LayerKind::kCsa) == 21);
  CHECK(flash->num_layers_of(LayerKind::kHca) == 20);
  CHECK(flash->n_routed_experts == 256);
  CHECK(flash->index_topk == 512);
  CHECK(flash->max_position_embeddings == 1048576);
  auto pro = load_model_config(mnemo::test::data_path("configs/v4_pro_config.json"));
  REQUIRE(pro);
  CHECK(pro->num_hidden_layers == 61);
  CHECK(pro->layer_kind(0) == LayerKind::kHca);  // Pro starts with two HCA layers
  CHECK(pro->layer_kind(1) == LayerKind::kHca);
  CHECK(pro->num_layers_of(LayerKind::kCsa) == 30);
  CHECK(pro->num_layers_of(LayerKind::kHca) == 31);
  CHECK(pro->n_routed_experts == 384);
  CHECK(pro->routed_scaling_factor == 2.5);
}

TEST_CASE("a config written by to_json parses back to the same values", "[config]") {
  auto c = load_model_config(mnemo::test::data_path("configs/v4_pro_config.json"));
  REQUIRE(c);
  auto back = parse_model_config(c->to_json(), "round trip");
  REQUIRE(back);
  CHECK(back->to_json() == c->to_json());
  CHECK(back->compress_ratios == c->compress_ratios);
  CHECK(back->hc_eps == c->hc_eps);
}

TEST_CASE("a missing required key is an error naming it", "[config]") {
  for (const char* key :
       {"hidden_size", "head_dim", "compress_ratios", "index_topk", "swiglu_limit", "hc_mult",
        "rope_scaling", "num_nextn_predict_layers", "scoring_func", "norm_topk_prob"}) {
    INFO(key);
    std::string m = error_of(edited(key, ""));
    CHECK(m.find(std::string("'") + key + "'") != std::string::npos);
    CHECK(m.rfind("config.json: ", 0) == 0);
  }
}

TEST_CASE("inconsistent values are errors naming the key", "[config]") {
  const std::pair<std::pair<const char*, const char*>, const char*> cases[] = {
      {{"qk_rope_head_dim", "192"}, "'qk_rope_head_dim' must be even and at most head_dim"},
      {{"head_dim", "160"}, "'head_dim' minus qk_rope_head_dim must be a multiple of 64"},
      {{"o_groups", "3"}, "'o_groups' (3) must divide num_attention_heads (8)"},
      {{"num_experts_per_tok", "17"}, "'num_experts_per_tok' (17) exceeds n_routed_experts (16)"},
      {{"compress_ratios", "[0, 0, 4, 128, 4, 128]"}, "'compress_ratios' has 6 entries, expected"},
      {{"compress_ratios", "[0, 0, 4, 64, 4, 128, 0]"},
       "'compress_ratios' [3] is 64; only 0, 4 and 128 exist"},
      {{"compress_ratios", "[0, 0, 4, 128, 4, 128, 4]"}, "'compress_ratios' [6] is an MTP layer"},
      {{"num_hash_layers", "7"}, "'num_hash_layers' must be between 0 and num_hidden_layers"},
      {{"num_key_value_heads", "2"}, "'num_key_value_heads' must be 1"},
      {{"hidden_size", "0"}, "'hidden_size' must be positive"},
      {{"hidden_size", "\"128\""}, "'hidden_size' must be an integer"},
      {{"scoring_func", "\"softmax\""}, "'scoring_func' must be \"sqrtsoftplus\""},
      {{"model_type", "\"deepseek_v3\""}, "only \"deepseek_v4\" is supported"},
      {{"rms_norm_eps", "0"}, "'rms_norm_eps' must be positive"},
      {{"index_head_dim", "96"}, "'index_head_dim' must be a power of two"},
      {{"rope_scaling",
        "{\"type\": \"linear\", \"factor\": 16.0, \"original_max_position_embeddings\": 65536, "
        "\"beta_fast\": 32, \"beta_slow\": 1}"},
       "'rope_scaling.type' must be \"yarn\""},
  };
  for (const auto& [edit, message] : cases) {
    INFO(edit.first << " = " << edit.second);
    std::string m = error_of(edited(edit.first, edit.second));
    CHECK_THAT(m, Catch::Contains(message));
  }
  CHECK_THAT(error_of("{not json"), Catch::Contains("config.json: invalid JSON"));
  CHECK_THAT(error_of("[1]"), Catch::Contains("expected a JSON object"));
}

TEST_CASE("unknown keys are accepted and bos/eos default to 0 and 1", "[config]") {
  std::string text = edited("tie_word_embeddings", "false, \"some_future_key\": {\"x\": [1, 2]}");
  auto c = parse_model_config(text, "config.json");
  REQUIRE(c);
  CHECK(c->bos_token_id == 0);
  CHECK(c->eos_token_id == 1);
  CHECK(parse_model_config(edited("max_position_embeddings", "4096.0"),
                           "config.json"));  // integral float
}
