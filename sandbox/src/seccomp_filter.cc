#include "seccomp_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>

namespace mnemo::sandbox::internal {
namespace {

// Syscalls that could reach the kernel's attack surface or leave the sandbox: EPERM.
constexpr const char* kDenied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    // io_uring performs I/O outside the filter's sight and is a large attack surface.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
};

// READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT.
constexpr scmp_datum_t kDeniedPersonaFlags[] = {0x0400000, 0x0040000, 0x0100000, 0x0200000};

// Address families a sandboxed socket may not use: AF_VSOCK is not confined by the network
// namespace (on a VM the hypervisor's CID answers), the rest reach kernel subsystems or the host.
constexpr int kDeniedFamilies[] = {AF_VSOCK, AF_PACKET, AF_KEY, AF_BLUETOOTH, AF_ALG, AF_TIPC,
                                   AF_RDS, AF_XDP};

// CLONE_NEWTIME shares its bit with the exit signal in clone(), so only unshare (denied) covers it.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,    CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER,  CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP};

Status build(std::vector<sock_filter>& out) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return Status::internal("seccomp_init failed");
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  auto fail = [](const std::string& what, int rc) {
    return Status::internal("seccomp: " + what + ": " + std::strerror(-rc));
  };
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a syscall on this architecture
    if (int rc = seccomp_rule_add(ctx, eperm, nr, 0); rc < 0) return fail(name, rc);
  }
  for (unsigned long flag : kNamespaceFlags) {
    int rc =
        seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (rc < 0) return fail("clone rule", rc);
  }
  for (int family : kDeniedFamilies) {
    for (int call : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), call, 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
      if (rc < 0) return fail("socket rule", rc);
    }
  }
  // personality: flags that weaken the command's own memory protections are refused; the query
  // (0xffffffff, all bits set) still answers. One comparison per rule (libseccomp's limit): a flag
  // set with bit 31 clear, or bit 31 set with any other bit clear (no real persona has bit 31).
  for (scmp_datum_t flag : kDeniedPersonaFlags) {
    int rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flag | 0x80000000u, flag));
    if (rc < 0) return fail("personality rule", rc);
  }
  for (int bit = 0; bit < 31; ++bit) {
    const scmp_datum_t b = scmp_datum_t{1} << bit;
    int rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, b | 0x80000000u, 0x80000000u));
    if (rc < 0) return fail("personality rule", rc);
  }
  // libc falls back to clone(), whose flags the filter can read; clone3 passes them in memory.
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc < 0) {
    return fail("clone3", rc);
  }
  // The kernel compares only the low 32 bits of an ioctl request, so must the filter.
  for (unsigned long request :
       {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
    int rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFul, request));
    if (rc < 0) return fail("ioctl rule", rc);
  }
  int fd = memfd_create("mnemo-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Status::internal(std::string("memfd_create: ") + std::strerror(errno));
  if (int rc = seccomp_export_bpf(ctx, fd); rc < 0) {
    ::close(fd);
    return fail("export", rc);
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    ::close(fd);
    return Status::internal("seccomp: exported program has a bad size");
  }
  out.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  ssize_t n = pread(fd, out.data(), static_cast<size_t>(size), 0);
  ::close(fd);
  if (n != size) return Status::internal("seccomp: reading the exported program failed");
  return Status::ok();
}

}  // namespace

Result<const std::vector<sock_filter>*> seccomp_program() {
  static std::once_flag once;
  static std::vector<sock_filter> program;
  static Status status;
  std::call_once(once, [] { status = build(program); });
  if (!status) return status;
  return &program;
}

}  // namespace mnemo::sandbox::internal
