#include <mnemo/agent/job_spec.h>

#include <mnemo/base/file.h>
#include <mnemo/tools/builtin_tools.h>
#include <mnemo/tools/json_schema.h>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <limits>
#include <set>

#include "yaml_fields.h"

namespace mnemo::agent {
namespace {

using yaml::error_at;
using yaml::Fields;
using yaml::Source;

constexpr std::string_view kPlaceholderPrefix = "inputs.";
constexpr uint64_t kMaxSteps = 1'000'000;
constexpr uint64_t kMaxPids = 1'000'000;
constexpr uint64_t kMaxCpuSeconds = 366ull * 24 * 3600;
constexpr uint64_t kMaxSnapshotEvery = 1'000'000;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_identifier(std::string_view s, bool allow_dot) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!is_name_char(c) && !(allow_dot && c == '.')) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Walks a template: on_text gets literal runs, on_input each placeholder's input name. Every "{{"
// opens a placeholder, so a typo such as {{input.x}} is an error rather than text sent to the
// model.
Status scan_template(std::string_view text, const std::function<void(std::string_view)>& on_text,
                     const std::function<Status(std::string_view)>& on_input) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      on_text(text.substr(pos));
      break;
    }
    on_text(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Status::invalid_argument(
          "has an unterminated placeholder " +
          std::string(text.substr(open, std::min<size_t>(30, text.size() - open))));
    }
    std::string_view inner = trim(text.substr(open + 2, close - open - 2));
    if (inner.substr(0, kPlaceholderPrefix.size()) != kPlaceholderPrefix ||
        !is_identifier(inner.substr(kPlaceholderPrefix.size()), false)) {
      return Status::invalid_argument("has a malformed placeholder {{" + std::string(inner) +
                                      "}} (placeholders are {{inputs.NAME}})");
    }
    MNEMO_RETURN_IF_ERROR(on_input(inner.substr(kPlaceholderPrefix.size())));
    pos = close + 2;
  }
  return Status::ok();
}

Status parse_model(const Source& src, const YAML::Node& node, ModelSpec& out) {
  auto fields = Fields::read(src, node, "model", {"embedded", "remote"});
  if (!fields) return fields.status();
  const yaml::Field* embedded = fields->find("embedded");
  const yaml::Field* remote = fields->find("remote");
  if (embedded && remote) {
    const yaml::Field* later =
        embedded->key.Mark().pos > remote->key.Mark().pos ? embedded : remote;
    return error_at(src, later->key.Mark(), "model must be either embedded or remote, not both");
  }
  if (!embedded && !remote)
    return error_at(src, fields->mark(), "model must have embedded or remote");
  if (embedded) {
    out.kind = ModelKind::kEmbedded;
    // "embedded:" with nothing under it means the default model at its default precision.
    if (embedded->value.IsNull()) return Status::ok();
    auto e = Fields::read(src, embedded->value, "model.embedded", {"dir", "precision"});
    if (!e) return e.status();
    if (const yaml::Field* f = e->find("dir")) {
      auto dir = yaml::read_string(src, f->value, "model.embedded.dir");
      if (!dir) return dir.status();
      out.embedded.dir = *dir;
    }
    if (const yaml::Field* f = e->find("precision")) {
      auto p =
          yaml::read_enum(src, f->value, "model.embedded.precision", {"fp32", "bf16", "serving"});
      if (!p) return p.status();
      auto precision = inference::parse_precision(f->value.Scalar());
      if (!precision)
        return error_at(src, f->value.Mark(),
                        "model.embedded.precision: " + precision.status().message());
      out.embedded.precision = *precision;
    }
    return Status::ok();
  }
  out.kind = ModelKind::kRemote;
  auto r = Fields::read(src, remote->value, "model.remote",
                        {"endpoint", "base_url", "model", "api_key_env"});
  if (!r) return r.status();
  if (const yaml::Field* endpoint = r->find("endpoint")) {
    auto name = yaml::read_string(src, endpoint->value, "model.remote.endpoint");
    if (!name) return name.status();
    if (!is_identifier(*name, true))
      return error_at(src, endpoint->value.Mark(), "model.remote.endpoint must be an endpoint name");
    for (std::string_view other : {"base_url", "api_key_env"}) {
      if (const yaml::Field* f = r->find(other)) {
        return error_at(src, f->key.Mark(),
                        "model.remote." + std::string(other) +
                            " comes from the endpoint; give either endpoint or base_url");
      }
    }
    out.remote.endpoint = *name;
    if (const yaml::Field* model = r->find("model")) {
      auto m = yaml::read_string(src, model->value, "model.remote.model");
      if (!m) return m.status();
      out.remote.model = *m;
    }
    return Status::ok();
  }
  const yaml::Field* base_url = r->find("base_url");
  if (!base_url)
    return error_at(src, r->mark(), "model.remote needs endpoint (a configured one) or base_url");
  auto url = yaml::read_string(src, base_url->value, "model.remote.base_url");
  if (!url) return url.status();
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
    return error_at(src, base_url->value.Mark(),
                    "model.remote.base_url must start with http:// or https://");
  }
  out.remote.base_url = *url;
  const yaml::Field* model = r->find("model");
  if (!model) return error_at(src, r->mark(), "model.remote.model is required");
  auto name = yaml::read_string(src, model->value, "model.remote.model");
  if (!name) return name.status();
  if (name->empty())
    return error_at(src, model->value.Mark(), "model.remote.model must not be empty");
  out.remote.model = *name;
  if (const yaml::Field* f = r->find("api_key_env")) {
    auto env = yaml::read_string(src, f->value, "model.remote.api_key_env");
    if (!env) return env.status();
    if (!is_identifier(*env, false) || env->find('-') != std::string::npos) {
      return error_at(src, f->value.Mark(),
                      "model.remote.api_key_env must be an environment variable name");
    }
    out.remote.api_key_env = *env;
  }
  return Status::ok();
}

Status parse_inputs(const Source& src, const YAML::Node& node,
                    std::map<std::string, InputSpec>& out) {
  if (!node.IsMap()) return error_at(src, node.Mark(), "inputs must be a mapping of input names");
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    const YAML::Node& value = entry.second;
    if (!key.IsScalar() || !is_identifier(key.Scalar(), false)) {
      return error_at(src, key.Mark(), "inputs names must be letters, digits, '_' or '-'");
    }
    std::string field = "inputs." + key.Scalar();
    if (out.count(key.Scalar())) return error_at(src, key.Mark(), "duplicate field " + field);
    InputSpec spec;
    if (value.IsScalar()) {
      spec.default_value = value.Scalar();  // shorthand: "NAME: default"
    } else if (!value.IsNull()) {           // null: required, no default
      auto fields = Fields::read(src, value, field, {"default", "description"});
      if (!fields) return fields.status();
      if (const yaml::Field* f = fields->find("default")) {
        auto d = yaml::read_string(src, f->value, field + ".default");
        if (!d) return d.status();
        spec.default_value = *d;
      }
      if (const yaml::Field* f = fields->find("description")) {
        auto d = yaml::read_string(src, f->value, field + ".description");
        if (!d) return d.status();
        spec.description = *d;
      }
    }
    out.emplace(key.Scalar(), std::move(spec));
  }
  return Status::ok();
}

// The fields of a job-defined command tool; description, parameters and idempotent need a command.
Status parse_command_tool(const Source& src, const YAML::Node& item, const Fields& fields,
                          const std::string& field, ToolSpec& tool) {
  const yaml::Field* command = fields.find("command");
  for (std::string_view key : {"description", "parameters", "idempotent"}) {
    if (const yaml::Field* f = fields.find(key); f && !command) {
      return error_at(src, f->key.Mark(),
                      field + "." + std::string(key) + " is only for command tools (add " + field +
                          ".command)");
    }
  }
  if (!command) return Status::ok();
  auto text = yaml::read_string(src, command->value, field + ".command");
  if (!text) return text.status();
  if (text->empty())
    return error_at(src, command->value.Mark(), field + ".command must not be empty");
  tool.command = *text;
  if (const yaml::Field* f = fields.find("description")) {
    auto d = yaml::read_string(src, f->value, field + ".description");
    if (!d) return d.status();
    tool.description = *d;
  }
  tool.parameters_json = R"({"type": "object", "properties": {}, "additionalProperties": false})";
  if (const yaml::Field* f = fields.find("parameters")) {
    if (!f->value.IsMap()) {
      return error_at(src, f->value.Mark(),
                      field + ".parameters must be a JSON schema written as a mapping");
    }
    auto json = yaml::to_json_text(src, f->value, field + ".parameters");
    if (!json) return json.status();
    // Checked here, so that a keyword outside the subset is named with its place in the file.
    if (auto schema = tools::JsonSchema::parse(*json); !schema)
      return error_at(src, f->value.Mark(), field + ".parameters: " + schema.status().message());
    tool.parameters_json = *json;
  }
  if (const yaml::Field* f = fields.find("idempotent")) {
    auto b = yaml::read_bool(src, f->value, field + ".idempotent");
    if (!b) return b.status();
    tool.idempotent = *b;
  }
  (void)item;
  return Status::ok();
}

// The built-in tools' names, for unknown-tool errors at their place in the file.
const std::set<std::string>& builtin_names() {
  static const std::set<std::string> names = [] {
    tools::ToolRegistry registry;
    std::set<std::string> out;
    if (tools::add_builtin_tools(registry)) {
      for (const std::string& n : registry.names()) out.insert(n);
    }
    return out;
  }();
  return names;
}

Status parse_hosts(const Source& src, const YAML::Node& node, const std::string& field,
                   std::vector<std::string>& out) {
  if (!node.IsSequence()) return error_at(src, node.Mark(), field + " must be a list of hosts");
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_field = field + "[" + std::to_string(i) + "]";
    auto host = yaml::read_string(src, node[i], item_field);
    if (!host) return host.status();
    const bool ok = !host->empty() && host->size() <= 253 &&
                    std::all_of(host->begin(), host->end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                             c == '-' || c == '*' || c == ':' || c == '[' || c == ']';
                    }) &&
                    (host->find('*') == std::string::npos || *host == "*" ||
                     (host->rfind("*.", 0) == 0 && host->find('*', 1) == std::string::npos));
    if (!ok) {
      return error_at(src, node[i].Mark(),
                      item_field + " must be a host name, *.domain, * or an IP address");
    }
    out.push_back(*host);
  }
  return Status::ok();
}

Status parse_tools(const Source& src, const YAML::Node& node, std::vector<ToolSpec>& out) {
  if (!node.IsSequence()) return error_at(src, node.Mark(), "tools must be a list");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node& item = node[i];
    std::string field = "tools[" + std::to_string(i) + "]";
    ToolSpec tool;
    YAML::Node name_node = item;
    if (item.IsMap()) {
      auto fields =
          Fields::read(src, item, field,
                       {"name", "approval", "command", "description", "parameters", "idempotent",
                        "hosts"});
      if (!fields) return fields.status();
      const yaml::Field* name = fields->find("name");
      if (!name) return error_at(src, item.Mark(), field + ".name is required");
      name_node = name->value;
      if (const yaml::Field* f = fields->find("approval")) {
        auto a = yaml::read_enum(src, f->value, field + ".approval", {"never", "always"});
        if (!a) return a.status();
        tool.approval = *a == 0 ? Approval::kNever : Approval::kAlways;
      }
      MNEMO_RETURN_IF_ERROR(parse_command_tool(src, item, *fields, field, tool));
      if (const yaml::Field* f = fields->find("hosts")) {
        if (name->value.IsScalar() && name->value.Scalar() != "http_get") {
          return error_at(src, f->key.Mark(), field + ".hosts is only for http_get");
        }
        MNEMO_RETURN_IF_ERROR(parse_hosts(src, f->value, field + ".hosts", tool.hosts));
        for (const std::string& h : tool.hosts)
          if (h.find('*') == std::string::npos) tool.private_hosts.push_back(h);
      }
      field += ".name";
    } else if (!item.IsScalar()) {
      return error_at(src, item.Mark(),
                      field + " must be a tool name or a mapping with name and approval");
    }
    auto name = yaml::read_string(src, name_node, field);
    if (!name) return name.status();
    if (!is_identifier(*name, false)) {
      return error_at(src, name_node.Mark(),
                      field + " must be a tool name (letters, digits, '_' or '-')");
    }
    if (auto it = seen.find(*name); it != seen.end()) {
      return error_at(
          src, name_node.Mark(),
          field + " duplicates tool " + *name + " (tools[" + std::to_string(it->second) + "])");
    }
    if (!tool.is_command() && !builtin_names().count(*name)) {
      std::string names;
      for (const std::string& n : builtin_names()) names += (names.empty() ? "" : ", ") + n;
      return error_at(src, name_node.Mark(),
                      field + ": unknown tool " + *name + " (built-ins: " + names +
                          "; a job-defined tool needs a command)");
    }
    seen.emplace(*name, i);
    tool.name = *name;
    out.push_back(std::move(tool));
  }
  return Status::ok();
}

Status parse_tool_choice(const Source& src, const YAML::Node& node,
                         const std::vector<ToolSpec>& tools, ToolChoice& out) {
  auto value = yaml::read_string(src, node, "tool_choice");
  if (!value) return value.status();
  if (*value == "auto") {
    out.kind = ToolChoiceKind::kAuto;
  } else if (*value == "none") {
    out.kind = ToolChoiceKind::kNone;
  } else if (*value == "required") {
    if (tools.empty())
      return error_at(src, node.Mark(), "tool_choice required needs at least one tool in tools");
    out.kind = ToolChoiceKind::kRequired;
  } else {
    bool declared = false;
    std::string names;
    for (const ToolSpec& t : tools) {
      declared = declared || t.name == *value;
      names += (names.empty() ? "" : ", ") + t.name;
    }
    if (!declared) {
      return error_at(src, node.Mark(),
                      "tool_choice must be auto, required, none or a tool in tools; " + *value +
                          " is not declared (tools: " + (names.empty() ? "none" : names) + ")");
    }
    out.kind = ToolChoiceKind::kTool;
    out.tool = *value;
  }
  return Status::ok();
}

Status parse_sandbox(const Source& src, const YAML::Node& node, SandboxSpec& out) {
  auto fields = Fields::read(src, node, "sandbox",
                             {"mode", "memory", "cpu_seconds", "pids", "timeout", "disk"});
  if (!fields) return fields.status();
  if (const yaml::Field* f = fields->find("mode")) {
    auto m = yaml::read_enum(src, f->value, "sandbox.mode", {"isolated", "none"});
    if (!m) return m.status();
    out.mode = *m == 0 ? sandbox::SandboxMode::kIsolated : sandbox::SandboxMode::kNone;
  }
  if (const yaml::Field* f = fields->find("memory")) {
    auto v = yaml::read_size(src, f->value, "sandbox.memory");
    if (!v) return v.status();
    out.memory_bytes = *v;
  }
  if (const yaml::Field* f = fields->find("cpu_seconds")) {
    auto v = yaml::read_positive_int(src, f->value, "sandbox.cpu_seconds", kMaxCpuSeconds);
    if (!v) return v.status();
    out.cpu = std::chrono::seconds(*v);
  }
  if (const yaml::Field* f = fields->find("pids")) {
    auto v = yaml::read_positive_int(src, f->value, "sandbox.pids", kMaxPids);
    if (!v) return v.status();
    out.pids = static_cast<uint32_t>(*v);
  }
  if (const yaml::Field* f = fields->find("timeout")) {
    auto v = yaml::read_duration(src, f->value, "sandbox.timeout");
    if (!v) return v.status();
    out.timeout = *v;
  }
  if (const yaml::Field* f = fields->find("disk")) {
    auto v = yaml::read_size(src, f->value, "sandbox.disk");
    if (!v) return v.status();
    out.disk_bytes = *v;
  }
  return Status::ok();
}

Status parse_limits(const Source& src, const YAML::Node& node, LimitsSpec& out) {
  auto fields =
      Fields::read(src, node, "limits",
                   {"max_steps", "max_tokens", "max_turn_tokens", "timeout", "tool_timeout"});
  if (!fields) return fields.status();
  if (const yaml::Field* f = fields->find("max_steps")) {
    auto v = yaml::read_positive_int(src, f->value, "limits.max_steps", kMaxSteps);
    if (!v) return v.status();
    out.max_steps = static_cast<uint32_t>(*v);
  }
  if (const yaml::Field* f = fields->find("max_tokens")) {
    auto v = yaml::read_positive_int(src, f->value, "limits.max_tokens",
                                     std::numeric_limits<uint32_t>::max());
    if (!v) return v.status();
    out.max_tokens = *v;
  }
  if (const yaml::Field* f = fields->find("timeout")) {
    auto v = yaml::read_duration(src, f->value, "limits.timeout");
    if (!v) return v.status();
    out.timeout = *v;
  }
  if (const yaml::Field* f = fields->find("max_turn_tokens")) {
    auto v = yaml::read_positive_int(src, f->value, "limits.max_turn_tokens",
                                     std::numeric_limits<uint32_t>::max());
    if (!v) return v.status();
    out.max_turn_tokens = *v;
  }
  if (const yaml::Field* f = fields->find("tool_timeout")) {
    auto v = yaml::read_duration(src, f->value, "limits.tool_timeout");
    if (!v) return v.status();
    out.tool_timeout = *v;
  }
  return Status::ok();
}

Status parse_sampling(const Source& src, const YAML::Node& node, SamplingSpec& out) {
  auto fields = Fields::read(src, node, "sampling", {"temperature", "top_p", "seed"});
  if (!fields) return fields.status();
  if (const yaml::Field* f = fields->find("temperature")) {
    auto v = yaml::read_number(src, f->value, "sampling.temperature");
    if (!v) return v.status();
    if (*v < 0 || *v > 100)
      return error_at(src, f->value.Mark(), "sampling.temperature must be between 0 and 100");
    out.temperature = static_cast<float>(*v);
  }
  if (const yaml::Field* f = fields->find("top_p")) {
    auto v = yaml::read_number(src, f->value, "sampling.top_p");
    if (!v) return v.status();
    if (!(*v > 0 && *v <= 1))
      return error_at(src, f->value.Mark(), "sampling.top_p must be in (0, 1]");
    out.top_p = static_cast<float>(*v);
  }
  if (const yaml::Field* f = fields->find("seed")) {
    auto v = yaml::read_unsigned(src, f->value, "sampling.seed");
    if (!v) return v.status();
    out.seed = *v;
  }
  return Status::ok();
}

Status parse_durability(const Source& src, const YAML::Node& node, DurabilitySpec& out) {
  auto fields = Fields::read(src, node, "durability", {"snapshot_every"});
  if (!fields) return fields.status();
  if (const yaml::Field* f = fields->find("snapshot_every")) {
    if (f->value.IsScalar() && f->value.Scalar() == "step") {
      out.snapshot_every = 1;
    } else {
      auto v =
          yaml::read_positive_int(src, f->value, "durability.snapshot_every", kMaxSnapshotEvery);
      if (!v)
        return error_at(src, f->value.Mark(),
                        "durability.snapshot_every must be step or a positive integer");
      out.snapshot_every = static_cast<uint32_t>(*v);
    }
  }
  return Status::ok();
}

Status parse_root(const Source& src, const YAML::Node& root, JobSpec& spec) {
  if (root.IsNull())
    return error_at(src, root.Mark(), "the job is empty (it needs at least name and input)");
  if (!root.IsMap())
    return error_at(src, root.Mark(), "a job must be a mapping of fields (name, input, ...)");
  auto fields = Fields::read(src, root, "",
                             {"name", "model", "instructions", "input", "inputs", "tools",
                              "tool_choice", "sandbox", "limits", "sampling", "durability"});
  if (!fields) return fields.status();

  const yaml::Field* name = fields->find("name");
  if (!name) return error_at(src, fields->mark(), "name is required");
  auto name_value = yaml::read_string(src, name->value, "name");
  if (!name_value) return name_value.status();
  if (!is_identifier(*name_value, true)) {
    return error_at(src, name->value.Mark(), "name must be 1-64 letters, digits, '.', '_' or '-'");
  }
  spec.name = *name_value;

  if (const yaml::Field* f = fields->find("model"))
    MNEMO_RETURN_IF_ERROR(parse_model(src, f->value, spec.model));
  if (const yaml::Field* f = fields->find("instructions")) {
    auto v = yaml::read_string(src, f->value, "instructions");
    if (!v) return v.status();
    spec.instructions = *v;
  }
  if (const yaml::Field* f = fields->find("inputs"))
    MNEMO_RETURN_IF_ERROR(parse_inputs(src, f->value, spec.inputs));
  const yaml::Field* input = fields->find("input");
  if (input) {
    auto v = yaml::read_string(src, input->value, "input");
    if (!v) return v.status();
    spec.input = *v;
    Status st = scan_template(
        spec.input, [](std::string_view) {},
        [&](std::string_view used) {
          if (spec.inputs.count(std::string(used))) return Status::ok();
          return Status::invalid_argument("uses {{inputs." + std::string(used) +
                                          "}}, which inputs does not declare");
        });
    if (!st) return error_at(src, input->value.Mark(), "input " + st.message());
  }
  if (spec.input.empty() && spec.instructions.empty()) {
    return error_at(src, input ? input->value.Mark() : fields->mark(),
                    "input or instructions is required");
  }
  if (const yaml::Field* f = fields->find("tools"))
    MNEMO_RETURN_IF_ERROR(parse_tools(src, f->value, spec.tools));
  if (const yaml::Field* f = fields->find("tool_choice")) {
    MNEMO_RETURN_IF_ERROR(parse_tool_choice(src, f->value, spec.tools, spec.tool_choice));
  }
  if (const yaml::Field* f = fields->find("sandbox"))
    MNEMO_RETURN_IF_ERROR(parse_sandbox(src, f->value, spec.sandbox));
  if (const yaml::Field* f = fields->find("limits"))
    MNEMO_RETURN_IF_ERROR(parse_limits(src, f->value, spec.limits));
  if (const yaml::Field* f = fields->find("sampling"))
    MNEMO_RETURN_IF_ERROR(parse_sampling(src, f->value, spec.sampling));
  if (const yaml::Field* f = fields->find("durability")) {
    MNEMO_RETURN_IF_ERROR(parse_durability(src, f->value, spec.durability));
  }
  return Status::ok();
}

// Walks the document as the parser will (an alias is visited wherever it is used), refusing it once
// it grows past the node or depth bound: a few hundred bytes of nested anchors would otherwise
// expand to gigabytes.
Status check_bounds(const Source& src, const YAML::Node& root) {
  std::vector<std::pair<YAML::Node, int>> stack{{root, 1}};
  size_t nodes = 0;
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (++nodes > kMaxJobNodes) {
      return error_at(src, node.Mark(),
                      "the job expands to more than " + std::to_string(kMaxJobNodes) +
                          " YAML nodes (an alias counts each time it is used)");
    }
    if (depth > kMaxJobDepth) {
      return error_at(src, node.Mark(),
                      "the job nests more than " + std::to_string(kMaxJobDepth) + " levels deep");
    }
    if (node.IsSequence()) {
      for (const YAML::Node& item : node) stack.emplace_back(item, depth + 1);
    } else if (node.IsMap()) {
      for (const auto& entry : node) {
        stack.emplace_back(entry.first, depth + 1);
        stack.emplace_back(entry.second, depth + 1);
      }
    }
  }
  return Status::ok();
}

// Records where the job set each field of its sections (JobSpec::given).
void note_given(const Source& src, const YAML::Node& root, JobSpec& spec) {
  if (!root.IsMap()) return;
  for (const char* name : {"sandbox", "limits", "sampling", "durability", "model"}) {
    const YAML::Node node = root[name];
    if (!node.IsDefined() || !node.IsMap()) continue;
    for (const auto& entry : node) {
      const std::string field = std::string(name) + "." + entry.first.Scalar();
      spec.given[field] = yaml::location(src, entry.first.Mark());
      if (std::string_view(name) == "model" && entry.second.IsMap()) {
        for (const auto& inner : entry.second)
          spec.given[field + "." + inner.first.Scalar()] = yaml::location(src, inner.first.Mark());
      }
    }
  }
}

}  // namespace

std::string JobSpec::where(std::string_view field) const {
  auto it = given.find(field);
  return it == given.end() ? std::string(field) : it->second + ": " + std::string(field);
}

const ToolSpec* JobSpec::find_tool(std::string_view tool_name) const {
  for (const ToolSpec& t : tools) {
    if (t.name == tool_name) return &t;
  }
  return nullptr;
}

Result<JobSpec> parse_job_spec(std::string_view yaml_text, std::string_view file_name) {
  Source src{std::string(file_name)};
  if (yaml_text.size() > kMaxJobBytes) {
    return Status::invalid_argument(src.file + ": the job is " + std::to_string(yaml_text.size()) +
                                    " bytes; a job holds at most " + std::to_string(kMaxJobBytes));
  }
  // yaml-cpp reports through exceptions; they stop here so none leaves the library.
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml_text));
    for (const YAML::Node& d : documents) MNEMO_RETURN_IF_ERROR(check_bounds(src, d));
    if (documents.empty())
      return error_at(src, YAML::Mark::null_mark(),
                      "the job is empty (it needs at least name and input)");
    if (documents.size() > 1)
      return error_at(src, documents[1].Mark(), "a job file holds one YAML document");
    JobSpec spec;
    MNEMO_RETURN_IF_ERROR(parse_root(src, documents[0], spec));
    note_given(src, documents[0], spec);
    return spec;
  } catch (const YAML::DeepRecursion& e) {
    return error_at(src, e.mark,
                    "invalid YAML: nested more than " + std::to_string(e.depth()) + " levels deep");
  } catch (const YAML::Exception& e) {
    return error_at(src, e.mark, "invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return Status::invalid_argument(src.file + ": " + e.what());
  }
}

Result<JobSpec> load_job_spec(const std::string& path) {
  auto text = read_file(path, kMaxJobBytes);
  if (!text) return text.status();
  return parse_job_spec(*text, path);
}

Result<std::string> render_input(const JobSpec& spec,
                                 const std::map<std::string, std::string>& inputs) {
  std::string declared;
  for (const auto& [name, _] : spec.inputs) declared += (declared.empty() ? "" : ", ") + name;
  for (const auto& [name, _] : inputs) {
    if (!spec.inputs.count(name)) {
      return Status::invalid_argument("unknown input " + name + " (the job declares: " +
                                      (declared.empty() ? "no inputs" : declared) + ")");
    }
  }
  for (const auto& [name, input] : spec.inputs) {
    if (!inputs.count(name) && !input.default_value) {
      return Status::invalid_argument(
          "input " + name + " has no value and no default (give --input " + name + "=VALUE)");
    }
  }
  std::string out;
  out.reserve(spec.input.size());
  Status st = scan_template(
      spec.input, [&](std::string_view text) { out += text; },
      [&](std::string_view name) {
        std::string key(name);
        if (auto it = inputs.find(key); it != inputs.end()) {
          out += it->second;
          return Status::ok();
        }
        auto declared_it = spec.inputs.find(key);
        if (declared_it == spec.inputs.end() || !declared_it->second.default_value) {
          return Status::invalid_argument("input " + key + " has no value and no default");
        }
        out += *declared_it->second.default_value;
        return Status::ok();
      });
  if (!st) return st.with_context("input");
  return out;
}

std::string_view tool_choice_name(ToolChoiceKind kind) {
  switch (kind) {
    case ToolChoiceKind::kAuto:
      return "auto";
    case ToolChoiceKind::kRequired:
      return "required";
    case ToolChoiceKind::kNone:
      return "none";
    case ToolChoiceKind::kTool:
      return "tool";
  }
  return "auto";
}

std::string_view approval_name(Approval approval) {
  return approval == Approval::kAlways ? "always" : "never";
}

}  // namespace mnemo::agent
