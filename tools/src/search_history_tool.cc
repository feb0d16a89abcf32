// search_history: finds text in this session's earlier events (tool outputs stored whole included),
// so an agent can recall what it saw many steps ago.
#include <mnemo/base/utf8.h>
#include <mnemo/tools/builtin_tools.h>
#include <mnemo/tools/output_cap.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <boost/regex.hpp>
#include <optional>

#include "py_json.h"

namespace mnemo::tools {
namespace {

namespace json = boost::json;

constexpr size_t kExcerptContext = 160;  // bytes kept on each side of a match
constexpr size_t kMatchesPerEvent = 3;

// The text a payload is searched in: its string values decoded (a tool output's newlines are real
// newlines, not "\n"), one "key: value" line each; raw text when it is not JSON.
void collect_strings(const json::value& v, std::string_view key, std::string& out) {
  switch (v.kind()) {
    case json::kind::string:
      if (!key.empty()) out.append(key).append(": ");
      out.append(v.get_string().data(), v.get_string().size());
      out += '\n';
      break;
    case json::kind::array:
      for (const json::value& e : v.get_array()) collect_strings(e, key, out);
      break;
    case json::kind::object:
      for (const auto& kv : v.get_object())
        collect_strings(kv.value(), std::string_view(kv.key().data(), kv.key().size()), out);
      break;
    default:
      break;
  }
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string excerpt(std::string_view text, size_t begin, size_t end) {
  size_t from = begin > kExcerptContext ? begin - kExcerptContext : 0;
  size_t to = std::min(text.size(), end + kExcerptContext);
  while (from > 0 && is_continuation(text[from])) --from;
  while (to < text.size() && is_continuation(text[to])) ++to;
  std::string out = from > 0 ? "..." : "";
  out.append(text.substr(from, to - from));
  if (to < text.size()) out += "...";
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class SearchHistoryTool final : public Tool {
 public:
  std::string_view name() const override { return "search_history"; }
  std::string_view description() const override {
    return "Search this session's earlier events (messages, tool calls and their complete "
           "outputs, also those cut short in the conversation) for a text or a regular "
           "expression. Returns excerpts around each match with the event's seq number.";
  }
  std::string_view parameters() const override {
    return R"j({"type": "object", "properties": {)j"
           R"j("query": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "text to find"}, )j"
           R"j("regex": {"type": "boolean", "description": "treat query as a regular expression (ECMAScript syntax; default false)"}, )j"
           R"j("ignore_case": {"type": "boolean", "description": "default false"}, )j"
           R"j("max_results": {"type": "integer", "minimum": 1, "maximum": 50, "description": "most recent matches to return (default 10)"}}, )j"
           R"j("required": ["query"], "additionalProperties": false})j";
  }
  bool idempotent() const override { return true; }

  boost::asio::awaitable<ToolResult> run(ToolCall call, ToolContext& ctx) override {
    co_return search(call, ctx);
  }

 private:
  struct Match {
    uint64_t seq;
    std::string type, text;
  };

  static ToolResult search(const ToolCall& call, const ToolContext& ctx) {
    Result<json::value> args = internal::parse_json(call.arguments, "arguments");
    if (!args || !args->is_object())
      return ToolResult::error("search_history: arguments must be an object");
    const json::object& a = args->get_object();
    const std::string query = internal::string_field(a, "query");
    const bool use_regex = internal::bool_field(a, "regex", false);
    const bool ignore_case = internal::bool_field(a, "ignore_case", false);
    const auto max_results = static_cast<size_t>(internal::int_field(a, "max_results", 10));
    if (!ctx.store) return ToolResult::error("search_history: this session has no store");

    std::optional<boost::regex> re;
    if (use_regex) {
      try {
        re.emplace(query, boost::regex::ECMAScript | (ignore_case ? boost::regex::icase : 0));
      } catch (const std::exception& e) {
        return ToolResult::error("search_history: arguments.query is not a valid regular "
                                 "expression: " + std::string(e.what()));
      }
    }
    Result<std::vector<memory::Event>> events = ctx.store->read_events(ctx.session_id);
    if (!events) return ToolResult::error("search_history: " + events.status().message());

    const std::string needle = ignore_case ? lower_ascii(query) : query;
    std::vector<Match> matches;
    for (const memory::Event& e : *events) {
      std::string text;
      Result<json::value> payload = internal::parse_json(e.payload, "payload");
      if (payload) {
        // A search must not find its own call (or earlier searches) by the query it carries.
        if (payload->is_object() &&
            (internal::string_field(payload->get_object(), "name") == "search_history" ||
             internal::string_field(payload->get_object(), "tool") == "search_history"))
          continue;
        collect_strings(*payload, "", text);
      } else {
        text = utf8::lossy(e.payload);
      }
      std::vector<std::pair<size_t, size_t>> spans;
      if (re) {
        try {
          auto begin = boost::sregex_iterator(text.begin(), text.end(), *re);
          for (auto it = begin; it != boost::sregex_iterator() && spans.size() < kMatchesPerEvent; ++it) {
            size_t at = static_cast<size_t>(it->position());
            spans.emplace_back(at, at + static_cast<size_t>(it->length()));
          }
        } catch (const std::exception& ex) {
          return ToolResult::error("search_history: the regular expression failed on seq " +
                                   std::to_string(e.seq) + ": " + ex.what());
        }
      } else {
        const std::string hay = ignore_case ? lower_ascii(text) : text;
        for (size_t at = hay.find(needle); at != std::string::npos && spans.size() < kMatchesPerEvent;
             at = hay.find(needle, at + needle.size()))
          spans.emplace_back(at, at + needle.size());
      }
      for (auto [b, en] : spans) matches.push_back({e.seq, e.type, excerpt(text, b, en)});
    }
    if (matches.empty()) return ToolResult::success("no matches for " + query, ctx.output_cap);
    const size_t shown = std::min(max_results, matches.size());
    std::string out = std::to_string(matches.size()) + " match" + (matches.size() == 1 ? "" : "es");
    if (shown < matches.size()) out += ", the " + std::to_string(shown) + " most recent shown";
    out += "\n";
    for (size_t i = matches.size() - shown; i < matches.size(); ++i) {
      out += "--- seq " + std::to_string(matches[i].seq) + " (" + matches[i].type + ")\n";
      out += matches[i].text;
      if (out.back() != '\n') out += '\n';
    }
    return ToolResult::success(std::move(out), ctx.output_cap);
  }
};

}  // namespace

std::shared_ptr<Tool> make_search_history_tool() { return std::make_shared<SearchHistoryTool>(); }

}  // namespace mnemo::tools
