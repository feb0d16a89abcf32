#pragma once
// Little-endian binary writing and bounds-checked reading, for the engine's KV blobs and the store's
// records; big-endian integers for keys, whose byte order RocksDB sorts by.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

class BinaryWriter {
 public:
  template <typename T>
  BinaryWriter& put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  BinaryWriter& put_raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  // Length-prefixed.
  BinaryWriter& put_string(std::string_view s) {
    put<uint64_t>(s.size());
    return put_raw(s);
  }
  BinaryWriter& put_floats(const std::vector<float>& v) {
    put<uint64_t>(v.size());
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    return *this;
  }
  std::string& str() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Every get returns false, consuming nothing useful, when the input is too short.
class BinaryReader {
 public:
  explicit BinaryReader(std::string_view in) : in_(in) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() - at_ < sizeof v) return false;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return true;
  }
  bool get_raw(size_t n, std::string_view& out) {
    if (in_.size() - at_ < n) return false;
    out = in_.substr(at_, n);
    at_ += n;
    return true;
  }
  bool get_string(std::string_view& out) {
    uint64_t n = 0;
    return get(n) && n <= in_.size() && get_raw(static_cast<size_t>(n), out);
  }
  // A length-prefixed float array of at most `max_count` values.
  bool get_floats(std::vector<float>& v, uint64_t max_count) {
    uint64_t n;
    if (!get(n) || n > max_count || (in_.size() - at_) / sizeof(float) < n) return false;
    v.resize(n);
    std::memcpy(v.data(), in_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return true;
  }
  size_t offset() const { return at_; }
  bool done() const { return at_ == in_.size(); }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

inline void put_be64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline uint64_t get_be64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

}  // namespace mnemo
