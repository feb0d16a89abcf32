#pragma once
// The operator channel of `mnemo serve` (docs/server.md, "Operator channel"): a Unix socket in the
// store directory, mode 0600, through which the CLI of the operator who started the server runs
// jobs on it while it holds the store (`mnemo run`, `mnemo resume`, `mnemo jobs approve|deny`).
// Only a peer with the server's own uid (or root) is served, checked by SO_PEERCRED; its jobs are
// the operator's (local tenant, no tenant policy), never the tenant API's.
//
// Protocol: newline-delimited JSON. One request per connection:
//   {"op": "run", "spec_yaml", "spec_file", "inputs": {...}, "id", "workspace"}
//   {"op": "resume", "id", "message"?}
//   {"op": "approve" | "deny", "id", "call_id"}
// then the server writes {"type": "started", "id"} (or {"type": "error", "message"}), every durable
// event of the job from then on in the WebSocket envelope (docs/protocol.md), and, once the run
// stops (finished, waiting for an approval, or paused), {"type": "end", "job": {...}} (the job as
// GET /v1/jobs/{id} gives it). A client that goes away leaves the job running.
#include <mnemo/base/status.h>
#include <mnemo/server/agent_hub.h>

#include <memory>
#include <string>

namespace mnemo::server {

class OperatorChannel {
 public:
  // Listens on `socket_path` (replacing a stale socket file) on a thread of its own.
  static Result<std::unique_ptr<OperatorChannel>> start(const std::string& socket_path,
                                                        std::shared_ptr<AgentHub> hub);
  ~OperatorChannel();  // stops listening, closes connections, removes the socket file

  struct Impl;

 private:
  explicit OperatorChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// STORE/operator.sock.
std::string operator_socket_path(const std::string& store_dir);

}  // namespace mnemo::server
