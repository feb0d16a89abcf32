// mnemo store stats|verify|gc on a store written through the library, as a user would inspect it.
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support/run_cli.h"
#include "support/tiny_model.h"

using mnemo::test::run_cli;
using mnemo::test::shell_quote;
namespace fs = std::filesystem;
using namespace mnemo;

TEST_CASE("mnemo store stats, verify and gc report on a store with a snapshot", "[cli][store]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-store-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    auto store = memory::Store::open(dir.string(), {});
    REQUIRE(store);
    REQUIRE((*store)->create_session("s1", "acme"));
    const auto& m = test::tiny_model();
    auto tokens = test::tiny_tokens("sequence_337");
    auto seq = m.new_sequence();
    std::vector<float> logits(tokens.size() * m.config().vocab_size);
    REQUIRE(m.forward(seq, tokens, logits));
    memory::SnapshotSource src{&m, &seq, tokens, memory::AtRest::kExact};
    std::vector<memory::NewEvent> events{{"tool.result", "{\"ok\":true}"}};
    REQUIRE((*store)->commit_step("s1", events, &src));
  }
  std::string at = " --store " + shell_quote(dir.string());
  auto stats = run_cli("store stats --json" + at);
  REQUIRE(stats.status == 0);
  CHECK_THAT(stats.out, Catch::Contains("\"sessions\":1"));
  CHECK_THAT(stats.out, Catch::Contains("\"snapshots\":1"));
  auto verify = run_cli("store verify" + at);
  CHECK(verify.status == 0);
  auto gc = run_cli("store gc" + at);
  CHECK(gc.status == 0);
  auto again = run_cli("store verify" + at);
  CHECK(again.status == 0);
  auto missing = run_cli("store stats --store /nonexistent/store");
  CHECK(missing.status == 1);
  CHECK(missing.err == "mnemo: no store at /nonexistent/store\n");
  fs::remove_all(dir);
}

namespace {

struct StoreDir {
  fs::path dir;
  explicit StoreDir(const std::string& what) {
    dir = fs::temp_directory_path() /
          ("mnemo-store-cli-" + what + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
  }
  ~StoreDir() { fs::remove_all(dir); }
  std::string at() const { return " --store " + shell_quote(dir.string()); }
};

// A store with a few jobs' worth of sessions and events; flushed to table files when asked.
void fill(const fs::path& dir, bool flush) {
  auto store = memory::Store::open(dir.string(), {});
  REQUIRE(store);
  for (int s = 0; s < 20; ++s) {
    const std::string id = "job-" + std::to_string(s);
    REQUIRE((*store)->create_session(id, "local", R"({"kind":"job"})"));
    for (int i = 0; i < 10; ++i) {
      REQUIRE((*store)->append_events(
          id, std::vector<memory::NewEvent>{{"input.message", "{\"content\":\"hello\"}"}}));
    }
  }
  if (flush) REQUIRE((*store)->flush());
}

void flip_middle_byte(const fs::path& file) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(f.tellg());
  REQUIRE(size > 64);
  f.seekg(size / 2);
  char c = 0;
  f.get(c);
  f.seekp(size / 2);
  f.put(static_cast<char>(c ^ 0x5a));
}

// The table file holding the named column family's data.
fs::path table_of(const fs::path& dir, const std::string& family) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), (dir / "db").string(), &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), (dir / "db").string(), descs,
                                       &handles, &db)
              .ok());
  std::vector<rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  fs::path out;
  for (const auto& f : files) {
    if (f.column_family_name == family) out = dir / "db" / fs::path(f.name).filename();
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  REQUIRE(!out.empty());
  return out;
}

}  // namespace

TEST_CASE("store verify and jobs list report a damaged write-ahead log, naming it",
          "[cli][store][corruption]") {
  StoreDir s("wal");
  fill(s.dir, false);
  fs::path wal;
  for (const auto& e : fs::directory_iterator(s.dir / "db"))
    if (e.path().extension() == ".log" && e.path().string() > wal.string()) wal = e.path();
  REQUIRE(!wal.empty());
  flip_middle_byte(wal);
  auto verify = run_cli("store verify" + s.at());
  CHECK(verify.status == 1);
  CHECK_THAT(verify.err, Catch::Contains(wal.filename().string()));
  auto list = run_cli("jobs list" + s.at());
  CHECK(list.status == 1);
  CHECK_THAT(list.err, Catch::Contains("damaged"));
  auto resume = run_cli("resume job-3" + s.at());
  CHECK(resume.status == 1);
  CHECK_THAT(resume.err, Catch::Contains("not opened for writing"));
}

TEST_CASE("a corrupt sessions table is reported by jobs list and store verify, never an empty list",
          "[cli][store][corruption]") {
  StoreDir s("sst");
  fill(s.dir, true);
  const fs::path sst = table_of(s.dir, "sessions");
  flip_middle_byte(sst);
  auto list = run_cli("jobs list" + s.at());
  INFO(list.out << list.err);
  CHECK(list.status == 1);
  CHECK_THAT(list.err, Catch::Contains(sst.filename().string()));
  auto verify = run_cli("store verify" + s.at());
  CHECK(verify.status == 1);
  CHECK_THAT(verify.err + verify.out, Catch::Contains(sst.filename().string()));
  auto writer = run_cli("store gc" + s.at());
  CHECK(writer.status == 1);
  CHECK_THAT(writer.err, Catch::Contains("not opened for writing"));
}

TEST_CASE("read-only commands write nothing into the store", "[cli][store]") {
  StoreDir s("ro");
  fill(s.dir, true);
  auto listing = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(s.dir))
      out.push_back(e.path().string() + " " +
                    std::to_string(e.is_regular_file() ? fs::file_size(e.path()) : 0));
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto before = listing();
  for (const char* cmd : {"jobs list", "jobs logs job-1", "store stats",
                          "store verify"}) {
    INFO(cmd);
    auto r = run_cli(std::string(cmd) + s.at());
    INFO(r.err);
    CHECK(r.status == 0);
  }
  CHECK(listing() == before);
  // On a read-only mount: a private mount namespace (in a user namespace, so no root is needed).
  const std::string d = shell_quote(s.dir.string());
  const std::string script = "mount --bind " + d + " " + d + " && mount -o remount,bind,ro " + d +
                             " && touch " + d + "/probe 2>/dev/null; [ ! -e " + d +
                             "/probe ] && " + shell_quote(MNEMO_BINARY) + " jobs list --store " + d;
  auto r = run_cli("", "", "unshare -rm sh -c " + shell_quote(script) + " #");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(listing() == before);
}
