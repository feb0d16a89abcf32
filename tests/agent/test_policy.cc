// The operator's policy for tenants: the config file, and a job held to it.
#include <mnemo/agent/policy.h>

#include <catch2/catch.hpp>

using namespace mnemo;
using namespace mnemo::agent;

namespace {

OperatorConfig config_of(const std::string& yaml) {
  auto c = parse_operator_config(yaml, "serve.yaml");
  INFO(c.status().message());
  REQUIRE(c);
  return *c;
}

JobSpec job_of(const std::string& yaml) {
  auto j = parse_job_spec(yaml, "job");
  INFO(j.status().message());
  REQUIRE(j);
  return *j;
}

}  // namespace

TEST_CASE("a tenant's entry starts from the defaults and overrides what it lists") {
  OperatorConfig c = config_of(R"(
tenants:
  default:
    max_concurrent_jobs: 3
    sandbox: {memory: 256M}
  acme:
    sandbox: {memory: 2G, allow_none: true}
endpoints:
  ds: {base_url: "https://api.deepseek.com", models: [deepseek-chat], api_key_env: DS_KEY}
origins: ["https://console.example.com"]
)");
  CHECK(c.tenant("acme").ceilings.sandbox_memory == (2ull << 30));
  CHECK(c.tenant("acme").max_concurrent_jobs == 3);
  CHECK(c.tenant("acme").allow_sandbox_none);
  CHECK(c.tenant("other").ceilings.sandbox_memory == (256ull << 20));
  CHECK_FALSE(c.tenant("other").allow_sandbox_none);
  CHECK(c.endpoints.at("ds").models.front() == "deepseek-chat");
  CHECK(c.allowed_origins.size() == 1);
}

TEST_CASE("the config file is strict: errors name the file, line, column and field") {
  auto bad = [](const std::string& yaml) {
    auto c = parse_operator_config(yaml, "serve.yaml");
    return c ? std::string("ok") : c.status().message();
  };
  CHECK(bad("tenants:\n  default:\n    sandbx: {}\n") ==
        "serve.yaml:3:5: unknown field tenants.default.sandbx (did you mean tenants.default.sandbox?)");
  CHECK_THAT(bad("tenants:\n  acme:\n    remote_endpoints: [nope]\n"),
             Catch::Contains("names nope, which endpoints does not define"));
  CHECK_THAT(bad("endpoints:\n  x: {base_url: 'ftp://a'}\n"), Catch::Contains("http://"));
  CHECK_THAT(bad("origins: ['https://a.com/']\n"), Catch::Contains("without a path"));
  CHECK(bad("") == "ok");  // no file content: the defaults
}

TEST_CASE("defaults over a ceiling are lowered, and explicit values over it are refused") {
  OperatorConfig c = config_of("tenants:\n  default:\n    sandbox: {memory: 128M, disk: 10M}\n");
  auto lowered = apply_policy(job_of("name: a\ninput: x\n"), c, "acme");
  REQUIRE(lowered);
  CHECK(lowered->sandbox.memory_bytes == (128ull << 20));  // the job default 512M, lowered
  CHECK(lowered->sandbox.disk_bytes == (10ull << 20));     // no quota asked: the ceiling
  auto refused = apply_policy(job_of("name: a\ninput: x\nsandbox:\n  memory: 1G\n"), c, "acme");
  REQUIRE_FALSE(refused);
  CHECK(refused.status().code() == StatusCode::kPermissionDenied);
  CHECK(refused.status().message() ==
        "job:4:3: sandbox.memory 1G is over the ceiling of 128M the operator set for tenant acme");
  CHECK(apply_policy(job_of("name: a\ninput: x\nsandbox:\n  memory: 64M\n"), c, "acme"));
}

TEST_CASE("remote models resolve from the operator's endpoints, never from the job") {
  OperatorConfig c = config_of(R"(
tenants:
  acme: {remote_endpoints: [ds]}
endpoints:
  ds: {base_url: "https://api.deepseek.com", models: [deepseek-chat, deepseek-reasoner], api_key_env: DS_KEY}
)");
  auto ok = apply_policy(job_of("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: ds\n"), c, "acme");
  REQUIRE(ok);
  CHECK(ok->model.remote.base_url == "https://api.deepseek.com");
  CHECK(ok->model.remote.model == "deepseek-chat");
  CHECK(ok->model.remote.api_key_env == "DS_KEY");
  auto url = apply_policy(
      job_of("name: a\ninput: x\nmodel:\n  remote:\n    base_url: http://127.0.0.1\n    model: m\n"
             "    api_key_env: SECRET\n"),
      c, "acme");
  REQUIRE_FALSE(url);
  CHECK(url.status().code() == StatusCode::kPermissionDenied);
  CHECK_FALSE(apply_policy(job_of("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: ds\n"), c,
                           "globex"));  // not granted
  // Local runs (no policy) resolve the endpoint the same way, and need a config to do so.
  JobSpec local = job_of("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: ds\n");
  CHECK(resolve_endpoint(local, &c));
  CHECK(local.model.remote.base_url == "https://api.deepseek.com");
  JobSpec none = job_of("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: ds\n");
  CHECK_THAT(resolve_endpoint(none, nullptr).message(), Catch::Contains("no --config given"));
}

TEST_CASE("a tenant's http_get hosts must be within the operator's, and private ones only verbatim") {
  OperatorConfig c = config_of(
      "tenants:\n  default:\n    http_get_hosts: ['*.example.com', 'db.internal', '*']\n");
  auto ok = apply_policy(
      job_of("name: a\ninput: x\ntools:\n  - name: http_get\n    hosts: [a.example.com, db.internal, "
             "10.0.0.1]\n"),
      c, "acme");
  REQUIRE(ok);
  // 10.0.0.1 is covered by '*', but only what the operator lists as it is may be non-public.
  CHECK(ok->tools[0].private_hosts == std::vector<std::string>{"db.internal"});
  OperatorConfig narrow = config_of("tenants:\n  default:\n    http_get_hosts: ['*.example.com']\n");
  auto wide = apply_policy(job_of("name: a\ninput: x\ntools:\n  - name: http_get\n    hosts: ['*']\n"),
                           narrow, "acme");
  REQUIRE_FALSE(wide);
  CHECK_THAT(wide.status().message(), Catch::Contains("tools[0].hosts[0] *"));
}
