#pragma once
// The asynchronous sandbox runner: a command in fresh namespaces, pipes, child exit and timeout on
// Asio.
#include <mnemo/base/status.h>
#include <mnemo/sandbox/policy.h>

#include <boost/asio/any_io_executor.hpp>
#include <functional>

namespace mnemo::sandbox {

class Runner {
 public:
  using Handler = std::function<void(Result<ExecResult>)>;

  explicit Runner(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // Starts the command and returns at once; `done` runs once on the executor. The sandbox dies with
  // the thread that called async_run (PDEATHSIG), so call it from a long-lived thread.
  void async_run(ExecRequest request, Handler done);

 private:
  boost::asio::any_io_executor executor_;
};

// Runs one command to completion on a private io_context.
Result<ExecResult> run(ExecRequest request);

}  // namespace mnemo::sandbox
