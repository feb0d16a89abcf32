// The store: column families, schema, the one-writer rule, read-only access beside a writer,
// events.
#include <mnemo/memory/store.h>
#include <rocksdb/db.h>

#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;

TEST_CASE("a new store has its column families and schema version", "[memory][store]") {
  test::TempDir dir;
  { REQUIRE(Store::open(dir.path())); }
  std::vector<std::string> families;
  REQUIRE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path() + "/db", &families).ok());
  for (const char* name : {"meta", "sessions", "events", "kv_chunks", "snapshots", "prefixes"}) {
    CHECK(std::find(families.begin(), families.end(), name) != families.end());
  }
  auto reopened = Store::open(dir.path());
  REQUIRE(reopened);
  auto stats = (*reopened)->stats();
  REQUIRE(stats);
  CHECK(stats->schema == kSchemaVersion);
  CHECK(stats->chunk_tokens == 1024);
}

TEST_CASE("a store written by a newer schema is refused with a clear error", "[memory][store]") {
  test::TempDir dir;
  { REQUIRE(Store::open(dir.path())); }
  test::set_schema(dir.path(), kSchemaVersion + 1);
  auto store = Store::open(dir.path());
  REQUIRE_FALSE(store);
  CHECK(store.status().message().find("schema version " + std::to_string(kSchemaVersion + 1)) !=
        std::string::npos);
  CHECK(store.status().message().find("upgrade mnemo") != std::string::npos);
}

TEST_CASE("a second writer is refused with an error naming the holder", "[memory][store]") {
  test::TempDir dir;
  int ready[2], done[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(done) == 0);
  pid_t child = fork();
  if (child == 0) {
    auto store = Store::open(dir.path());
    char c = store ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(done[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  auto second = Store::open(dir.path());
  REQUIRE_FALSE(second);
  CHECK(second.status().message().find("held by another process") != std::string::npos);
  CHECK(second.status().message().find("pid " + std::to_string(child)) != std::string::npos);
  // Readers still work beside the writer.
  auto reader = Store::open(dir.path(), {.read_only = true});
  REQUIRE(reader);
  CHECK((*reader)->stats());
  (void)!write(done[1], &c, 1);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(Store::open(dir.path()));
}

TEST_CASE("events are appended per session in order and read back after a seq",
          "[memory][events]") {
  test::TempDir dir;
  auto store = Store::open(dir.path());
  REQUIRE(store);
  Store& s = **store;
  REQUIRE(s.create_session("s1", "acme"));
  REQUIRE(s.create_session("s10", "acme"));
  CHECK_FALSE(s.create_session("s1", "acme"));
  CHECK_FALSE(s.create_session("bad/id", "acme"));
  std::vector<NewEvent> evs{{"input.message", "{\"text\":\"hi\"}"},
                            {"message", "{\"content\":\"hello\"}"}};
  auto seqs = s.append_events("s1", evs);
  REQUIRE(seqs);
  CHECK(*seqs == std::vector<uint64_t>{2, 3});
  REQUIRE(s.append_events("s10", std::vector<NewEvent>{{"error", "{}"}}));
  auto bad = s.append_events("s1", std::vector<NewEvent>{{"message.delta", "{}"}});
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message().find("message.delta") != std::string::npos);
  auto all = s.read_events("s1");
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].type == "session.created");
  CHECK((*all)[2].payload == "{\"content\":\"hello\"}");
  auto after = s.read_events("s1", 2);
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].seq == 3);
  CHECK(s.read_events("s10")->size() == 2);  // "s1"'s events never leak into "s10" or back
  CHECK(s.session("s1")->last_seq == 3);
  CHECK_FALSE(s.read_events("nope"));
}

TEST_CASE("a read-only instance sees the writer's later commits after catching up",
          "[memory][store]") {
  test::TempDir dir;
  auto writer = Store::open(dir.path());
  REQUIRE(writer);
  REQUIRE((*writer)->create_session("a", "t"));
  auto reader = Store::open(dir.path(), {.read_only = true});
  REQUIRE(reader);
  CHECK((*reader)->read_events("a")->size() == 1);
  CHECK_FALSE((*reader)->create_session("b", "t"));
  REQUIRE((*writer)->append_events("a", std::vector<NewEvent>{{"message", "{}"}}));
  REQUIRE((*reader)->catch_up());
  CHECK((*reader)->read_events("a")->size() == 2);
  CHECK_FALSE(Store::open(dir.path() + "/missing", {.read_only = true}));
}
