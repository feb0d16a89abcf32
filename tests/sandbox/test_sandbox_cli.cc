// `mnemo sandbox exec` and `mnemo sandbox info` as a user runs them: statuses, a terminal, and the
// sandbox dying with mnemo.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <catch2/catch.hpp>

#include "sandbox/sandbox_test_util.h"
#include "support/run_cli.h"

using namespace mnemo;
using namespace mnemo::test;

TEST_CASE("sandbox exec exits with the command's status, 124 on timeout and 137 on a limit") {
  auto ok = run_cli("sandbox exec -- sh -c 'echo hello; exit 5'");
  CHECK(ok.status == 5);
  CHECK(ok.out == "hello\n");
  auto slow = run_cli("sandbox exec --timeout 300ms -- sleep 5");
  CHECK(slow.status == 124);
  CHECK(slow.err.find("timed out after 300ms") != std::string::npos);
  auto cpu = run_cli("sandbox exec --cpu 1s -- sh -c 'while :; do :; done'");
  CHECK(cpu.status == 137);
  CHECK(cpu.err.find("CPU time limit") != std::string::npos);
}

TEST_CASE("sandbox exec rejects a malformed limit naming the option") {
  auto r = run_cli("sandbox exec --memory lots -- true");
  CHECK(r.status == 1);
  CHECK(r.err.find("--memory") != std::string::npos);
}

TEST_CASE("sandbox info reports namespaces, seccomp and the cgroup mode") {
  auto r = run_cli("sandbox info");
  CHECK(r.status == 0);
  CHECK(r.out.find("user namespaces: yes") != std::string::npos);
  CHECK(r.out.find("seccomp filter: yes") != std::string::npos);
  CHECK(r.out.find("cgroup: ") != std::string::npos);
}

TEST_CASE("TIOCSTI injection fails even when mnemo's own stdin is a terminal") {
  int master = -1, slave = -1;
  REQUIRE(openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  termios raw{};
  tcgetattr(slave, &raw);
  cfmakeraw(&raw);
  tcsetattr(slave, TCSANOW, &raw);
  std::string probe_bin = probe_path();
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    execl(MNEMO_BINARY, "mnemo", "sandbox", "exec", "--ro", probe_bin.c_str(), "--",
          probe_bin.c_str(), "tiocsti", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string shown;
  int status = 0;
  for (;;) {
    char buf[512];
    pollfd pfd{master, POLLIN, 0};
    if (poll(&pfd, 1, 100) > 0) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0) shown.append(buf, static_cast<size_t>(n));
    }
    if (waitpid(pid, &status, WNOHANG) == pid) break;
  }
  // Whatever TIOCSTI pushed would now sit in the terminal's input queue, readable on the slave.
  fcntl(slave, F_SETFL, O_NONBLOCK);
  char c;
  ssize_t injected = read(slave, &c, 1);
  close(master);
  close(slave);
  INFO(shown);
  CHECK(injected <= 0);
  CHECK(shown.find("injected=0") != std::string::npos);
  CHECK(shown.find("tiocsti_fd0=" + std::to_string(EPERM)) != std::string::npos);
  CHECK(WIFEXITED(status));
}

TEST_CASE("killing mnemo kills the sandbox") {
  std::string token = unique_token("orphan");
  std::string probe_bin = probe_path();
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(MNEMO_BINARY, "mnemo", "sandbox", "exec", "--ro", probe_bin.c_str(), "--",
          probe_bin.c_str(), "sleep", token.c_str(), "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  // The sandboxed probe itself runs (not just mnemo, whose argv holds the same token).
  REQUIRE(wait_until([&] { return count_running(probe_bin, token) == 1; },
                     std::chrono::seconds(20)));
  REQUIRE(waitpid(pid, nullptr, WNOHANG) == 0);  // mnemo still waits for it
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  CHECK(wait_until([&] { return count_processes(token) == 0; }, std::chrono::seconds(10)));
}
