#include <mnemo/base/file.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace mnemo {

Result<std::string> read_file(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[64 * 1024];
  while (in) {
    in.read(buf, sizeof buf);
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
      return Status::invalid_argument(path + " is larger than " + std::to_string(max_bytes) +
                                      " bytes");
    }
    out.append(buf, n);
  }
  if (in.bad()) return Status::io_error("cannot read " + path);
  return out;
}

}  // namespace mnemo
