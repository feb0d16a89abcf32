// The store: column families, schema, the one-writer rule, read-only access beside a writer,
// events.
#include <mnemo/memory/store.h>
#include <rocksdb/db.h>

#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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

namespace {

// The store's newest write-ahead log file.
std::string newest_wal(const std::string& dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/db")) {
    if (e.path().extension() == ".log" && e.path().string() > newest) newest = e.path().string();
  }
  return newest;
}

void write_events(const std::string& dir, int n) {
  auto store = Store::open(dir);
  REQUIRE(store);
  REQUIRE((*store)->create_session("s", "acme"));
  for (int i = 0; i < n; ++i) {
    REQUIRE((*store)->append_events(
        "s", std::vector<NewEvent>{{"input.message", "{\"n\":" + std::to_string(i) + "}"}}));
  }
}

}  // namespace

TEST_CASE("a byte flipped in the middle of the WAL refuses the store instead of dropping steps",
          "[memory][store][corruption]") {
  test::TempDir dir;
  write_events(dir.path(), 130);
  const std::string wal = newest_wal(dir.path());
  REQUIRE(!wal.empty());
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    REQUIRE(size > 4096);
    f.seekg(size / 2);
    char c = 0;
    f.get(c);
    f.seekp(size / 2);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const std::string wal_name = std::filesystem::path(wal).filename().string();
  auto writer = Store::open(dir.path());
  REQUIRE_FALSE(writer);
  CHECK(writer.status().code() == StatusCode::kCorruption);
  CHECK_THAT(writer.status().message(), Catch::Contains(wal_name));
  CHECK_THAT(writer.status().message(), Catch::Contains("not opened for writing"));
  // Refused again and again: nothing was dropped by a first attempt.
  CHECK_FALSE(Store::open(dir.path()));
  StoreOptions ro;
  ro.read_only = true;
  auto reader = Store::open(dir.path(), ro);
  if (reader) {
    // A reader may open it, but must not pretend the log is whole.
    auto events = (*reader)->read_events("s");
    CHECK((!events || events->size() != 131));
    auto report = (*reader)->verify();
    CHECK((!report || !report->ok()));
  } else {
    CHECK_THAT(reader.status().message(), Catch::Contains(wal_name));
  }
}

TEST_CASE("a record cut short at the end of the WAL is dropped and the store opens",
          "[memory][store][corruption]") {
  test::TempDir dir;
  write_events(dir.path(), 20);
  const std::string wal = newest_wal(dir.path());
  const auto size = std::filesystem::file_size(wal);
  std::filesystem::resize_file(wal, size - 5);  // the last record, torn
  auto store = Store::open(dir.path());
  INFO((store ? "" : store.status().message()));
  REQUIRE(store);
  auto events = (*store)->read_events("s");
  REQUIRE(events);
  CHECK(events->size() == 20);  // session.created and 19 of the 20: the torn one is gone
  auto report = (*store)->verify();
  REQUIRE(report);
  CHECK(report->ok());
}
