// `mnemo store stats|gc|verify`: the persistent store's maintenance commands. stats and verify read
// through a read-only secondary instance, so they work beside a running server; gc needs the store.
#include <mnemo/memory/store.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "paths.h"

namespace mnemo::app {
namespace {

struct StoreCommandOptions {
  std::string store;
  std::string ttl;
  std::string max_size;
  bool json = false;
};

memory::StoreOptions read_only() {
  memory::StoreOptions o;
  o.read_only = true;
  return o;
}

std::string store_dir(const StoreCommandOptions& opt) {
  return opt.store.empty() ? mnemo_home() + "/store" : opt.store;
}

// "90s", "30m", "12h", "7d" (a bare number is seconds) -> milliseconds.
Result<int64_t> parse_duration_ms(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = text.substr(used);
  double scale = unit.empty() || unit == "s" ? 1e3
                 : unit == "m"               ? 60e3
                 : unit == "h"               ? 3600e3
                 : unit == "d"               ? 86400e3
                                             : -1;
  if (used == 0 || v <= 0 || scale < 0) {
    return Status::invalid_argument("--ttl '" + text +
                                    "': expected a positive number with s, m, h or d");
  }
  return static_cast<int64_t>(v * scale);
}

// "512M", "10G", "1T", "4096" (bytes) -> bytes.
Result<int64_t> parse_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  std::string unit = text.substr(used);
  double scale = unit.empty()  ? 1
                 : unit == "K" ? 0x1p10
                 : unit == "M" ? 0x1p20
                 : unit == "G" ? 0x1p30
                 : unit == "T" ? 0x1p40
                               : -1;
  if (used == 0 || v <= 0 || scale < 0) {
    return Status::invalid_argument("--max-size '" + text +
                                    "': expected a positive number with K, M, G or T");
  }
  return static_cast<int64_t>(v * scale);
}

void progress(const std::string& line) {
  if (isatty(STDERR_FILENO) == 1) std::cerr << "mnemo store: " << line << '\n';
}

int run_stats(const StoreCommandOptions& opt) {
  auto store = memory::Store::open(store_dir(opt), read_only());
  if (!store) return fail(store.status().message());
  auto st = (*store)->stats();
  if (!st) return fail(st.status().message());
  if (opt.json) {
    std::printf(
        "{\"store\":\"%s\",\"schema\":%u,\"chunk_tokens\":%lld,\"sessions\":%lld,\"events\":%lld,"
        "\"snapshots\":%lld,\"prefixes\":%lld,\"chunks\":%lld,\"exact_chunks\":%lld,\"compact_"
        "chunks\":%lld,"
        "\"chunk_value_bytes\":%lld,\"snapshot_value_bytes\":%lld,\"prefix_value_bytes\":%lld,"
        "\"sst_bytes\":%lld}\n",
        store_dir(opt).c_str(), st->schema, (long long)st->chunk_tokens, (long long)st->sessions,
        (long long)st->events, (long long)st->snapshots, (long long)st->prefixes,
        (long long)st->chunks, (long long)st->exact_chunks, (long long)st->compact_chunks,
        (long long)st->chunk_value_bytes, (long long)st->snapshot_value_bytes,
        (long long)st->prefix_value_bytes, (long long)st->sst_bytes);
    return 0;
  }
  std::printf("store        %s (schema %u, chunks of %lld tokens)\n", store_dir(opt).c_str(),
              st->schema, (long long)st->chunk_tokens);
  std::printf("sessions     %lld (%lld events)\n", (long long)st->sessions, (long long)st->events);
  std::printf("snapshots    %lld (%lld bytes)\n", (long long)st->snapshots,
              (long long)st->snapshot_value_bytes);
  std::printf("prefixes     %lld (%lld bytes)\n", (long long)st->prefixes,
              (long long)st->prefix_value_bytes);
  std::printf("chunks       %lld exact, %lld compact (%lld bytes)\n", (long long)st->exact_chunks,
              (long long)st->compact_chunks, (long long)st->chunk_value_bytes);
  std::printf("on disk      %lld bytes in table files\n", (long long)st->sst_bytes);
  return 0;
}

int run_verify(const StoreCommandOptions& opt) {
  auto store = memory::Store::open(store_dir(opt), read_only());
  if (!store) return fail(store.status().message());
  progress("verifying " + store_dir(opt));
  auto rep = (*store)->verify();
  if (!rep) return fail(rep.status().message());
  if (opt.json) {
    std::printf(
        "{\"ok\":%s,\"snapshots\":%lld,\"prefixes\":%lld,\"chunks\":%lld,\"events\":%lld,"
        "\"problems\":%zu}\n",
        rep->ok() ? "true" : "false", (long long)rep->snapshots, (long long)rep->prefixes,
        (long long)rep->chunks, (long long)rep->events, rep->problems.size());
  } else {
    std::printf("checked %lld snapshots, %lld prefixes, %lld chunks, %lld events: %s\n",
                (long long)rep->snapshots, (long long)rep->prefixes, (long long)rep->chunks,
                (long long)rep->events, rep->ok() ? "ok" : "PROBLEMS");
  }
  for (const std::string& p : rep->problems) std::cerr << "mnemo: " << p << '\n';
  return rep->ok() ? 0 : 1;
}

int run_gc(const StoreCommandOptions& opt) {
  memory::GcOptions gc;
  if (!opt.ttl.empty()) {
    auto ttl = parse_duration_ms(opt.ttl);
    if (!ttl) return fail(ttl.status().message());
    gc.snapshot_ttl_ms = *ttl;
  }
  if (!opt.max_size.empty()) {
    auto cap = parse_size(opt.max_size);
    if (!cap) return fail(cap.status().message());
    gc.max_bytes = *cap;
  }
  auto store = memory::Store::open(store_dir(opt));
  if (!store) return fail(store.status().message());
  progress("collecting garbage in " + store_dir(opt));
  auto rep = (*store)->gc(gc);
  if (!rep) return fail(rep.status().message());
  if (opt.json) {
    std::printf(
        "{\"snapshots_dropped\":%lld,\"prefixes_dropped\":%lld,\"chunks_deleted\":%lld,\"bytes_"
        "freed\":%lld,"
        "\"bytes_live\":%lld}\n",
        (long long)rep->snapshots_dropped, (long long)rep->prefixes_dropped,
        (long long)rep->chunks_deleted, (long long)rep->bytes_freed, (long long)rep->bytes_live);
  } else {
    std::printf(
        "dropped %lld snapshots and %lld prefixes, deleted %lld chunks (%lld bytes); %lld bytes "
        "live\n",
        (long long)rep->snapshots_dropped, (long long)rep->prefixes_dropped,
        (long long)rep->chunks_deleted, (long long)rep->bytes_freed, (long long)rep->bytes_live);
  }
  return 0;
}

}  // namespace

void register_store_commands(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<StoreCommandOptions>();
  CLI::App* store = app.add_subcommand(
      "store", "The persistent store: statistics, garbage collection, verification");
  store->require_subcommand(1);
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--store", opt->store, "store directory (default MNEMO_HOME/store)");
    cmd->add_flag("--json", opt->json, "one JSON line");
  };
  CLI::App* stats =
      store->add_subcommand("stats", "Counts and sizes (read-only; works beside a running server)");
  common(stats);
  stats->callback([opt, &ctx] { ctx.exit_code = run_stats(*opt); });
  CLI::App* verify =
      store->add_subcommand("verify", "Check every hash, chunk chain and event log (read-only)");
  common(verify);
  verify->callback([opt, &ctx] { ctx.exit_code = run_verify(*opt); });
  CLI::App* gc = store->add_subcommand(
      "gc", "Delete unreferenced chunks; drop snapshots past a TTL or a size cap");
  common(gc);
  gc->add_option("--ttl", opt->ttl,
                 "drop snapshots and prefixes older than this (90s, 30m, 12h, 7d)");
  gc->add_option("--max-size", opt->max_size,
                 "then drop the oldest until the live data fits (512M, 10G)");
  gc->callback([opt, &ctx] { ctx.exit_code = run_gc(*opt); });
}

}  // namespace mnemo::app
