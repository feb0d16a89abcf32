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
    // As root, sandboxed commands run as the sandbox uid (docs/sandbox.md): give it the workspace.
    if (::geteuid() == 0) REQUIRE(::chown(workspace().c_str(), 61000, 61000) == 0);
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

inline size_t count_role(const boost::json::value& job, std::string_view role) {
  size_t n = 0;
  for (const auto& m : job.at("messages").as_array()) n += m.at("role").as_string() == role;
  return n;
}

}  // namespace mnemo::test
