#pragma once
// The durable event vocabulary of DESIGN.md ("One event vocabulary") as the store keeps it: an
// append-only log per session, numbered by `seq` from 1.
#include <cstdint>
#include <string>
#include <string_view>

namespace mnemo::memory {

// session.created, input.message, message, tool.intent, tool.result, tool.approval_required,
// tool.approval, step.committed, limit, error, run.finished.
bool is_durable_event_type(std::string_view type);

// An event to append: its type and its payload (JSON text the store does not interpret).
struct NewEvent {
  std::string type;
  std::string payload;
};

struct Event {
  uint64_t seq = 0;
  std::string type;
  std::string payload;
  int64_t unix_ms = 0;  // when it was committed
};

}  // namespace mnemo::memory
