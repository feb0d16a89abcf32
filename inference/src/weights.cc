#include <mnemo/base/file.h>
#include <mnemo/inference/weights.h>

#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace mnemo::inference {
namespace fs = std::filesystem;
namespace {

// weight_map of model.safetensors.index.json: tensor name -> shard file name.
Result<std::unordered_map<std::string, std::string>> read_index(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.status();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto e = parser.parse(*text).get(root)) {
    return Status::invalid_argument(path + ": invalid JSON: " + simdjson::error_message(e));
  }
  simdjson::dom::object map;
  if (root["weight_map"].get(map))
    return Status::invalid_argument(path + ": missing object 'weight_map'");
  std::unordered_map<std::string, std::string> out;
  for (auto [name, file] : map) {
    std::string_view f;
    if (file.get(f)) {
      return Status::invalid_argument(path + ": weight_map['" + std::string(name) +
                                      "'] is not a string");
    }
    // Shards live beside the index; a path would let a checkpoint point anywhere on the machine.
    if (f.empty() || f.find('/') != std::string_view::npos || f == "." || f == "..") {
      return Status::invalid_argument(path + ": weight_map['" + std::string(name) + "'] = '" +
                                      std::string(f) +
                                      "' is not a file name in the model directory");
    }
    if (!out.emplace(std::string(name), std::string(f)).second) {
      return Status::invalid_argument(path + ": weight_map lists '" + std::string(name) +
                                      "' twice");
    }
  }
  if (out.empty()) return Status::invalid_argument(path + ": weight_map is empty");
  return out;
}

bool looks_like_shard(const std::string& name) {
  return name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
         name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

}  // namespace

Status Weights::add_file(SafetensorsFile file,
                         const std::unordered_map<std::string, std::string>* weight_map) {
  std::string base = fs::path(file.path()).filename().string();
  for (const Tensor& t : file.tensors()) {
    if (weight_map) {
      auto it = weight_map->find(t.name);
      if (it == weight_map->end() || it->second != base) {
        return Status::corruption(file.path() + ": tensor '" + t.name +
                                  "' is not listed for this shard in " +
                                  std::string(kWeightsIndexFile));
      }
    }
    if (by_name_.count(t.name)) {
      return Status::corruption(file.path() + ": tensor '" + t.name + "' is also in another shard");
    }
  }
  files_.push_back(std::make_unique<SafetensorsFile>(std::move(file)));
  for (const Tensor& t : files_.back()->tensors()) {
    by_name_.emplace(t.name, &t);
    total_bytes_ += t.bytes;
  }
  return Status::ok();
}

Result<Weights> Weights::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return Status::not_found("model directory " + dir + " does not exist");
  Weights w;
  w.dir_ = dir;
  fs::path index_path = fs::path(dir) / kWeightsIndexFile;
  fs::path single_path = fs::path(dir) / kSingleWeightsFile;
  if (fs::exists(index_path, ec)) {
    auto map = read_index(index_path.string());
    if (!map) return map.status();
    std::map<std::string, int> shards;  // sorted: deterministic open order
    for (const auto& [name, file] : *map) shards[file] = 0;
    for (const auto& [file, unused] : shards) {
      auto f = SafetensorsFile::open((fs::path(dir) / file).string());
      if (!f)
        return f.status().with_context(std::string(kWeightsIndexFile) + " names shard " + file);
      MNEMO_RETURN_IF_ERROR(w.add_file(std::move(f).value(), &*map));
    }
    for (const auto& [name, file] : *map) {
      if (!w.by_name_.count(name)) {
        return Status::corruption(index_path.string() + ": tensor '" + name +
                                  "' is listed in shard " + file +
                                  " but that shard does not contain it");
      }
    }
  } else if (fs::exists(single_path, ec)) {
    auto f = SafetensorsFile::open(single_path.string());
    if (!f) return f.status();
    MNEMO_RETURN_IF_ERROR(w.add_file(std::move(f).value(), nullptr));
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (looks_like_shard(entry.path().filename().string())) {
        return Status::not_found("model directory " + dir + " has shards like " +
                                 entry.path().filename().string() + " but no " +
                                 std::string(kWeightsIndexFile));
      }
    }
    return Status::not_found("model directory " + dir + " has no " +
                             std::string(kSingleWeightsFile) + " or " +
                             std::string(kWeightsIndexFile));
  }
  w.sorted_.reserve(w.by_name_.size());
  for (const auto& [name, t] : w.by_name_) w.sorted_.push_back(t);
  std::sort(w.sorted_.begin(), w.sorted_.end(),
            [](const Tensor* a, const Tensor* b) { return a->name < b->name; });
  return w;
}

const Tensor* Weights::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<const Tensor*> Weights::require(std::string_view name, DTypeSet dtypes,
                                       const std::vector<int64_t>& shape) const {
  const Tensor* t = find(name);
  std::string expected = dtypes.to_string() + " " + shape_string(shape);
  if (!t) {
    return Status::not_found(dir_ + ": tensor '" + std::string(name) + "' (" + expected +
                             ") is missing");
  }
  if (!dtypes.contains(t->dtype) || t->shape != shape) {
    return Status::invalid_argument(dir_ + ": tensor '" + std::string(name) + "' should be " +
                                    expected + " but is " + std::string(dtype_name(t->dtype)) +
                                    " " + shape_string(t->shape));
  }
  return t;
}

}  // namespace mnemo::inference
