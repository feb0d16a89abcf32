#pragma once
#include <string>

#include <mnemo/base/status.h>

namespace mnemo {

// Reads a whole file; the error names the path and the reason.
Result<std::string> read_file(const std::string& path);

}  // namespace mnemo
