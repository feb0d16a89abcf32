#pragma once
// The runtime's private state, shared by runtime.cc and the session.
#include <mnemo/agent/runtime.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "embedded_model.h"

namespace mnemo::agent {

namespace internal {
class Session;
}

struct Runtime::Impl {
  boost::asio::any_io_executor executor;
  memory::Store& store;
  RuntimeOptions options;
  // Synced store commits run here, so that a commit never holds the jobs' executor and concurrent
  // jobs' commits group in RocksDB's write queue.
  boost::asio::thread_pool store_pool{2};
  // Blocking calls to remote model servers (one thread each while they stream).
  boost::asio::thread_pool remote_pool{8};
  std::map<std::string, std::unique_ptr<internal::EmbeddedModel>> models;  // by dir + precision
  std::map<std::string, internal::Session*, std::less<>> running;
  // Polls STORE/control/ID.cancel files, the way `mnemo jobs cancel` reaches a job running in
  // another process.
  std::unique_ptr<boost::asio::steady_timer> control_timer;

  Impl(boost::asio::any_io_executor ex, memory::Store& s, RuntimeOptions o)
      : executor(std::move(ex)), store(s), options(std::move(o)) {}
  ~Impl();

  Result<internal::EmbeddedModel*> model(const std::string& dir, inference::Precision precision);
  // The job as it runs for `tenant`: the operator's policy applied (or, without one, the endpoint
  // resolved), and what this machine cannot honour refused.
  Result<JobSpec> effective_spec(const JobSpec& spec, std::string_view tenant,
                                 bool operator_job = false) const;
  // The tenant's policy when the runtime enforces one, else null.
  const TenantPolicy* policy_for(std::string_view tenant) const;
  // The job's state from its log, its spec made effective.
  Result<JobState> load(std::string_view id) const;
  // The model a stored job runs on, refused when its fingerprint changed.
  Result<internal::EmbeddedModel*> model_for(const JobState& state);
  void poll_control();
};

namespace internal {

// Runs f() on the store pool and resumes the calling coroutine on its own executor with the result.
template <typename R>
boost::asio::awaitable<R> run_on_pool(boost::asio::thread_pool& pool, std::function<R()> f) {
  namespace asio = boost::asio;
  auto ex = co_await asio::this_coro::executor;
  std::optional<R> out;
  auto op = asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&pool, &out, &f, ex](auto handler) {
        asio::post(pool, [&out, &f, ex, handler = std::move(handler)]() mutable {
          out.emplace(f());
          asio::post(ex, std::move(handler));
        });
      },
      asio::use_awaitable);
  co_await std::move(op);
  co_return std::move(*out);
}

}  // namespace internal
}  // namespace mnemo::agent
