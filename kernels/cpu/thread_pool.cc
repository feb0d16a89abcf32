#include <mnemo/kernels/thread_pool.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace mnemo::kernels {
namespace {

// True on a thread while it runs ranges of a parallel region: a nested parallel_for runs inline.
thread_local bool t_in_region = false;

void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// One parallel region, on the caller's stack. Workers claim ranges from it only while they are counted
// in `inside`, and the caller does not return until every range is done and no worker is inside.
struct Region {
  const std::function<void(int64_t)>* task = nullptr;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> pending{0};
  std::atomic<int> inside{0};
};

class Pool {
 public:
  // Spinning only pays when every thread has a core: oversubscribed, a spinner steals the time of the
  // thread it waits for.
  explicit Pool(int threads)
      : spins_(threads <= static_cast<int>(std::thread::hardware_concurrency()) ? kSpins : 0) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int64_t n_ranges, const std::function<void(int64_t)>& task) {
    std::unique_lock<std::mutex> call(call_mu_);  // one parallel region at a time
    Region region;
    region.task = &task;
    region.n = n_ranges;
    region.pending.store(n_ranges, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      region_ = &region;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain(region);
    // Regions are short (a matmul of one decode step): spin briefly before sleeping on the condition.
    for (int i = 0; i < spins_ && region.pending.load(std::memory_order_acquire) != 0; ++i) cpu_pause();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return region.pending.load(std::memory_order_acquire) == 0; });
      region_ = nullptr;  // no worker enters it from now on
    }
    // Workers still inside have found nothing left to claim and are leaving.
    while (region.inside.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  static constexpr int kSpins = 4000;

  void drain(Region& r) {
    t_in_region = true;
    for (;;) {
      const int64_t i = r.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= r.n) break;
      (*r.task)(i);
      if (r.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_all();
      }
    }
    t_in_region = false;
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      for (int i = 0; i < spins_ && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_pause();
      Region* r = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_acquire);
        r = region_;
        if (r) r->inside.fetch_add(1, std::memory_order_acq_rel);
      }
      if (!r) continue;
      drain(*r);
      r->inside.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  const int spins_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_, mu_;
  std::condition_variable wake_, done_;
  Region* region_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

int configured_threads() {
  if (const char* env = std::getenv("MNEMO_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
  static Pool p(configured_threads());
  return p;
}

}  // namespace

int thread_count() { return pool().size(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t ranges = std::min<int64_t>((n + grain - 1) / grain, static_cast<int64_t>(thread_count()) * 4);
  if (ranges <= 1 || thread_count() == 1 || t_in_region) {
    fn(0, n);
    return;
  }
  int64_t per = (n + ranges - 1) / ranges;
  std::function<void(int64_t)> task = [&](int64_t r) {
    int64_t b = r * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  };
  pool().run(ranges, task);
}

}  // namespace mnemo::kernels
