// `mnemo forward`: logits of a token sequence, for checks against other engines and the reference.
#include <mnemo/inference/model.h>

#include <simdjson.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "commands.h"

namespace mnemo::app {
namespace {

struct ForwardOptions {
  std::string model;
  std::string ids;
  int64_t prefill = -1;
  int64_t chunk = 0;
  std::string precision = "fp32";
  std::string out;
  std::string mtp_out;
};

Result<std::vector<inference::TokenId>> read_ids(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.load(path).get(doc)) {
    return Status::invalid_argument(path + ": " + simdjson::error_message(e));
  }
  simdjson::dom::array arr;
  if (doc.get(arr)) return Status::invalid_argument(path + ": expected a JSON array of token ids");
  std::vector<inference::TokenId> ids;
  for (simdjson::dom::element e : arr) {
    int64_t v;
    if (e.get(v) || v < 0 || v > INT32_MAX) {
      return Status::invalid_argument(path + ": element " + std::to_string(ids.size()) + " is not a token id");
    }
    ids.push_back(static_cast<inference::TokenId>(v));
  }
  if (ids.empty()) return Status::invalid_argument(path + ": no token ids");
  return ids;
}

Status write_f32(const std::string& path, const std::vector<float>& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  if (!f) return Status::io_error("cannot write " + path);
  return Status::ok();
}

int run_forward(const ForwardOptions& opt) {
  auto precision = inference::parse_precision(opt.precision);
  if (!precision) return fail(precision.status().message());
  auto ids = read_ids(opt.ids);
  if (!ids) return fail(ids.status().message());
  auto model = inference::Model::load(opt.model, {*precision});
  if (!model) return fail(model.status().message());
  const inference::Model& m = **model;
  const auto n = static_cast<int64_t>(ids->size());
  const int64_t V = m.config().vocab_size;
  const int64_t prefill = opt.prefill < 0 ? n : std::min(opt.prefill, n);
  const int64_t chunk = opt.chunk > 0 ? opt.chunk : std::max<int64_t>(prefill, 1);
  const bool want_mtp = !opt.mtp_out.empty();
  if (want_mtp && m.config().num_nextn_predict_layers < 1) return fail("this model has no MTP block");

  std::vector<float> logits(static_cast<size_t>(n * V));
  std::vector<float> streams;
  auto seq = m.new_sequence();
  auto run = [&](int64_t at, int64_t len) -> Status {
    inference::ForwardOutputs outputs;
    MNEMO_RETURN_IF_ERROR(m.forward(seq, std::span<const inference::TokenId>(ids->data() + at, static_cast<size_t>(len)),
                                    std::span<float>(logits.data() + at * V, static_cast<size_t>(len * V)),
                                    want_mtp ? &outputs : nullptr));
    streams.insert(streams.end(), outputs.final_streams.begin(), outputs.final_streams.end());
    return Status::ok();
  };
  for (int64_t at = 0; at < prefill; at += chunk) {
    if (auto s = run(at, std::min(chunk, prefill - at)); !s) return fail(s.message());
  }
  for (int64_t at = prefill; at < n; ++at) {
    if (auto s = run(at, 1); !s) return fail(s.message());
  }
  if (auto s = write_f32(opt.out, logits); !s) return fail(s.message());
  if (want_mtp && n > 1) {
    // MTP position i pairs the main model's streams at i with the token at i + 1.
    auto mtp = m.new_mtp_sequence();
    std::vector<float> mtp_logits(static_cast<size_t>((n - 1) * V));
    auto s = m.mtp_forward(mtp, streams, std::span<const inference::TokenId>(ids->data() + 1, static_cast<size_t>(n - 1)),
                           mtp_logits);
    if (!s) return fail(s.message());
    if (auto w = write_f32(opt.mtp_out, mtp_logits); !w) return fail(w.message());
  }
  return 0;
}

}  // namespace

void register_forward_command(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<ForwardOptions>();
  CLI::App* cmd = app.add_subcommand("forward", "Logits of a token sequence (float32 little-endian, [tokens, vocab])");
  cmd->add_option("--model", opt->model, "model directory")->required();
  cmd->add_option("--ids", opt->ids, "JSON file holding an array of token ids")->required();
  cmd->add_option("--prefill", opt->prefill, "how many leading tokens go through prefill (default all); the rest "
                                             "are decoded one at a time");
  cmd->add_option("--chunk", opt->chunk, "prefill in chunks of this many tokens");
  cmd->add_option("--precision", opt->precision, "fp32 (default), bf16 or serving");
  cmd->add_option("--out", opt->out, "output file for the logits")->required();
  cmd->add_option("--mtp-out", opt->mtp_out,
                  "also write the MTP block's logits [tokens - 1, vocab]: row i pairs position i with token i + 1");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_forward(*opt); });
}

}  // namespace mnemo::app
