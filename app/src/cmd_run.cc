// `mnemo run JOB.yaml` and `mnemo resume ID`: agent jobs in the foreground (docs/jobs.md,
// docs/agent.md).
#include <mnemo/agent/job_spec.h>
#include <mnemo/agent/runtime.h>
#include <mnemo/base/file.h>

#include <boost/json/object.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "commands.h"
#include "default_model.h"
#include "job_runner.h"

namespace mnemo::app {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

struct RunOptions {
  std::string job_file;
  std::vector<std::string> inputs;
  std::string id;
  std::string workspace;
  JobRunOptions run;
};

Result<std::map<std::string, std::string>> parse_inputs(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::invalid_argument("--input " + item + ": expected NAME=VALUE");
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

int run_command(const RunOptions& opt) {
  auto text = read_file(opt.job_file, agent::kMaxJobBytes);
  if (!text) return fail(text.status().message());
  auto spec = agent::parse_job_spec(*text, opt.job_file);
  if (!spec) return fail(spec.status().message());
  auto inputs = parse_inputs(opt.inputs);
  if (!inputs) return fail(inputs.status().message());
  if (auto rendered = agent::render_input(*spec, *inputs); !rendered)
    return fail(rendered.status().message());
  if (const std::string dir = store_dir_or_default(opt.run.store); server_holds(dir)) {
    // A `mnemo serve` holds the store: the job runs there, as the operator's (its default model is
    // the server's).
    if (opt.run.tenant != "local")
      return fail("--tenant: a job run through the server holding " + dir + " is the operator's");
    json::object inputs_json;
    for (const auto& [k, v] : *inputs) inputs_json[k] = v;
    std::error_code ec;
    const std::string workspace =
        std::filesystem::absolute(opt.workspace.empty() ? std::filesystem::current_path(ec)
                                                        : std::filesystem::path(opt.workspace),
                                  ec)
            .lexically_normal()
            .string();
    JobRunOptions run = opt.run;
    run.job_id = opt.id;
    return run_via_server(run, json::object{{"op", "run"},
                                            {"spec_yaml", *text},
                                            {"spec_file", opt.job_file},
                                            {"inputs", std::move(inputs_json)},
                                            {"id", opt.id},
                                            {"workspace", workspace}});
  }
  std::string default_model;
  if (spec->model.kind == agent::ModelKind::kEmbedded && spec->model.embedded.dir.empty()) {
    auto dir = ensure_default_model();
    if (!dir) return fail(dir.status().message());
    default_model = *dir;
  }
  agent::NewJob job;
  job.spec = std::move(spec).value();
  job.spec_yaml = std::move(text).value();
  job.spec_file = opt.job_file;
  job.inputs = std::move(inputs).value();
  job.id = tenant_job_id(opt.run.tenant, opt.id.empty() ? agent::new_job_id(job.spec.name) : opt.id);
  job.tenant = opt.run.tenant;
  job.workspace = opt.workspace;
  if (job.spec.model.kind == agent::ModelKind::kEmbedded && job.spec.model.embedded.dir.empty()) {
    job.spec.model.embedded.dir = default_model;
  }
  JobRunOptions run = opt.run;
  run.job_id = job.id;
  auto shared = std::make_shared<agent::NewJob>(std::move(job));
  return run_job(run, [shared](agent::Runtime& rt, const agent::JobObserver& obs) {
    return rt.start(std::move(*shared), obs);
  });
}

void add_common(CLI::App* cmd, JobRunOptions& run) {
  cmd->add_option("--store", run.store, "store directory (default: MNEMO_HOME/store)");
  cmd->add_flag("--json", run.json,
                "print the job as JSON at the end (id, status, messages) instead of the answer");
  cmd->add_flag("-q,--quiet", run.quiet, "no progress lines on stderr");
  cmd->add_option("--config", run.config,
                  "an operator config (docs/server.md) whose endpoints jobs may name "
                  "(model.remote.endpoint)")
      ->check(CLI::ExistingFile);
}

}  // namespace

void register_run_commands(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* run = app.add_subcommand("run",
                                     "Run an agent job (YAML, docs/jobs.md) in the foreground: "
                                     "progress on stderr, the answer on stdout");
  run->add_option("job", opt->job_file, "the job file")->required();
  run->add_option("--input", opt->inputs, "NAME=VALUE for the job's input template (repeatable)");
  run->add_option("--id", opt->id,
                  "the job's id (default: NAME-DATE-TIME-XXXX); an existing id is an error");
  run->add_option("--workspace", opt->workspace,
                  "directory the tools work in (default: the current directory)");
  add_common(run, opt->run);
  run->add_option("--tenant", opt->run.tenant,
                  "create the job as this tenant's (default: local), as `mnemo serve` stores a "
                  "tenant's jobs; its policy is not applied (the CLI is the operator)");
  run->callback([opt, &ctx] { ctx.exit_code = run_command(*opt); });

  struct ResumeOptions {
    std::string id;
    std::string message;
    JobRunOptions run;
  };
  auto resume = std::make_shared<ResumeOptions>();
  CLI::App* res = app.add_subcommand("resume",
                                     "Continue a stopped job (crash, Ctrl-C, approval) or retry a "
                                     "failed one from its last committed step, without prefill");
  res->add_option("id", resume->id, "the job's id")->required();
  res->add_option("--message", resume->message,
                  "continue the conversation: a new user message for a job whose run ended (a new "
                  "run, its limits counted afresh)");
  add_common(res, resume->run);
  res->add_option("--tenant", resume->run.tenant, "whose job it is (default: local)");
  res->callback([resume, &ctx] {
    JobRunOptions run = resume->run;
    auto resolved = resolve_job_id(run.store, resume->id, run.tenant);  // a unique prefix will do
    if (!resolved) {
      ctx.exit_code = fail(resolved.status().message());
      return;
    }
    run.job_id = *resolved;
    std::string id = *resolved, message = resume->message;
    if (server_holds(store_dir_or_default(run.store))) {
      ctx.exit_code = run_via_server(
          run, json::object{{"op", "resume"}, {"id", id}, {"message", message}});
      return;
    }
    const bool quiet = run.quiet;
    ctx.exit_code = run_job(run, [id, message, quiet](agent::Runtime& rt,
                                                      const agent::JobObserver& obs) {
      if (message.empty() && !quiet) {
        // A finished job has nothing to resume: say so (its answer or JSON still follows).
        if (auto state = rt.load(id); state && state->finished && !state->retryable()) {
          std::fprintf(stderr,
                       "job %s already finished (%s); nothing to resume (`mnemo resume %s "
                       "--message TEXT` continues the conversation)\n",
                       id.c_str(), state->finish_reason.c_str(), id.c_str());
        }
      }
      return message.empty() ? rt.resume(id, obs) : rt.input(id, message, obs);
    });
  });
}

}  // namespace mnemo::app
