// `mnemo jobs list|show|logs|cancel|approve|deny|delete`: the jobs of a store, one tenant's at a
// time. list, show and logs read through a read-only secondary instance, so they work while a job
// or server holds the store.
#include <mnemo/agent/job_state.h>
#include <mnemo/agent/runtime.h>
#include <mnemo/memory/store.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "commands.h"
#include "job_runner.h"

namespace mnemo::app {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

struct JobsOptions {
  std::string store;
  std::string tenant = "local";
  std::string id;
  std::string call_id;
  bool json = false;
  bool follow = false;
  bool no_resume = false;
  uint64_t after = 0;
  JobRunOptions run;
};

Result<std::unique_ptr<memory::Store>> open_reader(const std::string& store) {
  memory::StoreOptions o;
  o.read_only = true;
  // A read-only open of a directory without a store says "no store at DIR".
  return memory::Store::open(store_dir_or_default(store), o);
}

Result<agent::JobState> load_job(memory::Store& store, const std::string& id) {
  auto events = store.read_events(id);
  if (!events) return events.status();
  if (events->empty()) return Status::not_found("no job " + id + " in " + store.dir());
  return agent::replay_job(id, *events);
}

std::string when(int64_t unix_ms) {
  std::time_t t = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Runs a command on the job opt.id names within opt.tenant, a unique prefix included (opt.id
// becomes the store id).
int with_job_id(JobsOptions& opt, const std::function<int(const JobsOptions&)>& command) {
  auto id = resolve_job_id(opt.store, opt.id, opt.tenant);
  if (!id) return fail(id.status().message());
  opt.id = *id;
  opt.run.tenant = opt.tenant;
  return command(opt);
}

// A job's status as a person means it: one that a process is running now is "running", not
// "interrupted".
std::string status_of(const memory::Store& store, const agent::JobState& job) {
  if (job.status() == agent::JobStatus::kInterrupted && agent::job_running(store.dir(), job.id))
    return "running";
  return std::string(agent::job_status_name(job.status()));
}

// job_json with the status as status_of tells it, and the id as the tenant knows it.
json::value job_value(const memory::Store& store, const agent::JobState& job, bool messages,
                      const std::string& tenant) {
  json::value v = json::parse(agent::job_json(job, messages));
  v.as_object()["status"] = status_of(store, job);
  const std::string scope = tenant_job_id(tenant, "");
  if (job.id.starts_with(scope)) v.as_object()["id"] = job.id.substr(scope.size());
  return v;
}

int list_command(const JobsOptions& opt) {
  auto store = open_reader(opt.store);
  // A fresh MNEMO_HOME has no store yet: no jobs, not an error.
  if (!store && store.status().code() == StatusCode::kNotFound && opt.store.empty()) {
    if (opt.json) {
      std::cout << "[]\n";
    } else {
      std::printf("%-40s %-16s %6s %8s  %s\n", "ID", "STATUS", "STEPS", "TOKENS", "CREATED (UTC)");
    }
    return 0;
  }
  if (!store) return fail(store.status().message());
  auto ids = (*store)->list_sessions();
  if (!ids) return fail(ids.status().message());
  json::array all;
  if (!opt.json)
    std::printf("%-40s %-16s %6s %8s  %s\n", "ID", "STATUS", "STEPS", "TOKENS", "CREATED (UTC)");
  const std::string scope = tenant_job_id(opt.tenant, "");
  for (const std::string& id : *ids) {
    auto info = (*store)->session(id);
    if (!info || info->tenant != opt.tenant) continue;
    const std::string shown = id.starts_with(scope) ? id.substr(scope.size()) : id;
    auto job = load_job(**store, id);
    if (!job) continue;  // not a job session (a WebSocket or API session)
    if (opt.json) {
      all.push_back(job_value(**store, *job, false, opt.tenant));
    } else {
      std::printf("%-40s %-16s %6u %8llu  %s\n", shown.c_str(),
                  status_of(**store, *job).c_str(), job->steps,
                  static_cast<unsigned long long>(job->generated_tokens),
                  when(job->created_unix_ms).c_str());
    }
  }
  if (opt.json) std::cout << json::serialize(all) << '\n';
  return 0;
}

int show_command(const JobsOptions& opt) {
  auto store = open_reader(opt.store);
  if (!store) return fail(store.status().message());
  auto job = load_job(**store, opt.id);
  if (!job) return fail(job.status().message());
  if (opt.json) {
    std::cout << json::serialize(job_value(**store, *job, true, opt.tenant)) << '\n';
    return 0;
  }
  const agent::JobState& s = *job;
  std::printf(
      "id:        %s\nname:      %s\nstatus:    %s\nsteps:     %u\ntokens:    %llu generated, %zu "
      "in the transcript\n",
      s.id.c_str(), s.spec.name.c_str(), status_of(**store, s).c_str(),
      s.steps, static_cast<unsigned long long>(s.generated_tokens), s.transcript.size());
  std::printf("created:   %s UTC\nworkspace: %s\nmodel:     %s\n", when(s.created_unix_ms).c_str(),
              s.origin.workspace.c_str(), s.origin.model_dir.c_str());
  if (!s.limit.empty()) std::printf("limit:     %s\n", s.limit.c_str());
  if (!s.error.empty()) std::printf("error:     %s\n", s.error.c_str());
  for (const agent::CallState& c : s.calls) {
    if (!c.result && c.approval_requested && !c.approved) {
      std::printf("waiting:   %s %s %s\n           mnemo jobs approve %s %s   (or deny)\n",
                  c.id.c_str(), c.name.c_str(), c.arguments.c_str(), s.id.c_str(), c.id.c_str());
    }
  }
  if (!s.answer.empty()) std::printf("answer:\n%s\n", s.answer.c_str());
  return 0;
}

void print_event(const memory::Event& e, bool as_json) {
  if (as_json) {
    boost::system::error_code ec;
    json::value payload = json::parse(e.payload, ec);
    json::object o{{"seq", e.seq}, {"type", e.type}, {"unix_ms", e.unix_ms}};
    o["payload"] = ec ? json::value(e.payload) : payload;
    std::cout << json::serialize(o) << '\n';
    return;
  }
  // Token ids are for the runtime; the log shows the rest.
  boost::system::error_code ec;
  json::value payload = json::parse(e.payload, ec);
  std::string shown = e.payload;
  if (!ec && payload.is_object()) {
    payload.as_object().erase("tokens");
    payload.as_object().erase("sampler_state");
    payload.as_object().erase("spec_yaml");
    shown = json::serialize(payload);
  }
  if (shown.size() > 400) shown = shown.substr(0, 400) + "...";
  std::printf("%6llu  %s  %-22s %s\n", static_cast<unsigned long long>(e.seq),
              when(e.unix_ms).c_str(), e.type.c_str(), shown.c_str());
  std::fflush(stdout);
}

int logs_command(const JobsOptions& opt) {
  auto store = open_reader(opt.store);
  if (!store) return fail(store.status().message());
  uint64_t after = opt.after;
  for (;;) {
    auto events = (*store)->read_events(opt.id, after);
    if (!events) return fail(events.status().message());
    if (after == 0 && events->empty()) return fail("no job " + opt.id);
    bool finished = false;
    for (const memory::Event& e : *events) {
      print_event(e, opt.json);
      after = e.seq;
      finished = finished || e.type == "run.finished";
    }
    if (!opt.follow || finished) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if (Status s = (*store)->catch_up(); !s) return fail(s.message());
  }
}

int cancel_command(const JobsOptions& opt) {
  const std::string dir = store_dir_or_default(opt.store);
  auto store = memory::Store::open(dir);
  if (store) {
    asio::io_context io;
    agent::Runtime runtime(io.get_executor(), **store);
    if (Status s = runtime.cancel_stored(opt.id); !s) return fail(s.message());
    std::printf("cancelled %s\n", opt.id.c_str());
    return 0;
  }
  if (store.status().message().find("held by another process") == std::string::npos) {
    return fail(store.status().message());
  }
  // A process holds the store: ask it through a control file, then watch the log.
  auto reader = open_reader(opt.store);
  if (!reader) return fail(reader.status().message());
  auto job = load_job(**reader, opt.id);
  if (!job) return fail(job.status().message());
  if (job->finished)
    return fail("job " + opt.id + " already finished (" + job->finish_reason + ")");
  std::filesystem::create_directories(dir + "/control");
  std::ofstream(dir + "/control/" + opt.id + ".cancel") << "cancel\n";
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Status s = (*reader)->catch_up(); !s) return fail(s.message());
    auto now = load_job(**reader, opt.id);
    if (now && now->finished) {
      std::printf("cancelled %s (%s)\n", opt.id.c_str(), now->finish_reason.c_str());
      return 0;
    }
  }
  return fail("asked the process holding " + dir + " to cancel " + opt.id +
              ", but it has not finished the job within 10 s (is it running this job?)");
}

int delete_command(const JobsOptions& opt) {
  const std::string dir = store_dir_or_default(opt.store);
  if (agent::job_running(dir, opt.id))
    return fail("job " + opt.id + " is running; `mnemo jobs cancel " + opt.id + "` stops it first");
  auto store = memory::Store::open(dir);
  if (!store) return fail(store.status().message());
  auto info = (*store)->session(opt.id);
  if (!info || info->tenant != opt.tenant) return fail("no job " + opt.id + " in " + dir);
  if (Status s = (*store)->delete_session(opt.id); !s) return fail(s.message());
  auto gc = (*store)->gc();
  if (!gc) return fail("deleted job " + opt.id + ", but collecting its chunks failed: " +
                       gc.status().message());
  std::printf("deleted %s: events and snapshots, %lld KV chunks (%lld bytes) no longer used\n",
              opt.id.c_str(), static_cast<long long>(gc->chunks_deleted),
              static_cast<long long>(gc->bytes_freed));
  return 0;
}

int decide_command(const JobsOptions& opt, bool approve) {
  JobRunOptions run = opt.run;
  run.store = opt.store;
  run.job_id = opt.id;
  if (opt.no_resume) {
    auto store = memory::Store::open(store_dir_or_default(opt.store));
    if (!store) return fail(store.status().message());
    asio::io_context io;
    agent::Runtime runtime(io.get_executor(), **store);
    if (Status s = runtime.decide(opt.id, opt.call_id, approve, "cli"); !s)
      return fail(s.message());
    std::printf("%s %s; `mnemo resume %s` continues the job\n", approve ? "approved" : "denied",
                opt.call_id.c_str(), opt.id.c_str());
    return 0;
  }
  const std::string id = opt.id, call = opt.call_id;
  if (server_holds(store_dir_or_default(opt.store))) {
    return run_via_server(run, json::object{{"op", approve ? "approve" : "deny"},
                                            {"id", id},
                                            {"call_id", call}});
  }
  return run_job(run,
                 [id, call, approve](agent::Runtime& rt, const agent::JobObserver& obs)
                     -> asio::awaitable<Result<agent::RunResult>> {
                   if (Status s = rt.decide(id, call, approve, "cli"); !s) co_return s;
                   auto op = rt.resume(id, obs);
                   co_return co_await std::move(op);
                 });
}

}  // namespace

void register_jobs_commands(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<JobsOptions>();
  CLI::App* jobs = app.add_subcommand(
      "jobs", "The agent jobs of a store: list, show, logs, cancel, approve, deny, delete");
  jobs->require_subcommand(1);
  auto store_opt = [opt](CLI::App* c) {
    c->add_option("--store", opt->store, "store directory (default: MNEMO_HOME/store)");
    c->add_option("--tenant", opt->tenant,
                  "whose jobs (default: local, the CLI's own; a `mnemo serve` tenant's name for "
                  "its jobs)");
  };

  CLI::App* list =
      jobs->add_subcommand("list", "One line per job: id, status, steps, tokens, created");
  store_opt(list);
  list->add_flag("--json", opt->json, "a JSON array of jobs");
  list->callback([opt, &ctx] { ctx.exit_code = list_command(*opt); });

  CLI::App* show = jobs->add_subcommand("show", "A job's status, pending approvals and answer");
  show->add_option("id", opt->id, "the job's id")->required();
  store_opt(show);
  show->add_flag("--json", opt->json,
                 "the job as JSON: id, status, messages (OpenAI chat form), ...");
  show->callback([opt, &ctx] { ctx.exit_code = with_job_id(*opt, show_command); });

  CLI::App* logs = jobs->add_subcommand("logs", "A job's durable events (docs/agent.md)");
  logs->add_option("id", opt->id, "the job's id")->required();
  store_opt(logs);
  logs->add_option("--after", opt->after, "only events after this seq");
  logs->add_flag("--json", opt->json, "one JSON object per line: seq, type, unix_ms, payload");
  logs->add_flag("-f,--follow", opt->follow, "keep printing new events until the job finishes");
  logs->callback([opt, &ctx] { ctx.exit_code = with_job_id(*opt, logs_command); });

  CLI::App* cancel = jobs->add_subcommand(
      "cancel", "Finish a job as cancelled (also one running in another process)");
  cancel->add_option("id", opt->id, "the job's id")->required();
  store_opt(cancel);
  cancel->callback([opt, &ctx] { ctx.exit_code = with_job_id(*opt, cancel_command); });

  CLI::App* del = jobs->add_subcommand(
      "delete", "Delete a job that is not running: its events and snapshots, then the KV chunks "
                "nothing else uses (the workspace stays)");
  del->add_option("id", opt->id, "the job's id")->required();
  store_opt(del);
  del->callback([opt, &ctx] { ctx.exit_code = with_job_id(*opt, delete_command); });

  for (bool approve : {true, false}) {
    CLI::App* c = jobs->add_subcommand(
        approve ? "approve" : "deny",
        approve ? "Approve a call that waits for approval, then continue the job"
                : "Deny a call that waits for approval, then continue the job");
    c->add_option("id", opt->id, "the job's id")->required();
    c->add_option("call_id", opt->call_id, "the call's id (mnemo jobs show ID)")->required();
    store_opt(c);
    c->add_flag("--no-resume", opt->no_resume,
                "only record the decision; `mnemo resume ID` continues later");
    c->add_flag("--json", opt->run.json, "print the job as JSON at the end");
    c->add_flag("-q,--quiet", opt->run.quiet, "no progress lines on stderr");
    c->callback([opt, approve, &ctx] {
      ctx.exit_code = with_job_id(*opt, [approve](const JobsOptions& o) {
        return decide_command(o, approve);
      });
    });
  }
}

}  // namespace mnemo::app
