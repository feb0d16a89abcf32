// A tenant's job against its operator's policy: ceilings, sandbox mode, endpoints, hosts.
#include <mnemo/agent/policy.h>

#include <sys/resource.h>

#include <algorithm>
#include <fstream>

namespace mnemo::agent {
namespace {

std::string seconds_text(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

class Checker {
 public:
  Checker(JobSpec& spec, std::string_view tenant) : spec_(spec), tenant_(tenant) {}

  // An explicit value over the ceiling is refused; a default over it is lowered.
  template <typename T, typename Show>
  Status cap(std::string_view field, T& value, T ceiling, Show show) {
    if (value <= ceiling) return Status::ok();
    if (spec_.given.count(field)) {
      return Status::permission_denied(spec_.where(field) + " " + show(value) +
                                       " is over the ceiling of " + show(ceiling) +
                                       " the operator set for tenant " + std::string(tenant_));
    }
    value = ceiling;
    return Status::ok();
  }

 private:
  JobSpec& spec_;
  std::string_view tenant_;
};

bool covered(std::string_view host, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (p == "*" || p == host) return true;
    // "*.example.com" covers "a.example.com" and "*.a.example.com".
    if (p.size() > 2 && p.rfind("*.", 0) == 0) {
      std::string_view suffix = std::string_view(p).substr(1);
      std::string_view h = host.rfind("*.", 0) == 0 ? host.substr(1) : host;
      if (h.size() >= suffix.size() && h.substr(h.size() - suffix.size()) == suffix &&
          (h.size() > suffix.size() || host.rfind("*.", 0) == 0))
        return true;
    }
  }
  return false;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace

std::string format_size(uint64_t bytes) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + units[u];
}

const TenantPolicy& OperatorConfig::tenant(std::string_view name) const {
  auto it = tenants.find(name);
  return it == tenants.end() ? defaults : it->second;
}

Status resolve_endpoint(JobSpec& spec, const OperatorConfig* config) {
  if (spec.model.kind != ModelKind::kRemote || spec.model.remote.endpoint.empty())
    return Status::ok();
  RemoteModelSpec& r = spec.model.remote;
  const RemoteEndpoint* e = nullptr;
  if (config) {
    auto it = config->endpoints.find(r.endpoint);
    if (it != config->endpoints.end()) e = &it->second;
  }
  if (!e) {
    std::string names;
    if (config) {
      for (const auto& [name, ep] : config->endpoints) names += (names.empty() ? "" : ", ") + name;
    }
    return Status::invalid_argument(
        spec.where("model.remote.endpoint") + " names endpoint " + r.endpoint +
        ", which the operator's config does not define (" +
        (config ? "configured: " + (names.empty() ? std::string("none") : names)
                : std::string("no --config given")) +
        ")");
  }
  if (r.model.empty()) {
    r.model = e->models.empty() ? std::string() : e->models.front();
  } else if (!e->models.empty() &&
             std::find(e->models.begin(), e->models.end(), r.model) == e->models.end()) {
    return Status::permission_denied(spec.where("model.remote.model") + " " + r.model +
                                     " is not a model of endpoint " + e->name + " (" +
                                     joined(e->models) + ")");
  }
  if (r.model.empty())
    return Status::invalid_argument("endpoint " + e->name + " names no model; give model.remote.model");
  r.base_url = e->base_url;
  r.api_key_env = e->api_key_env;
  return Status::ok();
}

Status check_machine_limits(const JobSpec& spec) {
  // The sandbox sets RLIMIT_NPROC to sandbox.pids; above our own hard limit that fails in every
  // call, so it is refused up front.
  rlimit nproc{};
  uint64_t limit = UINT64_MAX;
  if (getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_max != RLIM_INFINITY)
    limit = nproc.rlim_max;
  std::ifstream threads("/proc/sys/kernel/threads-max");
  uint64_t threads_max = 0;
  if (threads >> threads_max && threads_max > 0) limit = std::min(limit, threads_max);
  if (spec.sandbox.pids > limit) {
    return Status::invalid_argument(spec.where("sandbox.pids") + " " +
                                    std::to_string(spec.sandbox.pids) +
                                    " is over this machine's process limit of " +
                                    std::to_string(limit));
  }
  return Status::ok();
}

Result<JobSpec> apply_policy(const JobSpec& in, const OperatorConfig& config,
                             std::string_view tenant) {
  JobSpec spec = in;
  const TenantPolicy& policy = config.tenant(tenant);
  const Ceilings& c = policy.ceilings;
  Checker check(spec, tenant);
  if (spec.sandbox.mode == sandbox::SandboxMode::kNone && !policy.allow_sandbox_none) {
    return Status::permission_denied(
        spec.where("sandbox.mode") + " none is not allowed for tenant " + std::string(tenant) +
        " (the operator grants it with sandbox.allow_none in the tenant's policy)");
  }
  auto count = [](auto v) { return std::to_string(v); };
  auto duration = [](std::chrono::milliseconds d) { return seconds_text(d); };
  auto size = [](uint64_t b) { return format_size(b); };
  LimitsSpec& l = spec.limits;
  MNEMO_RETURN_IF_ERROR(check.cap("limits.max_steps", l.max_steps, c.max_steps, count));
  MNEMO_RETURN_IF_ERROR(check.cap("limits.max_tokens", l.max_tokens, c.max_tokens, count));
  MNEMO_RETURN_IF_ERROR(
      check.cap("limits.max_turn_tokens", l.max_turn_tokens, c.max_turn_tokens, count));
  MNEMO_RETURN_IF_ERROR(check.cap("limits.timeout", l.timeout, c.timeout, duration));
  MNEMO_RETURN_IF_ERROR(check.cap("limits.tool_timeout", l.tool_timeout, c.tool_timeout, duration));
  SandboxSpec& s = spec.sandbox;
  MNEMO_RETURN_IF_ERROR(check.cap("sandbox.memory", s.memory_bytes, c.sandbox_memory, size));
  int64_t cpu = s.cpu.count();
  MNEMO_RETURN_IF_ERROR(check.cap("sandbox.cpu_seconds", cpu, c.sandbox_cpu.count(), count));
  s.cpu = std::chrono::seconds(cpu);
  MNEMO_RETURN_IF_ERROR(check.cap("sandbox.pids", s.pids, c.sandbox_pids, count));
  MNEMO_RETURN_IF_ERROR(check.cap("sandbox.timeout", s.timeout, c.sandbox_timeout, duration));
  if (s.disk_bytes == 0) s.disk_bytes = UINT64_MAX;  // no quota asked: the ceiling is the quota
  MNEMO_RETURN_IF_ERROR(check.cap("sandbox.disk", s.disk_bytes, c.workspace_bytes, size));

  if (spec.model.kind == ModelKind::kEmbedded) {
    if (!spec.model.embedded.dir.empty()) {
      return Status::permission_denied(spec.where("model.embedded.dir") +
                                       ": tenant jobs run on the server's model; leave "
                                       "model.embedded.dir out");
    }
    if (config.served_precision && spec.given.count("model.embedded.precision") &&
        spec.model.embedded.precision != *config.served_precision) {
      return Status::permission_denied(
          spec.where("model.embedded.precision") + " " +
          std::string(inference::precision_name(spec.model.embedded.precision)) +
          ": the server runs its model at " +
          std::string(inference::precision_name(*config.served_precision)));
    }
    if (config.served_precision) spec.model.embedded.precision = *config.served_precision;
  } else {
    const RemoteModelSpec& r = spec.model.remote;
    if (r.endpoint.empty()) {
      return Status::permission_denied(
          spec.where("model.remote.base_url") +
          ": tenant jobs name an endpoint the operator configured (model.remote.endpoint: "
          "NAME), never a URL or a key variable; this tenant may use: " +
          joined(policy.remote_endpoints));
    }
    if (std::find(policy.remote_endpoints.begin(), policy.remote_endpoints.end(), r.endpoint) ==
            policy.remote_endpoints.end() &&
        std::find(policy.remote_endpoints.begin(), policy.remote_endpoints.end(), "*") ==
            policy.remote_endpoints.end()) {
      return Status::permission_denied(spec.where("model.remote.endpoint") + " " + r.endpoint +
                                       " is not granted to tenant " + std::string(tenant) +
                                       " (granted: " + joined(policy.remote_endpoints) + ")");
    }
    MNEMO_RETURN_IF_ERROR(resolve_endpoint(spec, &config));
  }

  for (size_t i = 0; i < spec.tools.size(); ++i) {
    ToolSpec& t = spec.tools[i];
    // Non-public addresses only through hosts the operator lists as they are.
    std::erase_if(t.private_hosts, [&](const std::string& h) {
      return std::find(policy.http_get_hosts.begin(), policy.http_get_hosts.end(), h) ==
             policy.http_get_hosts.end();
    });
    for (size_t j = 0; j < t.hosts.size(); ++j) {
      if (!covered(t.hosts[j], policy.http_get_hosts)) {
        return Status::permission_denied(
            "tools[" + std::to_string(i) + "].hosts[" + std::to_string(j) + "] " + t.hosts[j] +
            " is not among the hosts the operator allows tenant " + std::string(tenant) + " (" +
            joined(policy.http_get_hosts) + ")");
      }
    }
  }
  MNEMO_RETURN_IF_ERROR(check_machine_limits(spec));
  return spec;
}

}  // namespace mnemo::agent
