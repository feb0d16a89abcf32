#include <catch2/catch.hpp>

#include <mnemo/agent/job_spec.h>

#include <string>

namespace {

using namespace mnemo;
using namespace mnemo::agent;

constexpr const char* kFile = "jobs/fix.yaml";

// The error message a job fails with, or "ok" when it parses.
std::string error_of(const std::string& yaml) {
  auto spec = parse_job_spec(yaml, kFile);
  return spec ? std::string("ok") : spec.status().message();
}

JobSpec parse_ok(const std::string& yaml) {
  auto spec = parse_job_spec(yaml, kFile);
  INFO(spec.status().message());
  REQUIRE(spec);
  return *spec;
}

}  // namespace

TEST_CASE("a full job parses every field") {
  JobSpec spec = parse_ok(R"(name: fix-bug.v2
model:
  embedded:
    dir: /models/small
    precision: bf16
instructions: You fix bugs.
input: "Fix {{inputs.issue}} in {{ inputs.repo }}."
inputs:
  issue:
    description: the issue number
  repo: mnemo
tools:
  - shell
  - name: write_file
    approval: always
tool_choice: write_file
sandbox:
  mode: none
  memory: 1G
  cpu_seconds: 120
  pids: 32
  timeout: 90s
limits:
  max_steps: 12
  max_tokens: 4096
  timeout: 2h
  tool_timeout: 500ms
sampling:
  temperature: 0.5
  top_p: 0.9
  seed: 1234
durability:
  snapshot_every: 4
)");
  CHECK(spec.name == "fix-bug.v2");
  CHECK(spec.model.kind == ModelKind::kEmbedded);
  CHECK(spec.model.embedded.dir == "/models/small");
  CHECK(spec.model.embedded.precision == inference::Precision::kBf16);
  CHECK(spec.instructions == "You fix bugs.");
  REQUIRE(spec.inputs.size() == 2);
  CHECK_FALSE(spec.inputs.at("issue").default_value);
  CHECK(spec.inputs.at("issue").description == "the issue number");
  CHECK(*spec.inputs.at("repo").default_value == "mnemo");
  REQUIRE(spec.tools.size() == 2);
  CHECK(spec.tools[0].name == "shell");
  CHECK(spec.tools[0].approval == Approval::kNever);
  CHECK(spec.tools[1].approval == Approval::kAlways);
  CHECK(spec.find_tool("write_file") == &spec.tools[1]);
  CHECK(spec.tool_choice.kind == ToolChoiceKind::kTool);
  CHECK(spec.tool_choice.tool == "write_file");
  CHECK(spec.sandbox.mode == sandbox::SandboxMode::kNone);
  CHECK(spec.sandbox.memory_bytes == (1ull << 30));
  CHECK(spec.sandbox.cpu == std::chrono::seconds(120));
  CHECK(spec.sandbox.pids == 32);
  CHECK(spec.sandbox.timeout == std::chrono::seconds(90));
  CHECK(spec.limits.max_steps == 12);
  CHECK(spec.limits.max_tokens == 4096);
  CHECK(spec.limits.timeout == std::chrono::hours(2));
  CHECK(spec.limits.tool_timeout == std::chrono::milliseconds(500));
  CHECK(spec.sampling.temperature == Approx(0.5));
  CHECK(spec.sampling.top_p == Approx(0.9));
  CHECK(spec.sampling.seed == 1234u);
  CHECK(spec.durability.snapshot_every == 4);
}

TEST_CASE("a minimal job gets the documented defaults") {
  JobSpec spec = parse_ok("name: hi\ninput: hello\n");
  CHECK(spec.model.kind == ModelKind::kEmbedded);
  CHECK(spec.model.embedded.dir.empty());
  CHECK(spec.model.embedded.precision == inference::Precision::kF32);
  CHECK(spec.tools.empty());
  CHECK(spec.tool_choice.kind == ToolChoiceKind::kAuto);
  CHECK(spec.sandbox.mode == sandbox::SandboxMode::kIsolated);
  CHECK(spec.sandbox.memory_bytes == (512ull << 20));
  CHECK(spec.limits.max_steps == 50);
  CHECK(spec.limits.timeout == std::chrono::minutes(30));
  CHECK(spec.sampling.temperature == 0.0f);
  CHECK_FALSE(spec.sampling.seed);
  CHECK(spec.durability.snapshot_every == 1);
}

TEST_CASE("a remote model names its endpoint, model and key variable") {
  JobSpec spec = parse_ok(R"(name: r
instructions: be brief
model:
  remote:
    base_url: https://api.deepseek.com
    model: deepseek-chat
    api_key_env: DEEPSEEK_API_KEY
)");
  CHECK(spec.model.kind == ModelKind::kRemote);
  CHECK(spec.model.remote.base_url == "https://api.deepseek.com");
  CHECK(spec.model.remote.model == "deepseek-chat");
  CHECK(spec.model.remote.api_key_env == "DEEPSEEK_API_KEY");
}

TEST_CASE("the example jobs load") {
  auto hello = load_job_spec(std::string(MNEMO_SOURCE_DIR) + "/examples/jobs/hello.yaml");
  INFO(hello.status().message());
  REQUIRE(hello);
  CHECK(hello->tool_choice.kind == ToolChoiceKind::kRequired);
  REQUIRE(hello->find_tool("shell"));
  CHECK(hello->model.embedded.dir.empty());

  auto demo = load_job_spec(std::string(MNEMO_SOURCE_DIR) + "/examples/jobs/resume-demo.yaml");
  INFO(demo.status().message());
  REQUIRE(demo);
  CHECK(demo->tool_choice.kind == ToolChoiceKind::kRequired);
  CHECK(demo->limits.max_steps == 30);
  CHECK(demo->sampling.seed);
  for (const ToolSpec& t : demo->tools) CHECK((t.name == "read_file" || t.name == "list_dir"));
}

TEST_CASE("a missing job file is an error naming it") {
  auto spec = load_job_spec("/nonexistent/job.yaml");
  REQUIRE_FALSE(spec);
  CHECK(spec.status().message().find("/nonexistent/job.yaml") != std::string::npos);
}

TEST_CASE("errors name file, line, column and field for bad values") {
  CHECK(error_of("name: a\ninput: x\nlimits:\n    max_steps: 0\n") ==
        "jobs/fix.yaml:4:16: limits.max_steps must be a positive integer");
  CHECK(error_of("name: a\ninput: x\nlimits:\n  max_steps: \"30\"\n") ==
        "jobs/fix.yaml:4:14: limits.max_steps must be a positive integer");
  CHECK(error_of("name: a\ninput: x\nlimits:\n  max_steps: [1]\n") ==
        "jobs/fix.yaml:4:14: limits.max_steps must be a positive integer");
  CHECK(error_of("name: a\ninput: x\nlimits:\n  timeout: 30\n") ==
        "jobs/fix.yaml:4:12: limits.timeout must be a duration like 30s, 5m or 2h");
  CHECK(error_of("name: a\ninput: x\nsandbox:\n  memory: 1X\n") ==
        "jobs/fix.yaml:4:11: sandbox.memory must be a size like 256M or 1G");
  CHECK(error_of("name: a\ninput: x\nsampling:\n  top_p: 1.5\n") ==
        "jobs/fix.yaml:4:10: sampling.top_p must be in (0, 1]");
  CHECK(error_of("name: a\ninput: x\nsampling:\n  temperature: hot\n") ==
        "jobs/fix.yaml:4:16: sampling.temperature must be a number");
  CHECK(error_of("name: a\ninput: x\nlimits: 5\n") == "jobs/fix.yaml:3:9: limits must be a mapping");
  CHECK(error_of("name: a\ninput: x\ndurability:\n  snapshot_every: often\n") ==
        "jobs/fix.yaml:4:19: durability.snapshot_every must be step or a positive integer");
}

TEST_CASE("bad enum values list the choices") {
  CHECK(error_of("name: a\ninput: x\nsandbox:\n  mode: jail\n") ==
        "jobs/fix.yaml:4:9: sandbox.mode must be one of: isolated, none");
  CHECK(error_of("name: a\ninput: x\ntools:\n  - name: shell\n    approval: sometimes\n") ==
        "jobs/fix.yaml:5:15: tools[0].approval must be one of: never, always");
  CHECK(error_of("name: a\ninput: x\nmodel:\n  embedded:\n    precision: fp8\n") ==
        "jobs/fix.yaml:5:16: model.embedded.precision must be one of: fp32, bf16, serving");
}

TEST_CASE("unknown fields are errors suggesting the closest known key") {
  CHECK(error_of("name: a\ninput: x\nlimts:\n  max_steps: 3\n") ==
        "jobs/fix.yaml:3:1: unknown field limts (did you mean limits?)");
  CHECK(error_of("name: a\ninput: x\nlimits:\n  max_step: 3\n") ==
        "jobs/fix.yaml:4:3: unknown field limits.max_step (did you mean limits.max_steps?)");
  CHECK(error_of("name: a\ninput: x\nsampling:\n  zzzzzzzz: 1\n") ==
        "jobs/fix.yaml:4:3: unknown field sampling.zzzzzzzz (known: temperature top_p seed)");
}

TEST_CASE("duplicate fields are errors") {
  CHECK(error_of("name: a\ninput: x\nname: b\n") == "jobs/fix.yaml:3:1: duplicate field name");
}

TEST_CASE("missing required fields are errors") {
  CHECK(error_of("input: x\n") == "jobs/fix.yaml:1:1: name is required");
  CHECK(error_of("name: a\ntools: [shell]\n") == "jobs/fix.yaml:1:1: input or instructions is required");
  CHECK(error_of("") == "jobs/fix.yaml:1:1: the job is empty (it needs at least name and input)");
  CHECK(error_of("- a\n- b\n") == "jobs/fix.yaml:1:1: a job must be a mapping of fields (name, input, ...)");
  CHECK(error_of("name: a\ninput: x\nmodel:\n  remote:\n    model: m\n") ==
        "jobs/fix.yaml:5:5: model.remote needs endpoint (a configured one) or base_url");
  CHECK(error_of("name: a\ninput: x\nmodel:\n  embedded:\n  remote:\n    model: m\n") ==
        "jobs/fix.yaml:5:3: model must be either embedded or remote, not both");
}

TEST_CASE("tool lists reject duplicates and tool_choice must name a declared tool") {
  CHECK(error_of("name: a\ninput: x\ntools:\n  - shell\n  - read_file\n  - shell\n") ==
        "jobs/fix.yaml:6:5: tools[2] duplicates tool shell (tools[0])");
  CHECK(error_of("name: a\ninput: x\ntools: [shell]\ntool_choice: http_get\n") ==
        "jobs/fix.yaml:4:14: tool_choice must be auto, required, none or a tool in tools; http_get is not "
        "declared (tools: shell)");
  CHECK(error_of("name: a\ninput: x\ntool_choice: required\n") ==
        "jobs/fix.yaml:3:14: tool_choice required needs at least one tool in tools");
  JobSpec spec = parse_ok("name: a\ninput: x\ntools: [shell]\ntool_choice: none\n");
  CHECK(spec.tool_choice.kind == ToolChoiceKind::kNone);
}

TEST_CASE("malformed YAML is an error with its position") {
  std::string message = error_of("name: a\ninput: [x\n");
  CHECK(message.rfind("jobs/fix.yaml:", 0) == 0);
  CHECK(message.find("invalid YAML") != std::string::npos);
  CHECK(error_of("name: a\ninput: x\n---\nname: b\n") == "jobs/fix.yaml:4:1: a job file holds one YAML document");
}

TEST_CASE("placeholders must name declared inputs") {
  CHECK(error_of("name: a\ninput: \"hi {{inputs.who}}\"\n") ==
        "jobs/fix.yaml:2:8: input uses {{inputs.who}}, which inputs does not declare");
  CHECK(error_of("name: a\ninput: \"hi {{input.who}}\"\ninputs:\n  who: x\n") ==
        "jobs/fix.yaml:2:8: input has a malformed placeholder {{input.who}} (placeholders are {{inputs.NAME}})");
  CHECK(error_of("name: a\ninput: \"hi {{inputs.who\"\ninputs:\n  who: x\n") ==
        "jobs/fix.yaml:2:8: input has an unterminated placeholder {{inputs.who");
}

TEST_CASE("render_input fills placeholders from values, then defaults") {
  JobSpec spec = parse_ok(
      "name: a\ninput: \"{{inputs.greeting}}, {{ inputs.who }}! {{inputs.who}}\"\ninputs:\n  greeting: Hello\n"
      "  who:\n");
  auto rendered = render_input(spec, {{"who", "Ada"}});
  REQUIRE(rendered);
  CHECK(*rendered == "Hello, Ada! Ada");
  auto overridden = render_input(spec, {{"who", "Ada"}, {"greeting", "Hi"}});
  REQUIRE(overridden);
  CHECK(*overridden == "Hi, Ada! Ada");
}

TEST_CASE("render_input rejects missing and unknown inputs") {
  JobSpec spec = parse_ok("name: a\ninput: \"Hello {{inputs.who}}\"\ninputs:\n  who:\n");
  auto missing = render_input(spec, {});
  REQUIRE_FALSE(missing);
  CHECK(missing.status().message() == "input who has no value and no default (give --input who=VALUE)");
  auto unknown = render_input(spec, {{"who", "x"}, {"whom", "y"}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.status().message() == "unknown input whom (the job declares: who)");
  JobSpec plain = parse_ok("name: a\ninput: no placeholders\n");
  auto none = render_input(plain, {{"x", "1"}});
  REQUIRE_FALSE(none);
  CHECK(none.status().message() == "unknown input x (the job declares: no inputs)");
  auto rendered = render_input(plain, {});
  REQUIRE(rendered);
  CHECK(*rendered == "no placeholders");
}

TEST_CASE("unknown tools and schema keywords are named at their place in the file") {
  CHECK(error_of("name: a\ninput: x\ntools:\n  - shell\n  - sehll\n") ==
        "jobs/fix.yaml:5:5: tools[1]: unknown tool sehll (built-ins: http_get, list_dir, "
        "read_file, search_history, shell, write_file; a job-defined tool needs a command)");
  const std::string bad_schema =
      "name: a\ninput: x\ntools:\n  - name: t\n    command: echo\n    parameters:\n"
      "      type: object\n      properties:\n        x: {type: string, patternProperties: {}}\n";
  const std::string e = error_of(bad_schema);
  CHECK(e.rfind("jobs/fix.yaml:7:7: tools[0].parameters: ", 0) == 0);
  CHECK(e.find("patternProperties") != std::string::npos);
}

TEST_CASE("a job's size, its expansion through aliases and its depth are bounded") {
  std::string bomb = "name: a\ninput: x\nsampling:\n  seed: 1\nx0: &x0 [1, 2, 3, 4, 5, 6, 7, 8]\n";
  for (int i = 1; i < 8; ++i) {
    const std::string p = "*x" + std::to_string(i - 1);
    bomb += "x" + std::to_string(i) + ": &x" + std::to_string(i) + " [" + p + ", " + p + ", " + p +
            ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
  }
  CHECK_THAT(error_of(bomb), Catch::Contains("more than 20000 YAML nodes"));
  CHECK_THAT(error_of("name: a\ninput: x\nsampling: " + std::string(100, '[') + std::string(100, ']')),
             Catch::Contains("nests more than 64 levels"));
  CHECK_THAT(error_of("name: a\ninput: " + std::string(2 << 20, 'x') + "\n"),
             Catch::Contains("a job holds at most 1048576"));
}

TEST_CASE("sizes and durations may be quoted (JSON jobs), and sandbox.disk is a size") {
  JobSpec spec = parse_ok(
      R"({"name": "a", "input": "x", "sandbox": {"memory": "1G", "timeout": "2m", "disk": "64M"}})");
  CHECK(spec.sandbox.memory_bytes == (1ull << 30));
  CHECK(spec.sandbox.timeout == std::chrono::minutes(2));
  CHECK(spec.sandbox.disk_bytes == (64ull << 20));
  CHECK(spec.given.count("sandbox.memory"));
  CHECK_FALSE(spec.given.count("limits.max_steps"));
  CHECK(spec.where("sandbox.memory").rfind("jobs/fix.yaml:1:", 0) == 0);
}

TEST_CASE("a remote model names a configured endpoint or a URL, not both") {
  JobSpec e = parse_ok("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: deepseek\n");
  CHECK(e.model.remote.endpoint == "deepseek");
  CHECK(error_of("name: a\ninput: x\nmodel:\n  remote:\n    endpoint: d\n    base_url: http://x\n") ==
        "jobs/fix.yaml:6:5: model.remote.base_url comes from the endpoint; give either endpoint or "
        "base_url");
}

TEST_CASE("http_get takes the hosts it may reach, and hosts are for http_get only") {
  JobSpec spec = parse_ok(
      "name: a\ninput: x\ntools:\n  - name: http_get\n    hosts: [example.com, '*.github.com', "
      "127.0.0.1]\n");
  REQUIRE(spec.tools.size() == 1);
  CHECK(spec.tools[0].hosts.size() == 3);
  // Non-public addresses only through hosts listed without a wildcard.
  CHECK(spec.tools[0].private_hosts == std::vector<std::string>{"example.com", "127.0.0.1"});
  CHECK_THAT(error_of("name: a\ninput: x\ntools:\n  - name: shell\n    hosts: [a.com]\n"),
             Catch::Contains("tools[0].hosts is only for http_get"));
  CHECK_THAT(error_of("name: a\ninput: x\ntools:\n  - name: http_get\n    hosts: ['a*b.com']\n"),
             Catch::Contains("must be a host name"));
}
