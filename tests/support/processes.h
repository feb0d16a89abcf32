#pragma once
// Host processes, found by their command line (/proc/PID/cmdline: argv joined by NULs; zombies
// have none, so they never count).
#include <dirent.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace mnemo::test {

// Processes whose command line satisfies `match`; -1 when /proc cannot be read.
inline int count_processes_if(const std::function<bool(const std::string& cmdline)>& match) {
  int count = 0;
  DIR* d = opendir("/proc");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (match(ss.str())) ++count;
  }
  closedir(d);
  return count;
}

// Processes whose command line contains `token` (arguments joined by spaces).
inline int count_processes(const std::string& token) {
  return count_processes_if([&](std::string cmdline) {
    for (char& c : cmdline) c = c ? c : ' ';
    return cmdline.find(token) != std::string::npos;
  });
}

// Processes whose argv[0] is `program` and whose command line holds `token`: the sandboxed command
// itself, not mnemo (whose own argv names the same program and token).
inline int count_running(const std::string& program, const std::string& token) {
  return count_processes_if([&](const std::string& cmdline) {
    return cmdline.substr(0, cmdline.find('\0')) == program &&
           cmdline.find(token) != std::string::npos;
  });
}

// Processes whose whole command line is exactly `argv` (the command itself, not a shell naming it).
inline int count_exact(const std::vector<std::string>& argv) {
  std::string want;
  for (const std::string& a : argv) want += a + '\0';
  return count_processes_if([&](const std::string& cmdline) { return cmdline == want; });
}

}  // namespace mnemo::test
