#pragma once
// A child process for tests that watch and kill `mnemo` as it runs: stderr lines are read as they
// come, the process can be SIGKILLed at any moment, and its exit status collected.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace mnemo::test {

class Child {
 public:
  // argv[0] is a path; stdout goes to /dev/null unless out_path is given.
  explicit Child(const std::vector<std::string>& argv, const std::string& out_path = "/dev/null") {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(fds[1], 2);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      wait();
    }
    if (fd_ >= 0) close(fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The next stderr line, or nothing at end of stream or after `timeout`.
  std::optional<std::string> line(std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string out = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        all_ += out + "\n";
        return out;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) {
        close(fd_);
        fd_ = -1;
        if (!buffer_.empty()) {
          std::string out = std::move(buffer_);
          buffer_.clear();
          all_ += out;
          return out;
        }
        return std::nullopt;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  // Reads stderr to its end, then waits; returns the exit status (-signal when killed).
  int finish() {
    while (line()) {
    }
    return wait();
  }
  void kill_now() {
    if (pid_ > 0 && !status_) kill(pid_, SIGKILL);
  }
  void signal(int sig) {
    if (pid_ > 0 && !status_) kill(pid_, sig);
  }
  int wait() {
    if (status_) return *status_;
    int raw = 0;
    waitpid(pid_, &raw, 0);
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
    return *status_;
  }
  const std::string& stderr_text() const { return all_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_, all_;
  std::optional<int> status_;
};

}  // namespace mnemo::test
