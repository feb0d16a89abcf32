// `mnemo serve`: the HTTP server (docs/server.md) over the embedded engine, with the store's API
// keys. Prints "listening on http://HOST:PORT" once it accepts connections; SIGINT/SIGTERM shut it
// down gracefully.
#include <mnemo/agent/policy.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/tokenizer.h>
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>
#include <mnemo/server/agent_hub.h>
#include <mnemo/server/operator_channel.h>
#include <mnemo/server/jobs_api.h>
#include <mnemo/server/openai_api.h>
#include <mnemo/server/server.h>
#include <mnemo/server/ws_sessions.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "default_model.h"
#include "paths.h"

namespace mnemo::app {
namespace fs = std::filesystem;
namespace {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string store;
  std::string model;
  std::string precision = "serving";
  double read_timeout_s = 30;
  double grace_s = 10;
  int64_t max_context = 0;
  std::string workspaces;
  double ws_idle_timeout_s = 60;
  std::string config;
  std::string tls_cert, tls_key;
  bool plain_http = false;
};

// The id clients name: the model directory's name.
std::string model_id(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string id = fs::absolute(p).filename().string();
  return id.empty() ? "mnemo" : id;
}

int64_t directory_bytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      auto n = it->file_size(size_ec);
      if (!size_ec) total += static_cast<int64_t>(n);
    }
  }
  return total;
}

int run_serve(const ServeOptions& opt) {
  auto precision = inference::parse_precision(opt.precision);
  if (!precision) return fail(precision.status().message());
  // The operator's policy for tenants (docs/server.md); without a file, the built-in defaults.
  agent::OperatorConfig config;
  if (!opt.config.empty()) {
    auto loaded = agent::load_operator_config(opt.config);
    if (!loaded) return fail(loaded.status().message());
    config = std::move(loaded).value();
  }
  config.served_precision = *precision;
  const std::string store_dir = opt.store.empty() ? mnemo_home() + "/store" : opt.store;
  auto store = memory::Store::open(store_dir);
  if (!store) return fail(store.status().message());
  auto keys = memory::list_api_keys(**store);
  if (!keys) return fail(keys.status().message());
  const bool has_keys = !keys->empty();
  if (Status s = server::check_listen_policy(opt.listen, has_keys); !s) {
    return fail(s.message() + " (store " + store_dir +
                " has none; add one with `mnemo keys add --tenant NAME --store " + store_dir +
                "`)");
  }
  // Keys cross the network only over TLS: beyond loopback, serve HTTPS or sit behind a TLS proxy.
  if (opt.tls_cert.empty() != opt.tls_key.empty())
    return fail("--tls-cert and --tls-key go together");
  if (auto ep = server::parse_listen_address(opt.listen);
      ep && !ep->address().is_loopback() && opt.tls_cert.empty() && !opt.plain_http) {
    return fail("refusing to serve plain HTTP on " + opt.listen +
                ": API keys would cross the network in clear text; give --tls-cert and --tls-key, "
                "or listen on loopback behind a TLS reverse proxy (docs/server.md), or accept the "
                "risk with --plain-http");
  }

  auto loaded = load_model(opt.model, *precision);
  if (!loaded) return fail(loaded.status().message());
  const std::string dir = loaded->dir;
  const inference::Model& model = *loaded->model;

  auto metrics = std::make_shared<server::Metrics>();
  metrics->set_store_bytes_source([store_dir] { return directory_bytes(store_dir); });
  server::OpenAiOptions api_options;
  api_options.model_id = model_id(dir);
  api_options.max_context = opt.max_context;
  auto api = server::OpenAiApi::create(model, std::move(*loaded->tokenizer), api_options, metrics);
  if (!api) return fail(api.status().message());
  auto router = std::make_shared<server::Router>();
  server::add_health_routes(*router, metrics);
  (*api)->add_routes(*router);
  // Agent jobs and WebSocket sessions run on the same store; a job that names no model runs on
  // the served one.
  server::HubOptions hub_options;
  hub_options.runtime.default_model_dir = dir;
  hub_options.runtime.config = std::make_shared<const agent::OperatorConfig>(config);
  hub_options.workspace_root =
      opt.workspaces.empty() ? mnemo_home() + "/workspaces" : opt.workspaces;
  auto hub = server::AgentHub::create(**store, hub_options, metrics);
  server::add_job_routes(*router, hub);
  server::WsOptions ws_options;
  ws_options.idle_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(opt.ws_idle_timeout_s * 1000));
  server::add_session_routes(*router, hub, ws_options, metrics);

  server::ServerOptions so;
  so.listen = opt.listen;
  so.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.read_timeout_s * 1000));
  so.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(opt.grace_s * 1000));
  so.handle_signals = true;
  so.allowed_origins = config.allowed_origins;
  so.tls_cert = opt.tls_cert;
  so.tls_key = opt.tls_key;
  if (has_keys) so.auth = server::make_store_authenticator(**store);
  auto server = server::Server::start(so, router, metrics);
  if (!server) return fail(server.status().message());
  if (!has_keys) {
    std::cerr << "mnemo serve: no API keys in store " << store_dir
              << ": serving without authentication (loopback only)\n";
  }
  // The operator's CLI runs jobs here while this process holds the store (docs/server.md).
  auto channel = server::OperatorChannel::start(server::operator_socket_path(store_dir), hub);
  if (!channel) {
    std::cerr << "mnemo serve: no operator channel (" << channel.status().message()
              << "): `mnemo run` on this store will refuse while the server holds it\n";
  }
  std::printf("listening on %s://%s\n", opt.tls_cert.empty() ? "http" : "https",
              (*server)->address().c_str());
  std::fflush(stdout);
  (*server)->wait();
  if (channel) channel->reset();
  // Jobs running here pause (resumable) before the server's executors go.
  hub->shutdown(so.shutdown_grace);
  // The engine goes before the server: its last callbacks post to the server's executor.
  api->reset();
  server->reset();
  hub.reset();
  std::cerr << "mnemo serve: stopped\n";
  return 0;
}

}  // namespace

void register_serve_command(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the OpenAI-compatible API, health and metrics over HTTP (docs/server.md)");
  cmd->add_option("--listen", opt->listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--store", opt->store, "store directory (default: MNEMO_HOME/store)");
  cmd->add_option("--model", opt->model,
                  "model directory (default: the embedded tiny model, created on first use)");
  cmd->add_option("--precision", opt->precision, "fp32, bf16 or serving")
      ->check(CLI::IsMember({"fp32", "bf16", "serving"}))
      ->capture_default_str();
  cmd->add_option("--read-timeout", opt->read_timeout_s,
                  "seconds a client may take to send a request (slow clients are closed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--grace", opt->grace_s,
                  "seconds requests in flight may run after SIGINT/SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-context", opt->max_context,
                  "tokens of context per request, prompt and completion (0: the model's)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--config", opt->config,
                  "the operator's YAML: tenants' ceilings and grants, endpoints, origins "
                  "(docs/server.md; default: the built-in policy)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-cert", opt->tls_cert,
                  "PEM certificate chain: serve HTTPS and WSS (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", opt->tls_key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--plain-http", opt->plain_http,
                "allow plain HTTP on a non-loopback address (a TLS proxy in front on another host)");
  cmd->add_option("--workspaces", opt->workspaces,
                  "where jobs' tools work: DIR/TENANT/JOB_ID (default: MNEMO_HOME/workspaces)");
  cmd->add_option("--ws-idle-timeout", opt->ws_idle_timeout_s,
                  "seconds a WebSocket may stay silent (the server pings at half of it)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([opt, &ctx] { ctx.exit_code = run_serve(*opt); });
}

}  // namespace mnemo::app
