#include "event_payloads.h"

#include <mnemo/base/build_config.h>

#include <boost/json/serialize.hpp>

namespace mnemo::agent::internal {

namespace json = boost::json;

json::array token_array(std::span<const inference::TokenId> tokens) {
  json::array a;
  a.reserve(tokens.size());
  for (inference::TokenId t : tokens) a.emplace_back(static_cast<int64_t>(t));
  return a;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return Status::invalid_argument("odd-length hex string");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::invalid_argument("not a hex string");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

namespace {
memory::NewEvent make(std::string type, const json::object& o) {
  return {std::move(type), json::serialize(o)};
}
}  // namespace

memory::NewEvent session_created_event(const JobOrigin& origin, std::string_view name) {
  json::object inputs;
  for (const auto& [k, v] : origin.inputs) inputs[k] = v;
  json::object o;
  o["kind"] = "job";
  o["name"] = name;
  o["spec_yaml"] = origin.spec_yaml;
  o["spec_file"] = origin.spec_file;
  o["inputs"] = std::move(inputs);
  o["seed"] = origin.seed;
  o["workspace"] = origin.workspace;
  o["model_dir"] = origin.model_dir;
  o["fingerprint"] = origin.fingerprint;
  if (origin.operator_job) o["operator"] = true;
  o["mnemo_version"] = MNEMO_VERSION;
  return make("session.created", o);
}

memory::NewEvent input_event(std::string_view instructions, std::string_view content,
                             std::span<const inference::TokenId> tokens, size_t drop_tokens) {
  json::object o;
  o["role"] = "user";
  o["content"] = content;
  o["instructions"] = instructions;
  o["tokens"] = token_array(tokens);
  if (drop_tokens) o["drop_tokens"] = drop_tokens;
  return make("input.message", o);
}

memory::NewEvent message_event(const TurnRecord& turn) {
  json::array calls;
  for (const inference::ToolCall& c : turn.message.tool_calls) {
    calls.push_back(json::object{{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
  }
  json::object o;
  o["step"] = turn.step;
  o["content"] = turn.message.content;
  o["reasoning_content"] = turn.message.reasoning_content;
  o["tool_calls"] = std::move(calls);
  o["finish"] = turn.finish;
  o["tokens"] = token_array(turn.tokens);
  o["sampler_state"] = to_hex(turn.sampler_state);
  o["prompt_tokens"] = turn.prompt_tokens;
  o["completion_tokens"] = turn.completion_tokens;
  return make("message", o);
}

memory::NewEvent intent_event(uint32_t step, const CallState& call) {
  json::object o{
      {"call_id", call.id}, {"name", call.name}, {"arguments", call.arguments}, {"step", step}};
  return make("tool.intent", o);
}

memory::NewEvent approval_required_event(const CallState& call, std::string_view tool_description) {
  json::object o{{"call_id", call.id},
                 {"name", call.name},
                 {"arguments", call.arguments},
                 {"description", tool_description}};
  return make("tool.approval_required", o);
}

memory::NewEvent approval_event(std::string_view call_id, bool approve, std::string_view by) {
  json::object o{{"call_id", call_id}, {"decision", approve ? "approve" : "deny"}, {"by", by}};
  return make("tool.approval", o);
}

memory::NewEvent result_event(const ResultRecord& r) {
  json::object o;
  o["call_id"] = r.call->id;
  o["name"] = r.call->name;
  o["ok"] = r.result.ok;
  if (r.result.exit_status) o["exit_status"] = *r.result.exit_status;
  o["content"] = r.result.content;
  o["truncated"] = r.result.truncated;
  if (r.result.truncated) o["full_output"] = r.result.full_output;
  if (r.outcome_unknown) o["outcome_unknown"] = true;
  if (r.denied) o["denied"] = true;
  o["elapsed_ms"] = r.elapsed_ms;
  if (r.has_tokens) o["tokens"] = token_array(r.tokens);
  return make("tool.result", o);
}

memory::NewEvent resumed_event(const ResumeRecord& r) {
  json::object o{{"from", r.from_snapshot ? "snapshot" : "prefill"},
                 {"position", r.position},
                 {"tokens_prefilled", r.tokens_prefilled}};
  if (r.from_snapshot) o["snapshot"] = r.snapshot;
  if (!r.reason.empty()) o["reason"] = r.reason;
  return make("session.resumed", o);
}

memory::NewEvent retried_event(std::string_view error) {
  return make("run.retried", json::object{{"error", error}});
}

memory::NewEvent limit_event(std::string_view reason, std::string_view detail) {
  return make("limit", json::object{{"reason", reason}, {"detail", detail}});
}

memory::NewEvent error_event(std::string_view message) {
  return make("error", json::object{{"message", message}});
}

memory::NewEvent finished_event(std::string_view reason, std::string_view answer, uint32_t steps,
                                uint64_t generated_tokens, std::string_view limit) {
  json::object o{{"reason", reason},
                 {"answer", answer},
                 {"steps", steps},
                 {"generated_tokens", generated_tokens}};
  if (!limit.empty()) o["limit"] = limit;
  return make("run.finished", o);
}

}  // namespace mnemo::agent::internal
