// A helper the escape suite runs INSIDE the sandbox: each mode tries one escape and reports what
// happened on stdout; the tests judge the outcome from the host's side.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/tiocl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

int err_of(long rc) { return rc < 0 ? errno : 0; }

void report(const char* name, long rc) { std::printf("%s=%d\n", name, err_of(rc)); }

// Each must fail with EPERM (clone3: ENOSYS) under the sandbox's seccomp filter.
int syscalls() {
  report("ptrace", ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
  report("mount", mount("none", "/tmp", "tmpfs", 0, nullptr));
  report("umount", umount2("/proc", MNT_DETACH));
  report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
  report("unshare", unshare(CLONE_NEWUSER));
  int ns = open("/proc/self/ns/user", O_RDONLY);
  report("setns", setns(ns, 0));
  report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1));
  report("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3));
  report("bpf", syscall(SYS_bpf, 0, nullptr, 0));
  report("userfaultfd", syscall(SYS_userfaultfd, 0));
  report("perf_event_open", syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
  report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  report("clone_newuser", pid);
  clone_args args{};
  args.exit_signal = SIGCHLD;
  long pid3 = syscall(SYS_clone3, &args, sizeof args);
  if (pid3 == 0) _exit(0);
  if (pid3 > 0) waitpid(static_cast<pid_t>(pid3), nullptr, 0);
  report("clone3", pid3);
  pid_t child = fork();
  if (child == 0) _exit(0);
  if (child > 0) waitpid(child, nullptr, 0);
  report("fork", child);
  char c = 'X';
  report("tiocsti", ioctl(0, TIOCSTI, &c));
  report("tiocsti_high_bits", syscall(SYS_ioctl, 0, TIOCSTI | (1ul << 32), &c));
  char sel = TIOCL_GETSHIFTSTATE;
  report("tioclinux", ioctl(0, TIOCLINUX, &sel));
  char params[120] = {};  // struct io_uring_params
  report("io_uring_setup", syscall(SYS_io_uring_setup, 4, params));
  report("vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
  report("packet", socket(17 /* AF_PACKET */, SOCK_RAW, 0));
  report("personality_read_implies_exec", syscall(SYS_personality, 0x0400000 /* READ_IMPLIES_EXEC */));
  report("personality_no_randomize", syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
  long query = syscall(SYS_personality, 0xffffffffUL);
  std::printf("personality_query=%d\n", query < 0 ? errno : 0);
  report("inet", socket(AF_INET, SOCK_STREAM, 0));  // still allowed
  return 0;
}

// Pushes a character into every descriptor and /dev/tty; prints what the kernel said.
int tiocsti() {
  int injected = 0;
  for (int fd = 0; fd < 256; ++fd) {
    char c = 'X';
    if (ioctl(fd, TIOCSTI, &c) == 0) ++injected;
  }
  int tty = open("/dev/tty", O_RDWR);
  std::printf("dev_tty=%d\n", tty >= 0 ? 0 : errno);
  char c = 'X';
  report("tiocsti_fd0", ioctl(0, TIOCSTI, &c));
  std::printf("injected=%d\n", injected);
  return injected ? 0 : 1;
}

int connect_to(const char* host, int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host, &addr.sin_addr);
  int rc = connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  std::printf("connect=%d\n", err_of(rc));
  struct if_nameindex* names = if_nameindex();
  for (struct if_nameindex* i = names; i && i->if_index; ++i) std::printf("iface=%s\n", i->if_name);
  return rc == 0 ? 0 : 1;
}

// Every process forks forever; only the pids limit (and the timeout) stops it.
int forkbomb() {
  for (;;) {
    if (fork() < 0) usleep(1000);
  }
}

int membomb() {
  std::vector<char*> blocks;
  for (int mib = 0; mib < 1024; mib += 16) {
    char* p = static_cast<char*>(std::malloc(16 << 20));
    if (!p) {
      std::printf("refused_at_mib=%d\n", mib);
      return 3;
    }
    std::memset(p, 1, 16 << 20);
    blocks.push_back(p);
  }
  std::printf("escaped\n");
  return 0;
}

int spin(int children) {
  for (int i = 0; i < children; ++i) {
    if (fork() == 0) break;
  }
  volatile unsigned long counter = 0;
  for (;;) counter = counter + 1;
}

// Leaves a detached grandchild in a new session behind and exits at once.
int daemonize(int seconds) {
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    if (fork() == 0) {
      sleep(static_cast<unsigned>(seconds));
      _exit(0);
    }
    _exit(0);
  }
  waitpid(pid, nullptr, 0);
  std::printf("daemonized\n");
  return 0;
}

// Tries to open every visible process's executable for writing (mnemo's own is /proc/1/exe).
int procexe() {
  for (int pid = 1; pid < 64; ++pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/exe";
    int fd = open(path.c_str(), O_WRONLY | O_APPEND);
    if (fd >= 0) std::printf("writable=%s\n", path.c_str());
    int pfd = open(path.c_str(), O_PATH);
    if (pfd >= 0) {
      std::string via = "/proc/self/fd/" + std::to_string(pfd);
      if (open(via.c_str(), O_WRONLY | O_APPEND) >= 0)
        std::printf("writable_via_path=%s\n", path.c_str());
    }
  }
  char buf[256] = {};
  std::printf("readlink_init=%d\n", err_of(readlink("/proc/1/exe", buf, sizeof buf - 1)));
  std::printf("init_mem=%d\n", err_of(open("/proc/1/mem", O_RDWR)));
  std::printf("done\n");
  return 0;
}

int ids() {
  std::ifstream status("/proc/self/status");
  std::string line;
  std::printf("euid=%d\n", geteuid());
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0 || line.rfind("CapPrm:", 0) == 0 ||
        line.rfind("NoNewPrivs:", 0) == 0 || line.rfind("Seccomp:", 0) == 0) {
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "syscalls") return syscalls();
  if (mode == "tiocsti") return tiocsti();
  if (mode == "connect" && argc > 3) return connect_to(argv[2], std::atoi(argv[3]));
  if (mode == "forkbomb") return forkbomb();
  if (mode == "membomb") return membomb();
  if (mode == "spin") return spin(4);
  if (mode == "daemon") return daemonize(30);
  if (mode == "sleep" && argc > 3)
    return static_cast<int>(sleep(static_cast<unsigned>(std::atoi(argv[3]))));
  if (mode == "procexe") return procexe();
  if (mode == "ids") return ids();
  std::fprintf(stderr, "sandbox_probe: unknown mode '%s'\n", mode.c_str());
  return 2;
}
