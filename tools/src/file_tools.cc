// read_file, write_file and list_dir: confined to the workspace (see workspace_fs.h).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mnemo/base/utf8.h>
#include <mnemo/tools/builtin_tools.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <cstring>

#include "py_json.h"
#include "workspace_fs.h"

namespace mnemo::tools {
namespace {

namespace json = boost::json;
using internal::UniqueFd;

Result<json::object> arguments_of(const ToolCall& call) {
  Result<json::value> v = internal::parse_json(call.arguments, "arguments");
  if (!v) return v.status();
  if (!v->is_object()) return Status::invalid_argument("arguments: expected an object");
  return std::move(v->get_object());
}

class ReadFileTool final : public Tool {
 public:
  explicit ReadFileTool(FileToolOptions options) : options_(options) {}
  std::string_view name() const override { return "read_file"; }
  std::string_view description() const override {
    return "Read a text file in the workspace. Paths are relative to the workspace; symlinks and "
           "'..' are refused. Large files are read in pieces with offset and length.";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("path": {"type": "string", "minLength": 1, "description": "file path relative to the workspace"}, )j"
           R"j("offset": {"type": "integer", "minimum": 0, "description": "first byte to read (default 0)"}, )j"
           R"j("length": {"type": "integer", "minimum": 1, "description": "bytes to read at most"}}, )j"
           R"j("required": ["path"], "additionalProperties": false})j";
  }
  bool idempotent() const override { return true; }

  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    co_return read(call, ctx);
  }

 private:
  ToolResult read(const ToolCall& call, const ToolContext& ctx) const {
    Result<json::object> args = arguments_of(call);
    if (!args) return ToolResult::error(args.status().message());
    std::string path = internal::string_field(*args, "path");
    auto offset = static_cast<uint64_t>(internal::int_field(*args, "offset", 0));
    size_t length = std::min<uint64_t>(
        internal::int_field(*args, "length", static_cast<int64_t>(options_.max_read_bytes)),
        options_.max_read_bytes);
    Result<internal::ResolvedParent> parent = internal::resolve_parent(ctx.workspace, path, false, false);
    if (!parent) return ToolResult::error("read_file: " + parent.status().message());
    // O_NONBLOCK: opening a FIFO must not hang the tool.
    UniqueFd fd(openat(parent->dir.get(), parent->name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) return ToolResult::error("read_file: " + internal::describe_open_error(errno, path));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return ToolResult::error("read_file: '" + path + "' is not a regular file");
    // The same rule as write_file: a hard link could tie a workspace name to a file elsewhere.
    if (st.st_nlink > 1)
      return ToolResult::error("read_file: '" + path + "' has several hard links; refusing to read");
    const auto size = static_cast<uint64_t>(st.st_size);
    if (offset > size)
      return ToolResult::error("read_file: offset " + std::to_string(offset) + " is past the end ('" +
                               path + "' has " + std::to_string(size) + " bytes)");
    std::string data(std::min<uint64_t>(length, size - offset), '\0');
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = pread(fd.get(), data.data() + got, data.size() - got, offset + got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ToolResult::error("read_file: '" + path + "': " + std::strerror(errno));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
    if (data.find('\0') != std::string::npos)
      return ToolResult::error("read_file: '" + path + "' is a binary file (" + std::to_string(size) +
                               " bytes)");
    std::string text = utf8::lossy(data);
    if (offset + got < size) {
      text += "\n[read bytes " + std::to_string(offset) + ".." + std::to_string(offset + got) +
              " of " + std::to_string(size) + "; call again with offset " +
              std::to_string(offset + got) + " for more]";
    }
    return ToolResult::success(std::move(text), ctx.output_cap);
  }

  FileToolOptions options_;
};

class WriteFileTool final : public Tool {
 public:
  explicit WriteFileTool(FileToolOptions options) : options_(options) {}
  std::string_view name() const override { return "write_file"; }
  std::string_view description() const override {
    return "Write a text file in the workspace (missing parent directories are created). Paths "
           "are relative to the workspace; symlinks and '..' are refused.";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("path": {"type": "string", "minLength": 1, "description": "file path relative to the workspace"}, )j"
           R"j("content": {"type": "string", "description": "the text to write"}, )j"
           R"j("append": {"type": "boolean", "description": "add to the end instead of replacing (default false)"}}, )j"
           R"j("required": ["path", "content"], "additionalProperties": false})j";
  }
  bool idempotent() const override { return false; }

  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    co_return write(call, ctx);
  }

 private:
  ToolResult write(const ToolCall& call, const ToolContext& ctx) const {
    Result<json::object> args = arguments_of(call);
    if (!args) return ToolResult::error(args.status().message());
    std::string path = internal::string_field(*args, "path");
    std::string content = internal::string_field(*args, "content");
    const bool append = internal::bool_field(*args, "append", false);
    if (content.size() > options_.max_write_bytes)
      return ToolResult::error("write_file: content is " + std::to_string(content.size()) +
                               " bytes, more than the " + std::to_string(options_.max_write_bytes) +
                               "-byte limit");
    Result<internal::ResolvedParent> parent = internal::resolve_parent(ctx.workspace, path, false, true);
    if (!parent) return ToolResult::error("write_file: " + parent.status().message());
    // No O_TRUNC: nothing is changed before the target is known to be a plain, singly linked file.
    UniqueFd fd(openat(parent->dir.get(), parent->name.c_str(),
                       O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
                           (append ? O_APPEND : 0),
                       0644));
    if (fd.get() < 0) return ToolResult::error("write_file: " + internal::describe_open_error(errno, path));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return ToolResult::error("write_file: '" + path + "' is not a regular file");
    // A hard link could tie a workspace name to a file elsewhere.
    if (st.st_nlink > 1)
      return ToolResult::error("write_file: '" + path + "' has several hard links; refusing to write");
    if (geteuid() == 0 && st.st_uid != parent->owner_uid)
      (void)fchown(fd.get(), parent->owner_uid, parent->owner_gid);
    if (!append && ftruncate(fd.get(), 0) != 0)
      return ToolResult::error("write_file: '" + path + "': " + std::strerror(errno));
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ToolResult::error("write_file: '" + path + "': " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    return ToolResult::success((append ? "appended " : "wrote ") + std::to_string(done) +
                                   " bytes to " + path,
                               ctx.output_cap);
  }

  FileToolOptions options_;
};

class ListDirTool final : public Tool {
 public:
  explicit ListDirTool(FileToolOptions options) : options_(options) {}
  std::string_view name() const override { return "list_dir"; }
  std::string_view description() const override {
    return "List a directory of the workspace: directories end in '/', files show their size, "
           "symlinks their target (they are never followed).";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("path": {"type": "string", "description": "directory relative to the workspace (default: the workspace)"}}, )j"
           R"j("additionalProperties": false})j";
  }
  bool idempotent() const override { return true; }

  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    co_return list(call, ctx);
  }

 private:
  ToolResult list(const ToolCall& call, const ToolContext& ctx) const {
    Result<json::object> args = arguments_of(call);
    if (!args) return ToolResult::error(args.status().message());
    std::string path = internal::string_field(*args, "path", ".");
    Result<internal::ResolvedParent> parent = internal::resolve_parent(ctx.workspace, path, true, false);
    if (!parent) return ToolResult::error("list_dir: " + parent.status().message());
    int fd = parent->name.empty()
                 ? parent->dir.release()
                 : openat(parent->dir.get(), parent->name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ToolResult::error("list_dir: " + internal::describe_open_error(errno, path));
    DIR* d = fdopendir(fd);
    if (!d) {
      close(fd);
      return ToolResult::error("list_dir: '" + path + "': " + std::strerror(errno));
    }
    std::vector<std::string> lines;
    size_t total = 0;
    while (dirent* e = readdir(d)) {
      std::string entry = e->d_name;
      if (entry == "." || entry == "..") continue;
      ++total;
      if (lines.size() >= options_.max_entries) continue;
      lines.push_back(describe_entry(dirfd(d), entry));
    }
    closedir(d);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    if (total > lines.size())
      out += "[" + std::to_string(total - lines.size()) + " more entries not shown]\n";
    if (total == 0) out = "(empty directory)\n";
    return ToolResult::success(std::move(out), ctx.output_cap);
  }

  static std::string describe_entry(int dir, const std::string& entry) {
    std::string shown = utf8::lossy(entry);
    struct stat st {};
    if (fstatat(dir, entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return shown + " (unreadable)";
    if (S_ISDIR(st.st_mode)) return shown + "/";
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(dir, entry.c_str(), target, sizeof target);
      return shown + " -> " + (n >= 0 ? utf8::lossy(std::string_view(target, n)) : "?") +
             " (symlink, not followed)";
    }
    if (S_ISREG(st.st_mode)) return shown + "  " + std::to_string(st.st_size) + " bytes";
    return shown + " (special file)";
  }

  FileToolOptions options_;
};

}  // namespace

std::shared_ptr<Tool> make_read_file_tool(FileToolOptions options) {
  return std::make_shared<ReadFileTool>(options);
}
std::shared_ptr<Tool> make_write_file_tool(FileToolOptions options) {
  return std::make_shared<WriteFileTool>(options);
}
std::shared_ptr<Tool> make_list_dir_tool(FileToolOptions options) {
  return std::make_shared<ListDirTool>(options);
}

}  // namespace mnemo::tools
