#pragma once
// safetensors files: a validated, memory-mapped reader (tensor data is never copied) and a
// streaming writer. Format: 8-byte little-endian header length N, N bytes of JSON header, then the
// data section.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mnemo/base/status.h>
#include <mnemo/inference/dtype.h>

namespace mnemo::inference {

// A tensor inside a mapped file. `data` is read-only and not necessarily aligned to the element
// size.
struct Tensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;

  int64_t numel() const;
};

// "[4096, 128]".
std::string shape_string(const std::vector<int64_t>& shape);

// Headers larger than this are refused before anything is allocated (safetensors' own limit).
inline constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates the header: every tensor lies inside the data section, its
  // byte span matches dtype and shape, no two tensors overlap or share a name.
  static Result<SafetensorsFile> open(const std::string& path);
  // Validates an in-memory image; `image` must outlive the result. `name` is used in messages.
  static Result<SafetensorsFile> from_bytes(std::string_view image, std::string name);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // In data-offset order.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find(std::string_view name) const;
  // The "__metadata__" string map, in header order.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status parse(std::string_view image);

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

struct TensorDecl {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

// Writes a file tensor by tensor: the header (offsets of every declared tensor) goes first, then
// each tensor's bytes are streamed in declaration order, in as many write() calls as the caller
// likes.
class SafetensorsWriter {
 public:
  static Result<SafetensorsWriter> create(
      const std::string& path, std::vector<TensorDecl> tensors,
      std::vector<std::pair<std::string, std::string>> metadata = {});

  SafetensorsWriter(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  // Closes without finishing: the file is left incomplete (and removed).
  ~SafetensorsWriter();

  // The next `size` bytes of the data section; an error when more than declared are written.
  Status write(const void* data, size_t size);
  // Checks every declared byte was written and closes the file.
  Status finish();

  const std::vector<TensorDecl>& tensors() const { return tensors_; }
  size_t tensor_bytes(size_t index) const { return sizes_[index]; }
  uint64_t data_bytes() const { return total_; }

 private:
  SafetensorsWriter() = default;

  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<TensorDecl> tensors_;
  std::vector<size_t> sizes_;
  uint64_t total_ = 0;
  uint64_t written_ = 0;
};

}  // namespace mnemo::inference
