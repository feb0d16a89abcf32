// `mnemo keys add|list|revoke`: the API keys `mnemo serve` accepts. A new key is printed once, on
// stdout alone (scriptable); the store keeps only its hash. list reads through a read-only instance,
// so it works beside a running server; add and revoke need the store.
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>

#include "commands.h"
#include "paths.h"

namespace mnemo::app {
namespace {

struct KeysOptions {
  std::string store;
  std::string tenant;
  std::string id;
};

std::string store_dir(const KeysOptions& opt) {
  return opt.store.empty() ? mnemo_home() + "/store" : opt.store;
}

std::string utc_time(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int run_add(const KeysOptions& opt) {
  auto store = memory::Store::open(store_dir(opt));
  if (!store) return fail(store.status().message());
  auto made = memory::add_api_key(**store, opt.tenant);
  if (!made) return fail(made.status().message());
  std::cout << made->key << std::endl;
  std::cerr << "mnemo keys: made " << made->info.id << " for tenant " << made->info.tenant
            << "; the key is shown only this once\n";
  return 0;
}

int run_list(const KeysOptions& opt) {
  memory::StoreOptions ro;
  ro.read_only = true;
  auto store = memory::Store::open(store_dir(opt), ro);
  if (!store) return fail(store.status().message());
  auto keys = memory::list_api_keys(**store);
  if (!keys) return fail(keys.status().message());
  if (keys->empty()) {
    std::cerr << "mnemo keys: no API keys in " << store_dir(opt) << '\n';
    return 0;
  }
  std::printf("%-16s  %-24s  %s\n", "ID", "TENANT", "CREATED");
  for (const memory::ApiKeyInfo& k : *keys) {
    std::printf("%-16s  %-24s  %s\n", k.id.c_str(), k.tenant.c_str(),
                utc_time(k.created_unix_ms).c_str());
  }
  return 0;
}

int run_revoke(const KeysOptions& opt) {
  auto store = memory::Store::open(store_dir(opt));
  if (!store) return fail(store.status().message());
  if (Status s = memory::revoke_api_key(**store, opt.id); !s) return fail(s.message());
  std::cerr << "mnemo keys: revoked " << opt.id << '\n';
  return 0;
}

}  // namespace

void register_keys_commands(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<KeysOptions>();
  CLI::App* keys = app.add_subcommand("keys", "API keys of `mnemo serve`: add, list, revoke");
  keys->require_subcommand(1);
  const std::string store_help = "store directory (default: MNEMO_HOME/store)";

  CLI::App* add = keys->add_subcommand("add", "Make a key for a tenant; it is printed once");
  add->add_option("--tenant", opt->tenant, "tenant the key belongs to ([A-Za-z0-9._:-], 1-128)")
      ->required();
  add->add_option("--store", opt->store, store_help);
  add->callback([opt, &ctx] { ctx.exit_code = run_add(*opt); });

  CLI::App* list = keys->add_subcommand("list", "List keys: id, tenant, creation time (never the key)");
  list->add_option("--store", opt->store, store_help);
  list->callback([opt, &ctx] { ctx.exit_code = run_list(*opt); });

  CLI::App* revoke = keys->add_subcommand("revoke", "Delete a key by its id (see `keys list`)");
  revoke->add_option("KEY_ID", opt->id, "the key's id, key_...")->required();
  revoke->add_option("--store", opt->store, store_help);
  revoke->callback([opt, &ctx] { ctx.exit_code = run_revoke(*opt); });
}

}  // namespace mnemo::app
