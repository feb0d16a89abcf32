#include <mnemo/sandbox/runner.h>
#include <mnemo/sandbox/workspace.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <memory>
#include <optional>

#include "cgroup.h"
#include "child.h"
#include "mount_plan.h"
#include "seccomp_filter.h"

namespace mnemo::sandbox {
namespace {

namespace asio = boost::asio;
using internal::ChildPlan;
using Clock = std::chrono::steady_clock;

constexpr const char* kSandboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr size_t kReadChunk = 64 * 1024;
// After the command's init exits every sandboxed process is gone; without isolation, stragglers
// holding the pipes get this long before we stop reading.
constexpr auto kDrainGrace = std::chrono::milliseconds(200);

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int release() { return std::exchange(fd, -1); }
};

struct Pipe {
  Fd read, write;
};

Status make_pipe(Pipe& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return Status::io_error(std::string("pipe2: ") + std::strerror(errno));
  p.read = Fd(fds[0]);
  p.write = Fd(fds[1]);
  return Status::ok();
}

Status write_file(const std::string& path, const std::string& text) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.fd < 0 || write(fd.fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return Status::io_error("sandbox: writing " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = getenv(name);
  return std::string(name) + "=" + (v && *v ? v : fallback);
}

std::vector<std::string> exec_candidates(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  std::vector<std::string> out;
  std::string path = kSandboxPath;
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(path.substr(start, end - start) + "/" + argv0);
    start = end + 1;
  }
  return out;
}

rlimit limit_of(uint64_t soft, uint64_t hard) { return rlimit{soft, hard}; }

// Fields 48-51 of /proc/self/stat: where our argv and environment lie in memory.
void read_arg_area(ChildPlan& plan) {
  std::ifstream f("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  uint64_t v[4] = {};
  for (int i = 3; i <= 51 && rest >> field; ++i) {
    if (i >= 48) v[i - 48] = std::strtoull(field.c_str(), nullptr, 10);
  }
  plan.arg_start = v[0];
  plan.arg_end = v[1];
  plan.env_start = v[2];
  plan.env_end = v[3];
}

class Execution : public std::enable_shared_from_this<Execution> {
 public:
  Execution(asio::any_io_executor executor, ExecRequest request, Runner::Handler done)
      : strand_(asio::make_strand(executor)),
        request_(std::move(request)),
        done_(std::move(done)),
        pidfd_(strand_),
        out_(strand_),
        err_(strand_),
        timer_(strand_),
        drain_timer_(strand_) {}

  void start() {
    Status st = spawn();
    if (!st) {
      complete(std::move(st));
      return;
    }
    auto self = shared_from_this();
    timer_.expires_after(request_.policy.limits.timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (!ec) self->on_timeout();
    });
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self](boost::system::error_code ec) { self->on_exit(ec); });
    read_more(out_, OutputStream::kStdout);
    read_more(err_, OutputStream::kStderr);
  }

 private:
  Status validate() {
    const Policy& p = request_.policy;
    if (request_.argv.empty() || request_.argv[0].empty()) {
      return Status::invalid_argument("sandbox: no command to run");
    }
    if (p.limits.timeout.count() <= 0)
      return Status::invalid_argument("sandbox: the timeout must be positive");
    if (p.limits.pids == 0 || p.limits.memory_bytes == 0 || p.limits.open_files == 0) {
      return Status::invalid_argument("sandbox: limits must be positive");
    }
    if (p.workspace.empty())
      return Status::invalid_argument("sandbox: no workspace directory given");
    char buf[PATH_MAX];
    if (!realpath(p.workspace.c_str(), buf)) {
      return Status::not_found("sandbox: workspace '" + p.workspace + "': " + std::strerror(errno));
    }
    workspace_ = buf;
    struct stat st {};
    if (stat(workspace_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::invalid_argument("sandbox: workspace '" + p.workspace +
                                      "' is not a directory");
    }
    return check_workspace_path(workspace_);
  }

  Status build_plan(ChildPlan& plan) {
    const Policy& p = request_.policy;
    const Limits& lim = p.limits;
    plan.mode = p.mode;
    const bool isolated = p.mode == SandboxMode::kIsolated;
    if (isolated) {
      auto mounts = internal::build_mount_plan(p, workspace_, effective_sandbox_uid(p.sandbox_uid));
      if (!mounts) return mounts.status();
      plan.mounts = std::move(*mounts);
      for (const internal::MountOp& op : plan.mounts) {
        if (op.tree_fd >= 0) trees_.emplace_back(op.tree_fd);
      }
    }
    plan.workdir = isolated ? "/workspace" : workspace_;
    plan.drop_groups = isolated && geteuid() == 0;
    plan.exec_candidates = exec_candidates(request_.argv[0]);
    for (std::string& arg : request_.argv) plan.argv.push_back(arg.data());
    plan.argv.push_back(nullptr);
    plan.env_storage = {std::string("PATH=") + kSandboxPath, "HOME=" + plan.workdir,
                        env_or("LANG", "C.UTF-8"), env_or("TERM", "dumb")};
    for (std::string& e : plan.env_storage) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);
    uint64_t cpu = static_cast<uint64_t>(lim.cpu.count());
    plan.rlimits = {{RLIMIT_CPU, limit_of(cpu, cpu + 1)},
                    {RLIMIT_FSIZE, limit_of(lim.file_size_bytes, lim.file_size_bytes)},
                    {RLIMIT_NOFILE, limit_of(lim.open_files, lim.open_files)},
                    {RLIMIT_CORE, limit_of(0, 0)}};
    // Virtual reservations are not memory: with a cgroup enforcing memory, RLIMIT_AS stays off so
    // runtimes that reserve large address ranges (Go, the JVM) still work.
    if (!cgroup_) plan.rlimits.push_back({RLIMIT_AS, limit_of(lim.memory_bytes, lim.memory_bytes)});
    // Counted per (user namespace, uid), so this bounds this sandbox alone; init is one of them.
    if (isolated || !cgroup_) plan.rlimits.push_back({RLIMIT_NPROC, limit_of(lim.pids, lim.pids)});
    auto filter = internal::seccomp_program();
    if (!filter) return filter.status();
    plan.filter = (*filter)->data();
    plan.filter_len = static_cast<unsigned short>((*filter)->size());
    std::ifstream last("/proc/sys/kernel/cap_last_cap");
    if (!(last >> plan.cap_last)) plan.cap_last = 63;
    read_arg_area(plan);
    return Status::ok();
  }

  Status map_ids(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    const uid_t host_uid = effective_sandbox_uid(request_.policy.sandbox_uid);
    const gid_t host_gid = geteuid() == 0 ? static_cast<gid_t>(host_uid) : getegid();
    if (geteuid() != 0) MNEMO_RETURN_IF_ERROR(write_file(proc + "/setgroups", "deny"));
    MNEMO_RETURN_IF_ERROR(write_file(proc + "/uid_map", std::to_string(internal::kInnerUid) + " " +
                                                            std::to_string(host_uid) + " 1\n"));
    return write_file(proc + "/gid_map", std::to_string(internal::kInnerGid) + " " +
                                             std::to_string(host_gid) + " 1\n");
  }

  Status spawn() {
    MNEMO_RETURN_IF_ERROR(validate());
    auto cg = internal::Cgroup::create(request_.policy.limits);
    if (!cg) return cg.status();
    cgroup_ = std::move(*cg);
    ChildPlan plan;
    MNEMO_RETURN_IF_ERROR(build_plan(plan));
    Pipe sync, error, status, out, err;
    for (Pipe* p : {&sync, &error, &status, &out, &err}) MNEMO_RETURN_IF_ERROR(make_pipe(*p));
    plan.sync_fd = sync.read.fd;
    plan.sync_write_fd = sync.write.fd;
    plan.error_fd = error.write.fd;
    plan.status_fd = status.write.fd;
    plan.stdout_fd = out.write.fd;
    plan.stderr_fd = err.write.fd;
    const bool isolated = request_.policy.mode == SandboxMode::kIsolated;
    unsigned long flags = CLONE_PIDFD | SIGCHLD;
    if (isolated) {
      flags |= CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
               CLONE_NEWUTS | CLONE_NEWCGROUP;
    } else {
      warning_ =
          "the command ran WITHOUT isolation (sandbox mode none): it can read and write the host";
    }
    start_time_ = Clock::now();
    int pidfd = -1;
    // Raw clone: fork-like (no new stack) and able to return a pidfd.
    long pid = syscall(SYS_clone, flags, nullptr, &pidfd, nullptr, nullptr);
    if (pid == 0) internal::child_main(plan);
    trees_.clear();  // the child has its own copies
    if (pid < 0) {
      int e = errno;
      if (isolated && (e == EPERM || e == EINVAL || e == ENOSPC || e == EUSERS)) {
        return Status::unsupported(std::string("sandbox: user namespaces are unavailable (") +
                                   std::strerror(e) +
                                   "); refusing to run the command unsandboxed (a job may ask for "
                                   "sandbox: {mode: none})");
      }
      return Status::internal(std::string("sandbox: clone: ") + std::strerror(e));
    }
    pid_ = static_cast<pid_t>(pid);
    pidfd_.assign(pidfd);
    sync_write_ = std::move(sync.write);
    error_read_ = std::move(error.read);
    status_read_ = std::move(status.read);
    fcntl(error_read_.fd, F_SETFL, O_NONBLOCK);
    fcntl(status_read_.fd, F_SETFL, O_NONBLOCK);
    out_.assign(out.read.release());
    err_.assign(err.read.release());
    Status st = isolated ? map_ids(pid_) : Status::ok();
    if (st && cgroup_) st = cgroup_->attach(pid_);
    if (st && write(sync_write_.fd, "g", 1) != 1)
      st = Status::internal("sandbox: releasing the child failed");
    if (!st) {
      kill_init();
      siginfo_t info{};
      waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.native_handle(), &info, WEXITED);
      return st;
    }
    return Status::ok();
  }

  // Killing the sandbox's init makes the kernel kill every process in its PID namespace.
  void kill_init() { syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), SIGKILL, nullptr, 0); }

  void read_more(asio::posix::stream_descriptor& d, OutputStream which) {
    auto self = shared_from_this();
    d.async_read_some(asio::buffer(buf_for(which)),
                      [self, &d, which](boost::system::error_code ec, size_t n) {
                        if (n > 0) self->keep(which, n);
                        if (ec) {
                          self->stream_done(which);
                          return;
                        }
                        self->read_more(d, which);
                      });
  }

  std::array<char, kReadChunk>& buf_for(OutputStream which) {
    return which == OutputStream::kStdout ? out_buf_ : err_buf_;
  }

  void keep(OutputStream which, size_t n) {
    const bool is_out = which == OutputStream::kStdout;
    std::string& data = is_out ? result_.stdout_data : result_.stderr_data;
    const size_t cap =
        is_out ? request_.policy.limits.stdout_cap : request_.policy.limits.stderr_cap;
    size_t room = cap > data.size() ? cap - data.size() : 0;
    size_t take = std::min(room, n);
    if (take < n) (is_out ? result_.stdout_truncated : result_.stderr_truncated) = true;
    if (take == 0) return;
    data.append(buf_for(which).data(), take);
    if (request_.on_output)
      request_.on_output(which, std::string_view(data).substr(data.size() - take));
  }

  void stream_done(OutputStream which) {
    (which == OutputStream::kStdout ? out_done_ : err_done_) = true;
    maybe_finish();
  }

  void on_timeout() {
    if (exited_) return;
    timed_out_ = true;
    kill_init();
    if (request_.policy.mode == SandboxMode::kNone) kill(-pid_, SIGKILL);
  }

  void on_exit(boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    siginfo_t info{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.native_handle(), &info, WEXITED) == 0) {
      init_info_ = info;
    }
    exited_ = true;
    result_.wall = Clock::now() - start_time_;
    timer_.cancel();
    if (request_.policy.mode == SandboxMode::kNone) kill(-pid_, SIGKILL);
    auto self = shared_from_this();
    drain_timer_.expires_after(kDrainGrace);
    drain_timer_.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      boost::system::error_code ignored;
      self->out_.close(ignored);
      self->err_.close(ignored);
    });
    maybe_finish();
  }

  void maybe_finish() {
    if (!exited_ || !out_done_ || !err_done_ || finished_) return;
    finished_ = true;
    drain_timer_.cancel();
    complete(outcome());
  }

  Result<ExecResult> outcome() {
    internal::SetupError setup{};
    if (read(error_read_.fd, &setup, sizeof setup) == static_cast<ssize_t>(sizeof setup)) {
      setup.stage[sizeof setup.stage - 1] = '\0';
      return Status::internal(std::string("sandbox setup failed: ") + setup.stage + ": " +
                              std::strerror(setup.error));
    }
    std::optional<int> status;
    int raw = 0;
    if (request_.policy.mode == SandboxMode::kIsolated) {
      if (read(status_read_.fd, &raw, sizeof raw) == static_cast<ssize_t>(sizeof raw)) status = raw;
    } else if (init_info_) {
      raw = init_info_->si_code == CLD_EXITED ? W_EXITCODE(init_info_->si_status, 0)
                                              : init_info_->si_status;
      status = raw;
    }
    ExecResult& r = result_;
    r.warning = warning_;
    const bool oom = cgroup_ && cgroup_->oom_killed();
    if (timed_out_) {
      r.reason = ExitReason::kTimeout;
      r.exit_status = 124;
    } else if (!status) {
      // Init itself died without reporting: killed from outside, or by the memory limit.
      if (init_info_ && init_info_->si_code == CLD_EXITED &&
          init_info_->si_status == internal::kSetupFailedExit) {
        return Status::internal("sandbox setup failed before the command started");
      }
      r.reason = oom ? ExitReason::kMemoryLimit : ExitReason::kSignaled;
      r.signal = SIGKILL;
      r.exit_status = oom ? 137 : 128 + SIGKILL;
    } else if (WIFEXITED(*status)) {
      r.reason = ExitReason::kExited;
      r.exit_status = WEXITSTATUS(*status);
    } else {
      r.signal = WTERMSIG(*status);
      r.exit_status = 128 + r.signal;
      r.reason = ExitReason::kSignaled;
      if (r.signal == SIGKILL && oom) r.reason = ExitReason::kMemoryLimit;
      if (r.signal == SIGXCPU) r.reason = ExitReason::kCpuLimit;
      if (r.reason != ExitReason::kSignaled) r.exit_status = 137;
    }
    return std::move(r);
  }

  void complete(Result<ExecResult> result) {
    cgroup_.reset();
    sync_write_.reset();
    asio::post(strand_, [done = std::move(done_), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  asio::strand<asio::any_io_executor> strand_;
  ExecRequest request_;
  Runner::Handler done_;
  std::string workspace_;
  std::string warning_;
  std::unique_ptr<internal::Cgroup> cgroup_;
  pid_t pid_ = -1;
  asio::posix::stream_descriptor pidfd_, out_, err_;
  asio::steady_timer timer_, drain_timer_;
  Fd sync_write_, error_read_, status_read_;
  std::vector<Fd> trees_;  // detached mount trees for the child (closed once it has them)
  std::array<char, kReadChunk> out_buf_{}, err_buf_{};
  Clock::time_point start_time_;
  std::optional<siginfo_t> init_info_;
  ExecResult result_;
  bool exited_ = false, out_done_ = false, err_done_ = false, timed_out_ = false, finished_ = false;
};

}  // namespace

void Runner::async_run(ExecRequest request, Handler done) {
  std::make_shared<Execution>(executor_, std::move(request), std::move(done))->start();
}

Result<ExecResult> run(ExecRequest request) {
  asio::io_context io;
  std::optional<Result<ExecResult>> out;
  Runner(io.get_executor()).async_run(std::move(request), [&out](Result<ExecResult> r) {
    out = std::move(r);
  });
  io.run();
  if (!out) return Status::internal("sandbox: the runner stopped without a result");
  return std::move(*out);
}

}  // namespace mnemo::sandbox
