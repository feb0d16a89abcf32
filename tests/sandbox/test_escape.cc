// The escape suite, file system, network and kernel surface: every attempt must fail, judged from
// the host's side wherever the host can see the outcome.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <errno.h>

#include "sandbox/sandbox_test_util.h"

using namespace mnemo;
using namespace mnemo::test;

TEST_CASE("a file written outside the workspace does not appear on the host") {
  Workspace ws;
  std::string token = unique_token("escape");
  std::string script = "for d in / /tmp /usr /etc /root /dev /proc " +
                       fs::temp_directory_path().string() + "; do echo x > $d/" + token +
                       " 2>/dev/null; done; echo inside > /workspace/ok";
  auto r = sandbox::run(request(ws, {"sh", "-c", script}));
  REQUIRE(r);
  for (const char* dir : {"/", "/tmp", "/usr", "/etc", "/root", "/dev"}) {
    CHECK_FALSE(fs::exists(fs::path(dir) / token));
  }
  CHECK_FALSE(fs::exists(fs::temp_directory_path() / token));
  CHECK(slurp(ws.path / "ok") == "inside\n");
}

TEST_CASE("host files outside the binds are invisible") {
  Workspace ws;
  fs::path store = fs::temp_directory_path() / unique_token("store");
  fs::create_directories(store);
  std::ofstream(store / "CURRENT") << "TOPSECRET-STORE\n";
  std::string script = "for p in " + store.string() +
                       "/CURRENT /etc/shadow /etc/passwd /root /work /home " +
                       "/var /opt /sys /boot; do test -e $p && echo VISIBLE:$p; done; cat " +
                       store.string() + "/CURRENT /etc/shadow 2>/dev/null; ls /";
  auto req = request(ws, {"sh", "-c", script});
  req.policy.read_only_paths.clear();  // the probe's bind would make its directories visible
  auto r = sandbox::run(req);
  fs::remove_all(store);
  REQUIRE(r);
  INFO(r->stdout_data);
  CHECK(r->stdout_data.find("VISIBLE") == std::string::npos);
  CHECK(r->stdout_data.find("TOPSECRET") == std::string::npos);
  CHECK(r->stdout_data.find("root:") == std::string::npos);
}

TEST_CASE("a symlink in the workspace pointing outside gives no access") {
  Workspace ws;
  fs::path secret_dir = fs::temp_directory_path() / unique_token("secret");
  fs::create_directories(secret_dir);
  std::ofstream(secret_dir / "secret.txt") << "TOPSECRET-LINK\n";
  fs::create_symlink(secret_dir / "secret.txt", ws.path / "leak");
  fs::create_directory_symlink(secret_dir, ws.path / "leakdir");
  fs::create_directory_symlink("/root", ws.path / "rootlink");
  auto r = sandbox::run(
      request(ws, {"sh", "-c",
                   "cat /workspace/leak /workspace/leakdir/secret.txt; ls /workspace/rootlink; "
                   "echo overwrite > /workspace/leak"}));
  std::string after = slurp(secret_dir / "secret.txt");
  fs::remove_all(secret_dir);
  REQUIRE(r);
  CHECK(r->stdout_data.find("TOPSECRET") == std::string::npos);
  CHECK(after == "TOPSECRET-LINK\n");
}

TEST_CASE("connecting to a TCP server on the host's 127.0.0.1 fails and only lo exists") {
  int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(server >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(server, 8) == 0);
  socklen_t len = sizeof addr;
  getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  Workspace ws;
  auto r = sandbox::run(probe(ws, {"connect", "127.0.0.1", std::to_string(port)}));
  int accepted = accept(server, nullptr, nullptr);
  int accept_errno = errno;
  close(server);
  REQUIRE(r);
  CHECK(r->exit_status == 1);
  CHECK(field(r->stdout_data, "connect") != "0");
  CHECK(accepted < 0);
  CHECK(accept_errno == EAGAIN);
  CHECK(field(r->stdout_data, "iface") == "lo");
  CHECK(std::count(r->stdout_data.begin(), r->stdout_data.end(), '\n') == 2);  // connect=, iface=lo
}

TEST_CASE("ptrace, mount, unshare, keyctl, bpf and namespace clones fail with EPERM") {
  Workspace ws;
  auto r = sandbox::run(probe(ws, {"syscalls"}));
  REQUIRE(r);
  INFO(r->stdout_data);
  const std::string eperm = std::to_string(EPERM);
  for (const char* name : {"ptrace", "mount", "umount", "pivot_root", "unshare", "setns", "keyctl",
                           "add_key", "bpf", "userfaultfd", "perf_event_open", "fsopen",
                           "clone_newuser", "tiocsti", "tiocsti_high_bits", "tioclinux"}) {
    INFO(name);
    CHECK(field(r->stdout_data, name) == eperm);
  }
  CHECK(field(r->stdout_data, "clone3") == std::to_string(ENOSYS));
  CHECK(field(r->stdout_data, "fork") == "0");  // plain clone still works
  CHECK(field(r->stdout_data, "io_uring_setup") == eperm);
  CHECK(field(r->stdout_data, "personality_read_implies_exec") == eperm);
  CHECK(field(r->stdout_data, "personality_no_randomize") == eperm);
  CHECK(field(r->stdout_data, "personality_query") == "0");
  // Not confined by the network namespace (vsock reaches a VM's hypervisor): refused outright.
  CHECK(field(r->stdout_data, "vsock") == std::to_string(EAFNOSUPPORT));
  CHECK(field(r->stdout_data, "packet") == std::to_string(EAFNOSUPPORT));
  CHECK(field(r->stdout_data, "inet") == "0");
}

TEST_CASE("the sandbox's /proc does not show mnemo's command line or environment") {
  Workspace ws;
  setenv("MNEMO_TEST_SECRET_VALUE", "hunter2", 1);
  const std::string script =
      "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/1/environ 2>/dev/null | tr '\\0' ' '";
  auto r = sandbox::run(request(ws, {"sh", "-c", script}));
  unsetenv("MNEMO_TEST_SECRET_VALUE");
  REQUIRE(r);
  INFO(r->stdout_data);
  // The sandbox's init is a clone of mnemo (here the test binary): its argv and environment are
  // wiped before the command starts.
  CHECK(r->stdout_data.find("test_sandbox") == std::string::npos);
  CHECK(r->stdout_data.find("mnemo-sandbox-init") != std::string::npos);
  CHECK(r->stdout_data.find("hunter2") == std::string::npos);
}

TEST_CASE("the command has no capabilities, no_new_privs and a seccomp filter") {
  Workspace ws;
  auto r = sandbox::run(probe(ws, {"ids"}));
  REQUIRE(r);
  INFO(r->stdout_data);
  CHECK(r->stdout_data.find("CapEff:\t0000000000000000") != std::string::npos);
  CHECK(r->stdout_data.find("CapPrm:\t0000000000000000") != std::string::npos);
  CHECK(r->stdout_data.find("NoNewPrivs:\t1") != std::string::npos);
  CHECK(r->stdout_data.find("Seccomp:\t2") != std::string::npos);
}

TEST_CASE("a setuid binary gains nothing") {
  Workspace ws;
  // A setuid-root copy in the workspace, and the host's own setuid binaries under /usr.
  fs::copy_file(probe_path(), ws.path / "suid_probe");
  REQUIRE(chown((ws.path / "suid_probe").c_str(), 0, 0) == 0);
  REQUIRE(chmod((ws.path / "suid_probe").c_str(), 04755) == 0);
  auto r = sandbox::run(request(ws, {"/workspace/suid_probe", "ids"}));
  REQUIRE(r);
  INFO(r->stdout_data);
  CHECK(field(r->stdout_data, "euid") != "0");
  CHECK(r->stdout_data.find("CapEff:\t0000000000000000") != std::string::npos);
  if (fs::exists("/usr/bin/su")) {
    auto su =
        sandbox::run(request(ws, {"sh", "-c", "su -c 'echo BECAME-ROOT' root </dev/null; id -u"}));
    REQUIRE(su);
    CHECK(su->stdout_data.find("BECAME-ROOT") == std::string::npos);
    CHECK(su->stdout_data != "0\n");
  }
}

TEST_CASE("the runner's binary is not writable through /proc") {
  Workspace ws;
  fs::path self = fs::read_symlink("/proc/self/exe");
  auto before = fs::last_write_time(self);
  auto size = fs::file_size(self);
  auto r = sandbox::run(probe(ws, {"procexe"}));
  REQUIRE(r);
  INFO(r->stdout_data);
  CHECK(r->stdout_data.find("done") != std::string::npos);
  CHECK(r->stdout_data.find("writable") == std::string::npos);
  CHECK(field(r->stdout_data, "init_mem") != "0");
  CHECK(fs::last_write_time(self) == before);
  CHECK(fs::file_size(self) == size);
}
