// The operator's YAML configuration of `mnemo serve` (docs/server.md): strict like job files, every
// error with file:line:col and the field.
#include <mnemo/agent/policy.h>
#include <mnemo/base/file.h>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <limits>

#include "yaml_fields.h"

namespace mnemo::agent {
namespace {

using yaml::error_at;
using yaml::Fields;
using yaml::Source;

constexpr uint64_t kMaxCount = std::numeric_limits<uint32_t>::max();

bool env_name(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

Result<std::vector<std::string>> read_list(const Source& src, const YAML::Node& node,
                                           const std::string& field) {
  if (!node.IsSequence()) return error_at(src, node.Mark(), field + " must be a list");
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = yaml::read_string(src, node[i], field + "[" + std::to_string(i) + "]");
    if (!s) return s.status();
    if (s->empty()) return error_at(src, node[i].Mark(), field + " items must not be empty");
    out.push_back(*s);
  }
  return out;
}

Status parse_limits(const Source& src, const YAML::Node& node, const std::string& path,
                    Ceilings& c) {
  auto f = Fields::read(src, node, path,
                        {"max_steps", "max_tokens", "max_turn_tokens", "timeout", "tool_timeout",
                         "prompt_tokens"});
  if (!f) return f.status();
  auto count = [&](const char* key, auto& out) -> Status {
    if (const yaml::Field* x = f->find(key)) {
      auto v = yaml::read_positive_int(src, x->value, path + "." + key, kMaxCount);
      if (!v) return v.status();
      out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    }
    return Status::ok();
  };
  auto duration = [&](const char* key, std::chrono::milliseconds& out) -> Status {
    if (const yaml::Field* x = f->find(key)) {
      auto v = yaml::read_duration(src, x->value, path + "." + key);
      if (!v) return v.status();
      out = *v;
    }
    return Status::ok();
  };
  MNEMO_RETURN_IF_ERROR(count("max_steps", c.max_steps));
  MNEMO_RETURN_IF_ERROR(count("max_tokens", c.max_tokens));
  MNEMO_RETURN_IF_ERROR(count("max_turn_tokens", c.max_turn_tokens));
  MNEMO_RETURN_IF_ERROR(count("prompt_tokens", c.prompt_tokens));
  MNEMO_RETURN_IF_ERROR(duration("timeout", c.timeout));
  return duration("tool_timeout", c.tool_timeout);
}

Status parse_sandbox(const Source& src, const YAML::Node& node, const std::string& path,
                     TenantPolicy& p) {
  auto f = Fields::read(src, node, path,
                        {"allow_none", "memory", "cpu_seconds", "pids", "timeout", "disk"});
  if (!f) return f.status();
  Ceilings& c = p.ceilings;
  if (const yaml::Field* x = f->find("allow_none")) {
    auto v = yaml::read_bool(src, x->value, path + ".allow_none");
    if (!v) return v.status();
    p.allow_sandbox_none = *v;
  }
  for (auto [key, out] : {std::pair<const char*, uint64_t*>{"memory", &c.sandbox_memory},
                          {"disk", &c.workspace_bytes}}) {
    if (const yaml::Field* x = f->find(key)) {
      auto v = yaml::read_size(src, x->value, path + "." + key);
      if (!v) return v.status();
      *out = *v;
    }
  }
  if (const yaml::Field* x = f->find("cpu_seconds")) {
    auto v = yaml::read_positive_int(src, x->value, path + ".cpu_seconds", kMaxCount);
    if (!v) return v.status();
    c.sandbox_cpu = std::chrono::seconds(*v);
  }
  if (const yaml::Field* x = f->find("pids")) {
    auto v = yaml::read_positive_int(src, x->value, path + ".pids", kMaxCount);
    if (!v) return v.status();
    c.sandbox_pids = static_cast<uint32_t>(*v);
  }
  if (const yaml::Field* x = f->find("timeout")) {
    auto v = yaml::read_duration(src, x->value, path + ".timeout");
    if (!v) return v.status();
    c.sandbox_timeout = *v;
  }
  return Status::ok();
}

Status parse_tenant(const Source& src, const YAML::Node& node, const std::string& path,
                    TenantPolicy& p) {
  if (node.IsNull()) return Status::ok();  // "acme:" alone: the defaults
  auto f = Fields::read(src, node, path,
                        {"max_concurrent_jobs", "limits", "sandbox", "remote_endpoints",
                         "http_get_hosts"});
  if (!f) return f.status();
  if (const yaml::Field* x = f->find("max_concurrent_jobs")) {
    auto v = yaml::read_positive_int(src, x->value, path + ".max_concurrent_jobs", 100000);
    if (!v) return v.status();
    p.max_concurrent_jobs = static_cast<uint32_t>(*v);
  }
  if (const yaml::Field* x = f->find("limits"))
    MNEMO_RETURN_IF_ERROR(parse_limits(src, x->value, path + ".limits", p.ceilings));
  if (const yaml::Field* x = f->find("sandbox"))
    MNEMO_RETURN_IF_ERROR(parse_sandbox(src, x->value, path + ".sandbox", p));
  if (const yaml::Field* x = f->find("remote_endpoints")) {
    auto v = read_list(src, x->value, path + ".remote_endpoints");
    if (!v) return v.status();
    p.remote_endpoints = *v;
  }
  if (const yaml::Field* x = f->find("http_get_hosts")) {
    auto v = read_list(src, x->value, path + ".http_get_hosts");
    if (!v) return v.status();
    p.http_get_hosts = *v;
  }
  return Status::ok();
}

Status parse_endpoint(const Source& src, const std::string& name, const YAML::Node& node,
                      RemoteEndpoint& e) {
  const std::string path = "endpoints." + name;
  auto f = Fields::read(src, node, path, {"base_url", "models", "api_key_env"});
  if (!f) return f.status();
  e.name = name;
  const yaml::Field* url = f->find("base_url");
  if (!url) return error_at(src, f->mark(), path + ".base_url is required");
  auto u = yaml::read_string(src, url->value, path + ".base_url");
  if (!u) return u.status();
  if (u->rfind("http://", 0) != 0 && u->rfind("https://", 0) != 0)
    return error_at(src, url->value.Mark(), path + ".base_url must start with http:// or https://");
  e.base_url = *u;
  if (const yaml::Field* x = f->find("models")) {
    auto v = read_list(src, x->value, path + ".models");
    if (!v) return v.status();
    e.models = *v;
  }
  if (const yaml::Field* x = f->find("api_key_env")) {
    auto v = yaml::read_string(src, x->value, path + ".api_key_env");
    if (!v) return v.status();
    if (!env_name(*v))
      return error_at(src, x->value.Mark(), path + ".api_key_env must be an environment variable name");
    e.api_key_env = *v;
  }
  return Status::ok();
}

Status parse_root(const Source& src, const YAML::Node& root, OperatorConfig& out) {
  if (root.IsNull()) return Status::ok();
  auto f = Fields::read(src, root, "", {"tenants", "endpoints", "origins"});
  if (!f) return f.status();
  if (const yaml::Field* t = f->find("tenants")) {
    if (!t->value.IsMap()) return error_at(src, t->value.Mark(), "tenants must be a mapping");
    // The defaults first: every other tenant starts from them.
    if (YAML::Node d = t->value["default"]; d)
      MNEMO_RETURN_IF_ERROR(parse_tenant(src, d, "tenants.default", out.defaults));
    for (const auto& entry : t->value) {
      const std::string name = entry.first.Scalar();
      if (name == "default") continue;
      if (name.empty() || name.size() > 64)
        return error_at(src, entry.first.Mark(), "tenants: a tenant name has 1-64 characters");
      TenantPolicy p = out.defaults;
      MNEMO_RETURN_IF_ERROR(parse_tenant(src, entry.second, "tenants." + name, p));
      out.tenants.emplace(name, std::move(p));
    }
  }
  if (const yaml::Field* e = f->find("endpoints")) {
    if (!e->value.IsMap()) return error_at(src, e->value.Mark(), "endpoints must be a mapping");
    for (const auto& entry : e->value) {
      RemoteEndpoint ep;
      MNEMO_RETURN_IF_ERROR(parse_endpoint(src, entry.first.Scalar(), entry.second, ep));
      out.endpoints.emplace(ep.name, std::move(ep));
    }
  }
  if (const yaml::Field* o = f->find("origins")) {
    auto v = read_list(src, o->value, "origins");
    if (!v) return v.status();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string& origin = (*v)[i];
      if ((origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) ||
          origin.back() == '/') {
        return error_at(src, o->value[i].Mark(),
                        "origins[" + std::to_string(i) +
                            "] must be scheme://host[:port] without a path (a browser's Origin)");
      }
    }
    out.allowed_origins = *v;
  }
  // Every endpoint a tenant is granted exists.
  auto check_grants = [&](const std::string& who, const TenantPolicy& p) -> Status {
    for (const std::string& name : p.remote_endpoints) {
      if (name != "*" && !out.endpoints.count(name)) {
        return Status::invalid_argument(src.file + ": tenants." + who + ".remote_endpoints names " +
                                        name + ", which endpoints does not define");
      }
    }
    return Status::ok();
  };
  MNEMO_RETURN_IF_ERROR(check_grants("default", out.defaults));
  for (const auto& [name, p] : out.tenants) MNEMO_RETURN_IF_ERROR(check_grants(name, p));
  return Status::ok();
}

}  // namespace

Result<OperatorConfig> parse_operator_config(std::string_view yaml_text, std::string_view file) {
  Source src{std::string(file)};
  OperatorConfig out;
  out.file = std::string(file);
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    MNEMO_RETURN_IF_ERROR(parse_root(src, root, out));
  } catch (const YAML::DeepRecursion& e) {
    return error_at(src, e.mark, "invalid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    return error_at(src, e.mark, "invalid YAML: " + e.msg);
  }
  return out;
}

Result<OperatorConfig> load_operator_config(const std::string& path) {
  auto text = read_file(path, kMaxJobBytes);
  if (!text) return text.status();
  return parse_operator_config(*text, path);
}

}  // namespace mnemo::agent
