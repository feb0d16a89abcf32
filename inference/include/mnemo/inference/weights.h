#pragma once
// All tensors of a HuggingFace-layout model directory: model.safetensors, or the shards
// model-XXXXX-of-YYYYY.safetensors listed by model.safetensors.index.json, memory-mapped.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/safetensors.h>

namespace mnemo::inference {

inline constexpr std::string_view kSingleWeightsFile = "model.safetensors";
inline constexpr std::string_view kWeightsIndexFile = "model.safetensors.index.json";

class Weights {
 public:
  static Result<Weights> open(const std::string& dir);

  const Tensor* find(std::string_view name) const;
  // The tensor `name` when it exists with one of `dtypes` and exactly `shape`; otherwise an error
  // naming the tensor, what was expected and what the checkpoint has.
  Result<const Tensor*> require(std::string_view name, DTypeSet dtypes,
                                const std::vector<int64_t>& shape) const;

  // Every tensor, sorted by name.
  const std::vector<const Tensor*>& tensors() const { return sorted_; }
  size_t size() const { return sorted_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }
  const std::string& dir() const { return dir_; }

 private:
  Weights() = default;
  Status add_file(SafetensorsFile file,
                  const std::unordered_map<std::string, std::string>* weight_map);

  std::string dir_;
  // unique_ptr keeps Tensor addresses stable when Weights moves.
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string_view, const Tensor*> by_name_;
  std::vector<const Tensor*> sorted_;
  uint64_t total_bytes_ = 0;
};

}  // namespace mnemo::inference
