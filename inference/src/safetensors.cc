// The safetensors reader: every header field is checked before a byte of tensor data is touched.
#include <mnemo/inference/safetensors.h>

#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace mnemo::inference {
namespace {

// Checked a*b for element and byte counts; false on overflow.
bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_size_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const Tensor* SafetensorsFile::find(std::string_view name) const {
  for (const Tensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::io_error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid_argument(path + ": not a regular file");
  }
  SafetensorsFile file;
  file.path_ = path;
  size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::io_error(path + ": cannot mmap: " + std::strerror(err));
    }
    file.map_ = map;
    file.map_size_ = size;
  }
  ::close(fd);
  std::string_view image(static_cast<const char*>(file.map_), size);
  MNEMO_RETURN_IF_ERROR(file.parse(image));
  return file;
}

Result<SafetensorsFile> SafetensorsFile::from_bytes(std::string_view image, std::string name) {
  SafetensorsFile file;
  file.path_ = std::move(name);
  MNEMO_RETURN_IF_ERROR(file.parse(image));
  return file;
}

Status SafetensorsFile::parse(std::string_view image) {
  auto err = [&](const std::string& what) { return Status::corruption(path_ + ": " + what); };
  if (image.size() < 8) {
    return err("truncated: " + std::to_string(image.size()) +
               " bytes, less than the 8-byte header length");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(image[i]);
  uint64_t available = image.size() - 8;
  if (header_len > kMaxSafetensorsHeader) {
    return err("header length " + std::to_string(header_len) + " exceeds the " +
               std::to_string(kMaxSafetensorsHeader) + "-byte limit");
  }
  if (header_len > available) {
    return err("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(available) + " bytes after the length field)");
  }
  std::string_view header = image.substr(8, header_len);
  const auto* data = reinterpret_cast<const uint8_t*>(image.data()) + 8 + header_len;
  uint64_t data_size = available - header_len;

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  // The header is copied into a padded buffer for simdjson; the tensor data stays in the mapping.
  if (auto e = parser.parse(simdjson::padded_string(header)).get(root)) {
    return err(std::string("header is not valid JSON: ") + simdjson::error_message(e));
  }
  simdjson::dom::object entries;
  if (root.get(entries)) return err("header is not a JSON object");

  std::unordered_set<std::string_view> seen;
  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto [key, value] : entries) {
    if (!seen.insert(key).second)
      return err("'" + std::string(key) + "' appears twice in the header");
    if (key == "__metadata__") {
      simdjson::dom::object meta;
      if (value.get(meta)) return err("__metadata__ is not an object");
      for (auto [mk, mv] : meta) {
        std::string_view s;
        if (mv.get(s)) return err("__metadata__['" + std::string(mk) + "'] is not a string");
        metadata_.emplace_back(std::string(mk), std::string(s));
      }
      continue;
    }
    std::string where = "tensor '" + std::string(key) + "'";
    simdjson::dom::object obj;
    if (value.get(obj)) return err(where + ": entry is not an object");
    std::string_view dtype_str;
    if (obj["dtype"].get(dtype_str)) return err(where + ": missing or non-string 'dtype'");
    auto dtype = dtype_from_name(dtype_str);
    if (!dtype) return err(where + ": unknown dtype '" + std::string(dtype_str) + "'");
    simdjson::dom::array shape_arr;
    if (obj["shape"].get(shape_arr)) return err(where + ": missing or non-array 'shape'");
    Tensor t;
    t.name = std::string(key);
    t.dtype = *dtype;
    uint64_t numel = 1;
    for (simdjson::dom::element d : shape_arr) {
      uint64_t dim;
      if (d.get(dim) || dim > (uint64_t{1} << 62)) {
        return err(where + ": shape entries must be non-negative integers");
      }
      if (mul_overflows(numel, dim, numel))
        return err(where + ": shape " + "element count overflows");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t expected_bytes;
    if (mul_overflows(numel, dtype_size(*dtype), expected_bytes)) {
      return err(where + ": byte size overflows");
    }
    simdjson::dom::array offsets;
    uint64_t begin, end;
    if (obj["data_offsets"].get(offsets) || offsets.size() != 2 || offsets.at(0).get(begin) ||
        offsets.at(1).get(end)) {
      return err(where + ": 'data_offsets' must be [begin, end] non-negative integers");
    }
    if (begin > end) {
      return err(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] end before they begin");
    }
    if (end > data_size) {
      return err(where + ": data_offsets end " + std::to_string(end) +
                 " is past the data section (" + std::to_string(data_size) +
                 " bytes; file truncated or header wrong)");
    }
    if (end - begin != expected_bytes) {
      return err(where + ": " + std::string(dtype_str) + " " + shape_string(t.shape) + " needs " +
                 std::to_string(expected_bytes) + " bytes but data_offsets span " +
                 std::to_string(end - begin));
    }
    t.data = data + begin;
    t.bytes = static_cast<size_t>(expected_bytes);
    spans.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Empty tensors occupy no bytes, so they cannot overlap anything; the rest must not share a byte.
  const Span* furthest = nullptr;
  for (const Span& cur : spans) {
    if (cur.end == cur.begin) continue;
    if (furthest && cur.begin < furthest->end) {
      return err("tensors '" + tensors_[furthest->index].name + "' and '" +
                 tensors_[cur.index].name + "' overlap in the data section");
    }
    if (!furthest || cur.end > furthest->end) furthest = &cur;
  }
  std::vector<Tensor> ordered;
  ordered.reserve(tensors_.size());
  for (const Span& s : spans) ordered.push_back(std::move(tensors_[s.index]));
  tensors_ = std::move(ordered);
  return Status::ok();
}

}  // namespace mnemo::inference
