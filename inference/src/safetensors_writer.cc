// The streaming safetensors writer: header first, then tensor bytes in declaration order.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/safetensors.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_set>

namespace mnemo::inference {

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& other) noexcept {
  *this = std::move(other);
}

SafetensorsWriter& SafetensorsWriter::operator=(SafetensorsWriter&& other) noexcept {
  if (this != &other) {
    if (file_) std::fclose(file_);
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
    tensors_ = std::move(other.tensors_);
    sizes_ = std::move(other.sizes_);
    total_ = other.total_;
    written_ = other.written_;
  }
  return *this;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) {
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

Result<SafetensorsWriter> SafetensorsWriter::create(
    const std::string& path, std::vector<TensorDecl> tensors,
    std::vector<std::pair<std::string, std::string>> metadata) {
  SafetensorsWriter w;
  w.path_ = path;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i) header += ',';
      json::append_string(header, metadata[i].first);
      header += ':';
      json::append_string(header, metadata[i].second);
    }
    header += '}';
  }
  std::unordered_set<std::string_view> names;
  for (const TensorDecl& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      return Status::invalid_argument(path + ": tensor name '" + t.name +
                                      "' is reserved or repeated");
    }
    uint64_t bytes = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0 || __builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes)) {
        return Status::invalid_argument(path + ": tensor '" + t.name + "' has a bad shape " +
                                        shape_string(t.shape));
      }
    }
    if (header.size() > 1) header += ',';
    json::append_string(header, t.name);
    header += ":{\"dtype\":\"";
    header += dtype_name(t.dtype);
    header += "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(w.total_) + "," +
              std::to_string(w.total_ + bytes) + "]}";
    w.sizes_.push_back(static_cast<size_t>(bytes));
    w.total_ += bytes;
  }
  header += '}';
  // Pad so that the data section starts 8-byte aligned in the file (and in a mapping of it).
  while ((8 + header.size()) % 8 != 0) header += ' ';
  w.tensors_ = std::move(tensors);

  w.file_ = std::fopen(path.c_str(), "wb");
  if (!w.file_) return Status::io_error(path + ": cannot create: " + std::strerror(errno));
  std::setvbuf(w.file_, nullptr, _IOFBF, size_t{4} << 20);
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  if (std::fwrite(len, 1, 8, w.file_) != 8 || std::fwrite(header.data(), 1, n, w.file_) != n) {
    return Status::io_error(path + ": write failed: " + std::strerror(errno));
  }
  return w;
}

Status SafetensorsWriter::write(const void* data, size_t size) {
  if (!file_) return Status::internal(path_ + ": write after finish");
  if (size > total_ - written_) {
    return Status::internal(path_ + ": " + std::to_string(written_ + size) +
                            " bytes written, only " + std::to_string(total_) + " declared");
  }
  if (size && std::fwrite(data, 1, size, file_) != size) {
    return Status::io_error(path_ + ": write failed: " + std::strerror(errno));
  }
  written_ += size;
  return Status::ok();
}

Status SafetensorsWriter::finish() {
  if (!file_) return Status::internal(path_ + ": finished twice");
  if (written_ != total_) {
    return Status::internal(path_ + ": " + std::to_string(written_) + " of " +
                            std::to_string(total_) + " declared bytes written");
  }
  int rc = std::fclose(std::exchange(file_, nullptr));
  if (rc != 0) return Status::io_error(path_ + ": close failed: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace mnemo::inference
