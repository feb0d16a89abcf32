#include <mnemo/agent/job_state.h>

#include <mnemo/base/sha256.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "event_payloads.h"

namespace mnemo::agent {

namespace json = boost::json;

std::string_view job_status_name(JobStatus status) {
  switch (status) {
    case JobStatus::kInterrupted:
      return "interrupted";
    case JobStatus::kWaitingApproval:
      return "waiting_approval";
    case JobStatus::kCompleted:
      return "completed";
    case JobStatus::kLimit:
      return "limit";
    case JobStatus::kCancelled:
      return "cancelled";
    case JobStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

bool JobState::calls_settled() const {
  for (const CallState& c : calls) {
    if (!c.result) return false;
  }
  return true;
}

JobStatus JobState::status() const {
  if (finished) {
    if (finish_reason == "completed") return JobStatus::kCompleted;
    if (finish_reason == "limit") return JobStatus::kLimit;
    if (finish_reason == "cancelled") return JobStatus::kCancelled;
    return JobStatus::kFailed;
  }
  for (const CallState& c : calls) {
    if (!c.result && c.approval_requested && !c.approved) return JobStatus::kWaitingApproval;
  }
  return JobStatus::kInterrupted;
}

std::string tool_call_id(std::string_view session, uint32_t step, size_t index) {
  std::string digest = mnemo::to_hex(sha256(session)).substr(0, 8);
  return "call_" + digest + "_" + std::to_string(step) + "_" + std::to_string(index);
}

namespace {

// Field readers that name the event and field on a mismatch.
class Reader {
 public:
  Reader(const memory::Event& e) : event_(e) {}

  Status parse() {
    boost::system::error_code ec;
    value_ = json::parse(event_.payload, ec);
    if (ec || !value_.is_object()) return fail("payload", "is not a JSON object");
    return Status::ok();
  }
  const json::object& obj() const { return value_.get_object(); }

  Result<std::string> str(std::string_view key, bool required = true) const {
    const json::value* v = obj().if_contains(key);
    if (!v) {
      if (!required) return std::string();
      return fail(key, "is missing");
    }
    if (!v->is_string()) return fail(key, "must be a string");
    return std::string(v->get_string());
  }
  Result<bool> boolean(std::string_view key) const {
    const json::value* v = obj().if_contains(key);
    if (!v) return false;
    if (!v->is_bool()) return fail(key, "must be a boolean");
    return v->get_bool();
  }
  Result<uint64_t> uint(std::string_view key) const {
    const json::value* v = obj().if_contains(key);
    if (!v) return uint64_t{0};
    if (v->is_uint64()) return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
    return fail(key, "must be a non-negative integer");
  }
  Status tokens(std::string_view key, std::vector<inference::TokenId>& out) const {
    const json::value* v = obj().if_contains(key);
    if (!v) return Status::ok();
    if (!v->is_array()) return fail(key, "must be an array of token ids");
    for (const json::value& t : v->get_array()) {
      if (!t.is_int64() || t.get_int64() < 0 || t.get_int64() > INT32_MAX) {
        return fail(key, "must be an array of token ids");
      }
      out.push_back(static_cast<inference::TokenId>(t.get_int64()));
    }
    return Status::ok();
  }
  Status fail(std::string_view key, std::string_view what) const {
    return Status::invalid_argument("event " + std::to_string(event_.seq) + " (" + event_.type +
                                    "): " + std::string(key) + " " + std::string(what));
  }

 private:
  const memory::Event& event_;
  json::value value_;
};

CallState* find_call(JobState& s, std::string_view id) {
  for (CallState& c : s.calls) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

Status apply_created(JobState& s, const Reader& r) {
  auto yaml = r.str("spec_yaml");
  if (!yaml) return yaml.status();
  auto file = r.str("spec_file", false);
  s.origin.spec_yaml = *yaml;
  s.origin.spec_file = file.value_or("");
  if (const json::value* in = r.obj().if_contains("inputs"); in && in->is_object()) {
    for (const auto& kv : in->get_object()) {
      if (kv.value().is_string())
        s.origin.inputs[std::string(kv.key())] = std::string(kv.value().get_string());
    }
  }
  auto seed = r.uint("seed");
  if (!seed) return seed.status();
  s.origin.seed = *seed;
  s.origin.workspace = r.str("workspace", false).value_or("");
  s.origin.model_dir = r.str("model_dir", false).value_or("");
  s.origin.fingerprint = r.str("fingerprint", false).value_or("");
  if (const json::value* op = r.obj().if_contains("operator"); op && op->is_bool())
    s.origin.operator_job = op->get_bool();
  auto spec = parse_job_spec(s.origin.spec_yaml, s.origin.spec_file);
  if (!spec)
    return Status::invalid_argument("the job's recorded spec no longer parses: " +
                                    spec.status().message());
  s.spec = std::move(spec).value();
  return Status::ok();
}

Status apply_input(JobState& s, const Reader& r) {
  auto instructions = r.str("instructions", false);
  auto content = r.str("content");
  if (!content) return content.status();
  if (s.messages.empty() && instructions && !instructions->empty()) {
    inference::ChatMessage sys;
    sys.role = inference::ChatRole::kSystem;
    sys.content_kind = inference::ContentKind::kText;
    sys.content = *instructions;
    s.messages.push_back(std::move(sys));
  }
  inference::ChatMessage user;
  user.role = inference::ChatRole::kUser;
  user.content_kind = inference::ContentKind::kText;
  user.content = *content;
  s.messages.push_back(std::move(user));
  // A user message after tool results the model never answered replaces their rendering's tail
  // (the assistant's generation prompt): those tokens leave the transcript.
  auto drop = r.uint("drop_tokens");
  if (!drop) return drop.status();
  if (*drop > s.tokens_after_turn)
    return r.fail("drop_tokens", "is more than the tool results added");
  s.transcript.resize(s.transcript.size() - *drop);
  // A new input starts a new run of the session.
  s.inputs += 1;
  s.run_steps = 0;
  s.run_generated_tokens = 0;
  s.finished = false;
  s.finish_reason.clear();
  s.limit.clear();
  s.error.clear();
  const size_t before = s.transcript.size();
  MNEMO_RETURN_IF_ERROR(r.tokens("tokens", s.transcript));
  s.tokens_after_turn = s.transcript.size() - before;
  return Status::ok();
}

Status apply_message(JobState& s, const Reader& r) {
  inference::ChatMessage m;
  m.role = inference::ChatRole::kAssistant;
  m.content_kind = inference::ContentKind::kText;
  auto content = r.str("content", false);
  auto reasoning = r.str("reasoning_content", false);
  m.content = content.value_or("");
  if (reasoning && !reasoning->empty()) m.reasoning_content = *reasoning;
  s.calls.clear();
  if (const json::value* calls = r.obj().if_contains("tool_calls")) {
    if (!calls->is_array()) return r.fail("tool_calls", "must be an array");
    for (const json::value& c : calls->get_array()) {
      const json::object* o = c.if_object();
      if (!o || !o->contains("id") || !o->contains("name") || !o->contains("arguments") ||
          !o->at("id").is_string() || !o->at("name").is_string() ||
          !o->at("arguments").is_string()) {
        return r.fail("tool_calls", "entries need string id, name and arguments");
      }
      inference::ToolCall call;
      call.id = std::string(o->at("id").get_string());
      call.type = "function";
      call.name = std::string(o->at("name").get_string());
      call.arguments = std::string(o->at("arguments").get_string());
      CallState cs;
      cs.id = call.id;
      cs.name = call.name;
      cs.arguments = call.arguments;
      s.calls.push_back(std::move(cs));
      m.tool_calls.push_back(std::move(call));
    }
  }
  const size_t before = s.transcript.size();
  MNEMO_RETURN_IF_ERROR(r.tokens("tokens", s.transcript));
  s.tokens_after_turn = 0;
  // A remote turn adds no tokens to the transcript; the server's count stands for them.
  auto completion = r.uint("completion_tokens");
  if (!completion) return completion.status();
  const uint64_t generated = std::max<uint64_t>(s.transcript.size() - before, *completion);
  s.generated_tokens += generated;
  s.run_generated_tokens += generated;
  s.run_steps += 1;
  auto sampler = r.str("sampler_state", false);
  auto raw = internal::from_hex(sampler.value_or(""));
  if (!raw) return r.fail("sampler_state", "is not hex");
  s.sampler_state = *raw;
  s.steps += 1;
  s.answer = m.content;
  s.messages.push_back(std::move(m));
  return Status::ok();
}

Status apply_call_event(JobState& s, const memory::Event& e, const Reader& r) {
  auto id = r.str("call_id");
  if (!id) return id.status();
  CallState* call = find_call(s, *id);
  if (!call) return r.fail("call_id", "names no call of the last assistant turn (" + *id + ")");
  if (e.type == "tool.approval_required") {
    call->approval_requested = true;
  } else if (e.type == "tool.approval") {
    auto decision = r.str("decision");
    if (!decision) return decision.status();
    if (*decision != "approve" && *decision != "deny")
      return r.fail("decision", "must be approve or deny");
    call->approved = *decision == "approve";
  } else if (e.type == "tool.intent") {
    call->intent = true;
  } else {  // tool.result
    call->result = true;
    inference::ChatMessage m;
    m.role = inference::ChatRole::kTool;
    m.content_kind = inference::ContentKind::kText;
    m.tool_call_id = call->id;
    auto content = r.str("content");
    if (!content) return content.status();
    m.content = *content;
    s.messages.push_back(std::move(m));
    const size_t before = s.transcript.size();
    MNEMO_RETURN_IF_ERROR(r.tokens("tokens", s.transcript));
    s.tokens_after_turn += s.transcript.size() - before;
  }
  return Status::ok();
}

}  // namespace

Status apply_event(JobState& s, const memory::Event& e) {
  s.last_seq = e.seq;
  Reader r(e);
  MNEMO_RETURN_IF_ERROR(r.parse());
  if (e.type == "step.committed") {
    auto position = r.uint("position");
    if (!position) return position.status();
    s.last_snapshot_position = static_cast<int64_t>(*position);
    return Status::ok();
  }
  if (e.type == "session.created") {
    s.created_unix_ms = e.unix_ms;
    auto kind = r.str("kind", false);
    if (kind.value_or("") != "job") {
      return Status::invalid_argument("session " + s.id + " is not a job (kind " +
                                      kind.value_or("") + ")");
    }
    return apply_created(s, r);
  }
  if (e.type == "input.message") return apply_input(s, r);
  if (e.type == "message") return apply_message(s, r);
  if (e.type == "tool.approval_required" || e.type == "tool.approval" || e.type == "tool.intent" ||
      e.type == "tool.result") {
    return apply_call_event(s, e, r);
  }
  if (e.type == "session.resumed") {
    auto from = r.str("from");
    if (!from) return from.status();
    s.resumed_from = *from;
    return Status::ok();
  }
  if (e.type == "limit") {
    s.limit = r.str("reason", false).value_or("");
  } else if (e.type == "error") {
    s.error = r.str("message", false).value_or("");
  } else if (e.type == "run.retried") {
    if (!s.retryable()) {
      return Status::invalid_argument("job " + s.id + ": seq " + std::to_string(e.seq) +
                                      " retries a run that did not fail");
    }
    s.finished = false;
    s.finish_reason.clear();
    s.error.clear();
  } else if (e.type == "run.finished") {
    s.finished = true;
    s.finish_reason = r.str("reason", false).value_or("");
  }
  return Status::ok();
}

Result<JobState> replay_job(std::string_view id, std::span<const memory::Event> events) {
  JobState s;
  s.id = std::string(id);
  if (events.empty() || events.front().type != "session.created") {
    return Status::invalid_argument("job " + s.id + " has no session.created event");
  }
  for (const memory::Event& e : events) MNEMO_RETURN_IF_ERROR(apply_event(s, e));
  return s;
}

namespace {

json::object message_object(const inference::ChatMessage& m) {
  json::object o;
  o["role"] = inference::chat_role_name(m.role);
  o["content"] = m.content;
  if (m.role == inference::ChatRole::kAssistant) {
    if (m.reasoning_content) o["reasoning_content"] = *m.reasoning_content;
    if (!m.tool_calls.empty()) {
      json::array calls;
      for (const inference::ToolCall& c : m.tool_calls) {
        calls.push_back(
            json::object{{"id", c.id},
                         {"type", "function"},
                         {"function", json::object{{"name", c.name}, {"arguments", c.arguments}}}});
      }
      o["tool_calls"] = std::move(calls);
    }
  }
  if (m.role == inference::ChatRole::kTool) o["tool_call_id"] = m.tool_call_id;
  return o;
}

json::array messages_array(const JobState& state) {
  json::array a;
  for (const inference::ChatMessage& m : state.messages) a.push_back(message_object(m));
  return a;
}

}  // namespace

std::string messages_json(const JobState& state) { return json::serialize(messages_array(state)); }

std::string job_json(const JobState& state, bool with_messages) {
  json::object o;
  o["id"] = state.id;
  o["name"] = state.spec.name;
  o["status"] = job_status_name(state.status());
  o["steps"] = state.steps;
  o["generated_tokens"] = state.generated_tokens;
  o["created_unix_ms"] = state.created_unix_ms;
  o["last_seq"] = state.last_seq;
  o["workspace"] = state.origin.workspace;
  if (state.finished) o["finish_reason"] = state.finish_reason;
  if (!state.limit.empty()) o["limit"] = state.limit;
  if (!state.error.empty()) o["error"] = state.error;
  o["answer"] = state.answer;
  json::array pending;
  for (const CallState& c : state.calls) {
    if (!c.result && c.approval_requested && !c.approved) {
      pending.push_back(
          json::object{{"call_id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
    }
  }
  o["pending_approvals"] = std::move(pending);
  if (with_messages) o["messages"] = messages_array(state);
  return json::serialize(o);
}

}  // namespace mnemo::agent
