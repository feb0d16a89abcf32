#pragma once
// A RocksDB file system for crash tests (RocksDB's own FaultInjectionTestFS is the model): it
// counts appends to the write-ahead log and, at a chosen one, writes only part of the data, reports
// the point on a pipe, and SIGKILLs its own process: a kill that lands inside a commit's write, at
// a point the writer itself names.
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace mnemo::test {

// What the writer reports just before it kills itself.
struct KillReport {
  uint32_t append = 0;  // which WAL append (1-based)
  uint32_t wrote = 0;   // bytes of it that reached the file
  uint32_t of = 0;      // bytes it had
};

class KillingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  // kill_at 0: never kill; report_fd: where the KillReport goes.
  KillingFileSystem(uint32_t kill_at, int report_fd)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), kill_at_(kill_at), fd_(report_fd) {}
  const char* Name() const override { return "KillingFileSystem"; }
  uint32_t appends() const { return appends_; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok() && f.size() > 4 && f.compare(f.size() - 4, 4, ".log") == 0)
      *r = std::make_unique<WalFile>(std::move(*r), *this);
    return s;
  }

 private:
  class WalFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    WalFile(std::unique_ptr<rocksdb::FSWritableFile> t, KillingFileSystem& fs)
        : FSWritableFileOwnerWrapper(std::move(t)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      fs_.maybe_kill(*this, data, o, dbg);
      return target()->Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      fs_.maybe_kill(*this, data, o, dbg);
      return target()->Append(data, o, v, dbg);
    }

   private:
    KillingFileSystem& fs_;
  };

  void maybe_kill(WalFile& file, const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                  rocksdb::IODebugContext* dbg) {
    const uint32_t n = ++appends_;
    if (n != kill_at_) return;
    KillReport r{n, static_cast<uint32_t>(data.size() / 2), static_cast<uint32_t>(data.size())};
    // Half of the record reaches the disk (a torn write), then the process dies.
    file.target()->Append(rocksdb::Slice(data.data(), r.wrote), o, dbg);
    file.target()->Sync(o, dbg);
    if (write(fd_, &r, sizeof r) != sizeof r) _exit(3);
    raise(SIGKILL);
  }

  uint32_t kill_at_;
  int fd_;
  std::atomic<uint32_t> appends_{0};
};

}  // namespace mnemo::test
