#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include <mnemo/base/status.h>

namespace mnemo {

// Reads a whole file; the error names the path and the reason. A file (or a stream such as
// /dev/zero) longer than max_bytes is refused after reading at most max_bytes + 1 bytes.
Result<std::string> read_file(const std::string& path,
                              uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

}  // namespace mnemo
