// The FP8/FP4 checkpoint path end to end: a model read straight from FP8 (128x128 block scales) and
// packed FP4 experts (32-wide scales) computes what the same weights give when written out as bf16.
#include <mnemo/inference/model.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/inference/safetensors.h>
#include <mnemo/inference/weights.h>

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace mnemo::inference;

namespace {

uint8_t byte_at(const Tensor& t, int64_t i) { return t.data[i]; }

// Dequantises every FP8/FP4 matrix of `src` into bf16 (exact: e4m3 and e2m1 times a power of two fit in
// bf16) and writes the checkpoint to dst/model.safetensors.
void write_dequantised(const Weights& src, const fs::path& dst) {
  int64_t inexact = 0;
  std::vector<TensorDecl> decls;
  std::vector<std::vector<uint8_t>> data;
  for (const Tensor* t : src.tensors()) {
    const std::string& name = t->name;
    if (name.size() > 6 && name.ends_with(".scale")) continue;
    std::string module = name.substr(0, name.size() - std::string(".weight").size());
    const Tensor* scale = name.ends_with(".weight") ? src.find(module + ".scale") : nullptr;
    if (!scale) {
      decls.push_back({name, t->dtype, t->shape});
      data.emplace_back(t->data, t->data + t->bytes);
      continue;
    }
    auto scale_of = [&](int64_t i) {
      return scale->dtype == DType::kF32 ? [&] { float f; std::memcpy(&f, scale->data + 4 * i, 4); return f; }()
                                         : ue8m0_to_f32(byte_at(*scale, i));
    };
    const int64_t rows = t->shape[0];
    const bool fp8 = t->dtype == DType::kF8E4M3;
    const int64_t cols = fp8 ? t->shape[1] : t->shape[1] * 2;
    std::vector<uint8_t> out(static_cast<size_t>(rows * cols * 2));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        float v;
        if (fp8) {
          v = e4m3_to_f32(byte_at(*t, r * cols + c)) * scale_of((r / 128) * ((cols + 127) / 128) + c / 128);
        } else {
          uint8_t b = byte_at(*t, r * (cols / 2) + c / 2);
          v = e2m1_to_f32((c & 1) ? (b >> 4) : (b & 0xF)) * scale_of(r * (cols / 32) + c / 32);
        }
        uint16_t h = f32_to_bf16(v);
        if (bf16_to_f32(h) != v) ++inexact;
        std::memcpy(&out[static_cast<size_t>(r * cols + c) * 2], &h, 2);
      }
    }
    decls.push_back({name, DType::kBF16, {rows, cols}});
    data.push_back(std::move(out));
  }
  CHECK(inexact == 0);  // e4m3 and e2m1 times a power of two are exact in bf16
  auto w = SafetensorsWriter::create((dst / "model.safetensors").string(), decls);
  REQUIRE(w);
  for (const auto& d : data) REQUIRE(w->write(d.data(), d.size()));
  REQUIRE(w->finish());
}

}  // namespace

TEST_CASE("an FP8/FP4 checkpoint computes the same logits as its weights dequantised to bf16", "[v4][fp8]") {
  fs::path root = fs::temp_directory_path() / ("mnemo-fp8-" + std::to_string(::getpid()));
  fs::path q = root / "fp8", deq = root / "deq";
  fs::create_directories(deq);
  ModelConfig config = preset_config(ModelPreset::kTiny);
  config.vocab_size = 4096;  // keeps the checkpoint small; tokenizer not needed here
  InitOptions opt;
  opt.seed = 7;
  opt.format = WeightFormat::kFp8;
  fs::create_directories(q);
  REQUIRE(write_synthetic_weights((q / "model.safetensors").string(), config, opt));
  std::ofstream(q / "config.json") << config.to_json();
  std::ofstream(deq / "config.json") << config.to_json();
  {
    auto weights = Weights::open(q.string());
    REQUIRE(weights);
    write_dequantised(*weights, deq);
  }
  auto mq = Model::load(q.string());
  auto md = Model::load(deq.string());
  REQUIRE(mq);
  REQUIRE(md);
  std::vector<TokenId> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(static_cast<TokenId>((i * 2654435761u) % 4096));
  const int64_t V = config.vocab_size;
  std::vector<float> lq(tokens.size() * V), ld(tokens.size() * V);
  auto sq = (*mq)->new_sequence();
  auto sd = (*md)->new_sequence();
  REQUIRE((*mq)->forward(sq, tokens, lq));
  REQUIRE((*md)->forward(sd, tokens, ld));
  float max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < lq.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(lq[i] - ld[i]));
    max_ref = std::max(max_ref, std::fabs(ld[i]));
  }
  INFO("max |dlogit| " << max_abs << " of max |logit| " << max_ref);
  CHECK(max_abs <= 1e-3f * std::max(1.0f, max_ref));
  CHECK((*mq)->fingerprint() != (*md)->fingerprint());
  fs::remove_all(root);
}
