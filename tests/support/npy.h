#pragma once
// Reads little-endian float32 .npy arrays (C order), the format of the golden reference outputs.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnemo::test {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
  const float* row(int64_t i) const { return data.data() + i * (static_cast<int64_t>(data.size()) / shape[0]); }
};

inline NpyArray load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string buf = ss.str();
  if (buf.size() < 10 || buf.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error(path + ": not .npy");
  size_t header_len, offset;
  if (buf[6] == 1) {
    header_len = static_cast<uint8_t>(buf[8]) | (static_cast<uint8_t>(buf[9]) << 8);
    offset = 10;
  } else {
    header_len = static_cast<uint8_t>(buf[8]) | (static_cast<uint8_t>(buf[9]) << 8) |
                 (static_cast<size_t>(static_cast<uint8_t>(buf[10])) << 16);
    offset = 12;
  }
  std::string header = buf.substr(offset, header_len);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path + ": expected little-endian float32 in C order");
  }
  NpyArray a;
  size_t lp = header.find('(', header.find("'shape'")), rp = header.find(')', lp);
  std::stringstream dims(header.substr(lp + 1, rp - lp - 1));
  std::string item;
  int64_t count = 1;
  while (std::getline(dims, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    a.shape.push_back(std::stoll(item));
    count *= a.shape.back();
  }
  a.data.resize(static_cast<size_t>(count));
  if (buf.size() < offset + header_len + count * 4) throw std::runtime_error(path + ": truncated");
  std::memcpy(a.data.data(), buf.data() + offset + header_len, static_cast<size_t>(count) * 4);
  return a;
}

}  // namespace mnemo::test
