#pragma once
// Little-endian binary writing and bounds-checked reading for KV state blobs.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::inference {

class BlobWriter {
 public:
  template <typename T>
  void put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_bytes(std::string_view s) { out_.append(s); }
  void put_floats(const std::vector<float>& v) {
    put<uint64_t>(v.size());
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class BlobReader {
 public:
  explicit BlobReader(std::string_view in) : in_(in) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() - at_ < sizeof v) return false;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return true;
  }
  bool get_bytes(size_t n, std::string& out) {
    if (in_.size() - at_ < n) return false;
    out.assign(in_.data() + at_, n);
    at_ += n;
    return true;
  }
  // A float array of at most `max_count` values.
  bool get_floats(std::vector<float>& v, uint64_t max_count) {
    uint64_t n;
    if (!get(n) || n > max_count || (in_.size() - at_) / sizeof(float) < n) return false;
    v.resize(n);
    std::memcpy(v.data(), in_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return true;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

}  // namespace mnemo::inference
