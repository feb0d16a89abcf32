#include <mnemo/base/json_text.h>
#include <mnemo/tools/builtin_tools.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tools/tools_test_util.h"

using namespace mnemo;
using namespace mnemo::tools;

namespace {

struct Fixture {
  ToolRegistry reg;
  test::TempTree outside{"outside"};
  test::TempTree ws{"files"};
  ToolContext ctx;
  Fixture() {
    REQUIRE(add_builtin_tools(reg));
    ctx = test::context_for(ws.path);
    test::spit(outside.path / "secret.txt", "TOP SECRET");
    test::fs::create_directories(ws.path / "src");
    test::spit(ws.path / "src" / "main.cc", "int main() {}\n");
  }
  ToolResult call(const std::string& tool, const std::string& args) {
    return test::run_call(reg, ctx, tool, args);
  }
  ToolResult read(const std::string& path) {
    return call("read_file", R"({"path": )" + json::quote(path) + "}");
  }
  ToolResult write(const std::string& path, const std::string& content) {
    return call("write_file",
                R"({"path": )" + json::quote(path) + R"(, "content": )" + json::quote(content) + "}");
  }
};

}  // namespace

TEST_CASE("write_file, read_file and list_dir work inside the workspace") {
  Fixture f;
  ToolResult w = f.write("notes/today/plan.md", "step 1\n");
  CHECK(w.ok);
  CHECK(w.content == "wrote 7 bytes to notes/today/plan.md");
  CHECK(test::slurp(f.ws.path / "notes/today/plan.md") == "step 1\n");
  CHECK(f.call("write_file", R"({"path": "notes/today/plan.md", "content": "step 2\n", "append": true})").ok);
  CHECK(f.read("./notes//today/plan.md").content == "step 1\nstep 2\n");
  CHECK(f.write("notes/today/plan.md", "new").ok);
  CHECK(f.read("notes/today/plan.md").content == "new");

  ToolResult part = f.call("read_file", R"({"path": "src/main.cc", "offset": 4, "length": 4})");
  CHECK(part.content == "main\n[read bytes 4..8 of 14; call again with offset 8 for more]");

  test::fs::create_symlink("/etc", f.ws.path / "etc-link");
  ToolResult list = f.call("list_dir", R"({})");
  CHECK(list.ok);
  CHECK(list.content == "etc-link -> /etc (symlink, not followed)\nnotes/\nsrc/\n");
  CHECK(f.call("list_dir", R"({"path": "src"})").content == "main.cc  14 bytes\n");
}

TEST_CASE("file tools refuse absolute paths and '..'") {
  Fixture f;
  for (std::string path : std::vector<std::string>{"/etc/passwd", "../" + f.outside.path.filename().string() + "/secret.txt",
                           "src/../../x", ".."}) {
    ToolResult r = f.read(path);
    CHECK_FALSE(r.ok);
    CHECK(r.content.find("TOP SECRET") == std::string::npos);
  }
  CHECK(f.read("/etc/passwd").content.find("is absolute") != std::string::npos);
  CHECK(f.read("src/../main.cc").content.find("contains '..'") != std::string::npos);
  ToolResult w = f.write("../escaped.txt", "x");
  CHECK_FALSE(w.ok);
  CHECK_FALSE(test::fs::exists(f.ws.path.parent_path() / "escaped.txt"));
  CHECK_FALSE(f.call("list_dir", R"({"path": ".."})").ok);
}

TEST_CASE("file tools never follow a symlink, at the end or on the way") {
  Fixture f;
  test::fs::create_symlink(f.outside.path / "secret.txt", f.ws.path / "leak.txt");
  test::fs::create_directory_symlink(f.outside.path, f.ws.path / "out");
  test::fs::create_directory_symlink(f.ws.path / "src", f.ws.path / "inner");

  ToolResult r = f.read("leak.txt");
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("symlink") != std::string::npos);
  r = f.read("out/secret.txt");
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("TOP SECRET") == std::string::npos);
  // Even a link that stays inside is refused: the rule is simple and checkable.
  CHECK_FALSE(f.read("inner/main.cc").ok);

  CHECK_FALSE(f.write("leak.txt", "overwritten").ok);
  CHECK_FALSE(f.write("out/secret.txt", "overwritten").ok);
  CHECK_FALSE(f.write("out/new.txt", "planted").ok);
  CHECK(test::slurp(f.outside.path / "secret.txt") == "TOP SECRET");
  CHECK_FALSE(test::fs::exists(f.outside.path / "new.txt"));
  CHECK_FALSE(f.call("list_dir", R"({"path": "out"})").ok);
}

TEST_CASE("write_file refuses a hard link to a file outside, and read_file refuses non-files") {
  Fixture f;
  REQUIRE(link((f.outside.path / "secret.txt").c_str(), (f.ws.path / "hard.txt").c_str()) == 0);
  ToolResult w = f.write("hard.txt", "overwritten");
  CHECK_FALSE(w.ok);
  CHECK(w.content.find("hard links") != std::string::npos);
  CHECK(test::slurp(f.outside.path / "secret.txt") == "TOP SECRET");

  REQUIRE(mkfifo((f.ws.path / "pipe").c_str(), 0600) == 0);
  ToolResult r = f.read("pipe");  // must not block on the FIFO
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("not a regular file") != std::string::npos);
  CHECK(f.read("src").content.find("not a regular file") != std::string::npos);
  CHECK(f.read("missing.txt").content == "read_file: 'missing.txt' does not exist");
  test::spit(f.ws.path / "bin", std::string("\x7f" "ELF\0\0", 6));
  CHECK(f.read("bin").content.find("binary file") != std::string::npos);
}

TEST_CASE("read_file refuses a hard link, as write_file does") {
  Fixture f;
  // A hard link made inside the workspace to a file outside it (same file system).
  REQUIRE(::link((f.outside.path / "secret.txt").c_str(), (f.ws.path / "innocent.txt").c_str()) ==
          0);
  ToolResult r = f.read("innocent.txt");
  CHECK_FALSE(r.ok);
  CHECK(r.content.find("TOP SECRET") == std::string::npos);
  CHECK_THAT(r.content, Catch::Contains("hard links"));
  CHECK_FALSE(f.write("innocent.txt", "x").ok);
  CHECK(test::slurp(f.outside.path / "secret.txt") == "TOP SECRET");
}

TEST_CASE("the file tools refuse the host root, system directories and $HOME as the workspace") {
  Fixture f;
  std::vector<std::string> refused = {"/", "/etc", "/root", "/usr"};
  if (const char* home = getenv("HOME"); home && *home) refused.push_back(home);
  for (const std::string& ws : refused) {
    INFO(ws);
    f.ctx.workspace = ws;
    ToolResult list = f.call("list_dir", R"({})");
    CHECK_FALSE(list.ok);
    CHECK_THAT(list.content, Catch::Contains("workspace"));
    CHECK_FALSE(f.read("etc/hostname").ok);
    CHECK_FALSE(f.read("hostname").ok);
  }
}
