#pragma once
// WebSocket agent sessions on GET /v1/sessions (docs/protocol.md): JSON messages in one envelope
// {type, session_id, seq, ...}; clients create, resume (after_seq), message, cancel and approve
// sessions and receive their durable events and live deltas.
#include <chrono>
#include <cstddef>
#include <memory>

#include <mnemo/server/agent_hub.h>
#include <mnemo/server/metrics.h>
#include <mnemo/server/router.h>

namespace mnemo::server {

struct WsOptions {
  // A client message over this is refused with close code 1009.
  size_t max_message = 1024 * 1024;
  // A connection with nothing received for this long is closed; the server pings at half of it.
  std::chrono::milliseconds idle_timeout{60'000};
  // Outgoing messages queued per connection before it catches up from the store instead.
  size_t max_queued = 1024;
};

void add_session_routes(Router& router, std::shared_ptr<AgentHub> hub, WsOptions options = {},
                        std::shared_ptr<Metrics> metrics = nullptr);

}  // namespace mnemo::server
