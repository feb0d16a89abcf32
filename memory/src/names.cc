// The store's vocabularies: event types, at-rest modes and the compact codec's parameters.
#include <mnemo/memory/events.h>
#include <mnemo/memory/snapshot.h>

#include <array>

namespace mnemo::memory {

bool is_durable_event_type(std::string_view type) {
  static constexpr std::array<std::string_view, 13> kTypes = {
      "session.created", "session.resumed", "input.message",  "message",
      "tool.intent",     "tool.result",    "tool.approval_required",
      "tool.approval",   "step.committed", "limit",
      "error",           "run.finished",   "run.retried"};
  for (std::string_view t : kTypes) {
    if (t == type) return true;
  }
  return false;
}

std::string_view at_rest_name(AtRest mode) {
  return mode == AtRest::kCompact ? "compact" : "exact";
}

Result<AtRest> parse_at_rest(std::string_view name) {
  if (name == "exact") return AtRest::kExact;
  if (name == "compact") return AtRest::kCompact;
  return Status::invalid_argument("unknown at-rest mode '" + std::string(name) +
                                  "' (use exact or compact)");
}

Status CompactParams::validate() const {
  if (entry_bits < 2 || entry_bits > 8 || index_bits < 2 || index_bits > 8) {
    return Status::invalid_argument("compact codec: bits must be 2 to 8");
  }
  if (group < 1 || group > 4096)
    return Status::invalid_argument("compact codec: group must be 1 to 4096");
  if (zstd_level < 1 || zstd_level > 19)
    return Status::invalid_argument("compact codec: zstd level must be 1 to 19");
  return Status::ok();
}

std::string CompactParams::descriptor() const {
  return "compact/e" + std::to_string(entry_bits) + "/i" + std::to_string(index_bits) + "/g" +
         std::to_string(group);
}

}  // namespace mnemo::memory
