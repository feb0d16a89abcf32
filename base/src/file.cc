#include <mnemo/base/file.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mnemo {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::io_error("cannot read " + path);
  return ss.str();
}

}  // namespace mnemo
