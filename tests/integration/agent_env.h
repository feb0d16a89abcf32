#pragma once
// A scratch world for agent job tests: MNEMO_HOME, a store, a workspace and job files, all under
// one temporary directory; `mnemo` runs as a real process in it.
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/run_cli.h"
#include "support/temp_model.h"

namespace mnemo::test {

class AgentEnv {
 public:
  AgentEnv() {
    static int counter = 0;
    root_ = std::filesystem::temp_directory_path() /
            ("mnemo-agent-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(workspace());
  }
  ~AgentEnv() { std::filesystem::remove_all(root_); }

  std::string home() const { return (root_ / "home").string(); }
  std::string store() const { return (root_ / "store").string(); }
  std::string workspace() const { return (root_ / "ws").string(); }
  std::string path(const std::string& name) const { return (root_ / name).string(); }

  // Writes a job file whose model is the shared temporary tiny model.
  std::string job(const std::string& name, const std::string& body) const {
    const std::string file = path(name + ".yaml");
    std::ofstream(file) << "name: " << name
                        << "\nmodel:\n  embedded:\n    dir: " << temp_tiny_model() << "\n"
                        << body;
    return file;
  }

  // `mnemo ARGS --store STORE` with this MNEMO_HOME; args are already quoted.
  CliResult cli(const std::string& args) const {
    return run_cli(args + " --store " + shell_quote(store()), "",
                   "MNEMO_HOME=" + shell_quote(home()));
  }
  CliResult run(const std::string& job_file, const std::string& id,
                const std::string& extra = "") const {
    return cli("run " + shell_quote(job_file) + " --id " + id + " --workspace " +
               shell_quote(workspace()) + " " + extra);
  }

  // The same as a child process to watch and kill.
  std::vector<std::string> argv(std::vector<std::string> args) const {
    std::vector<std::string> out = {"/usr/bin/env", "MNEMO_HOME=" + home(), MNEMO_BINARY};
    out.insert(out.end(), args.begin(), args.end());
    out.push_back("--store");
    out.push_back(store());
    return out;
  }

  boost::json::value show(const std::string& id) const {
    CliResult r = cli("jobs show " + id + " --json");
    INFO(r.err);
    REQUIRE(r.status == 0);
    return boost::json::parse(r.out);
  }

 private:
  std::filesystem::path root_;
};

// The messages with tool-call ids replaced by their order of appearance: jobs with different ids
// must otherwise be identical.
inline std::string normalized_messages(const boost::json::value& job) {
  std::map<std::string, std::string> ids;
  boost::json::array messages = job.at("messages").as_array();
  auto rename = [&](boost::json::value& v) {
    std::string id(v.as_string());
    auto it = ids.find(id);
    if (it == ids.end()) it = ids.emplace(id, "call" + std::to_string(ids.size())).first;
    v = it->second;
  };
  for (boost::json::value& m : messages) {
    boost::json::object& o = m.as_object();
    if (auto* calls = o.if_contains("tool_calls")) {
      for (boost::json::value& c : calls->as_array()) rename(c.as_object()["id"]);
    }
    if (auto* id = o.if_contains("tool_call_id")) rename(*id);
  }
  return boost::json::serialize(messages);
}

// How each resume of a job went, from its log: `from` of every session.resumed, and whether a
// snapshot had been committed before it.
struct ResumeSeen {
  std::string from;
  bool snapshot_before = false;
  std::string reason;
};
inline std::vector<ResumeSeen> resumes(const AgentEnv& env, const std::string& id) {
  CliResult r = env.cli("jobs logs " + id + " --json");
  REQUIRE(r.status == 0);
  std::vector<ResumeSeen> out;
  bool snapshot = false;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    boost::json::value e = boost::json::parse(line);
    if (e.at("type") == "step.committed") snapshot = true;
    if (e.at("type") != "session.resumed") continue;
    const auto& p = e.at("payload").as_object();
    ResumeSeen s{std::string(p.at("from").as_string()), snapshot};
    if (const auto* why = p.if_contains("reason")) s.reason = std::string(why->as_string());
    out.push_back(std::move(s));
  }
  return out;
}

// Every resume after the job's first snapshot restored one: nothing was re-prefilled.
inline void check_resumed_from_snapshots(const AgentEnv& env, const std::string& id,
                                         size_t at_least) {
  size_t from_snapshot = 0;
  for (const ResumeSeen& r : resumes(env, id)) {
    INFO(id << ": resumed from " << r.from << " " << r.reason);
    if (r.snapshot_before) CHECK(r.from == "snapshot");
    from_snapshot += r.from == "snapshot";
  }
  CHECK(from_snapshot >= at_least);
}

inline size_t count_role(const boost::json::value& job, std::string_view role) {
  size_t n = 0;
  for (const auto& m : job.at("messages").as_array()) n += m.at("role").as_string() == role;
  return n;
}

}  // namespace mnemo::test
