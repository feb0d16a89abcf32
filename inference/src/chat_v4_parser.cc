// Incremental parser of DeepSeek-V4 output: reasoning, content and DSML tool calls, recognised as
// the text streams in. It accepts what the official parse_message_from_completion_text accepts,
// with the same result, except that a truncated tool block or a string="false" value that is not
// JSON is an error here (the official parser lets both through).
#include <mnemo/base/json_text.h>
#include <mnemo/base/utf8.h>
#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_dsml.h>
#include <mnemo/inference/chat_json.h>
#include <mnemo/inference/special_tokens.h>

#include <algorithm>
#include <span>

namespace mnemo::inference {
namespace {

constexpr size_t kNone = std::string_view::npos;

struct MarkerScan {
  size_t pos = kNone;  // where the marker starts, or where a possible marker starts (partial)
  size_t marker = 0;
  bool partial = false;
};

// The earliest place in buf[from..] where one of `markers` starts. With `allow_partial`, a suffix
// of buf that could still grow into a marker wins when it starts no later than any full match.
MarkerScan scan_markers(std::string_view buf, size_t from,
                        std::span<const std::string_view> markers, bool allow_partial) {
  MarkerScan scan;
  size_t max_len = 0;
  for (size_t i = 0; i < markers.size(); ++i) {
    max_len = std::max(max_len, markers[i].size());
    size_t p = buf.find(markers[i], from);
    if (p < scan.pos) {
      scan.pos = p;
      scan.marker = i;
    }
  }
  if (!allow_partial) return scan;
  size_t lo = std::max(from, buf.size() >= max_len ? buf.size() - max_len + 1 : size_t{0});
  size_t hi = std::min(scan.pos, buf.size() - 1);
  for (size_t s = lo; s <= hi && s < buf.size(); ++s) {
    std::string_view tail = buf.substr(s);
    for (std::string_view m : markers) {
      if (m.size() > tail.size() && m.substr(0, tail.size()) == tail) {
        return {s, 0, true};
      }
    }
  }
  return scan;
}

// Python's str.isspace(), which is what `\s` matches in the official parser's regular expressions.
bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Bytes of leading whitespace in s (stops at anything that is not complete, valid whitespace).
size_t skip_py_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    bool valid = false;
    size_t n = utf8::sequence_length(s.substr(i), valid);
    if (n == 0 || !valid) break;
    size_t j = i;
    if (!is_py_space(utf8::next(s, j))) break;
    i += n;
  }
  return i;
}

constexpr std::string_view kNameAttr = "name=\"";
constexpr std::string_view kParamNameAttr = " name=\"";

// The invoke header is `\s*name="NAME">\n`, where a second "\n" may follow (an invoke without
// parameters is written with an empty line).
std::optional<std::string_view> invoke_name(std::string_view header) {
  std::string_view rest = header.substr(skip_py_space(header));
  if (rest.substr(0, kNameAttr.size()) != kNameAttr) return std::nullopt;
  rest.remove_prefix(kNameAttr.size());
  for (std::string_view end : {std::string_view("\">\n\n"), std::string_view("\">\n")}) {
    if (rest.size() >= end.size() && rest.substr(rest.size() - end.size()) == end) {
      return rest.substr(0, rest.size() - end.size());
    }
  }
  return std::nullopt;
}

// The literal runs the strict layout requires between tags.
constexpr std::string_view kNextInvoke = ">\n<｜DSML｜invoke";
constexpr std::string_view kEndOfBlock = ">\n</｜DSML｜tool_calls>";
constexpr std::string_view kNextParameter = ">\n<｜DSML｜parameter";
constexpr std::string_view kEndOfInvoke = ">\n</｜DSML｜invoke";
constexpr std::string_view kBareValueEnd = "/｜DSML｜parameter";
constexpr std::string_view kValueEndNewline = "<\n/｜DSML｜parameter";

class V4OutputParser final : public ChatOutputParser {
 public:
  explicit V4OutputParser(ThinkingMode mode)
      : state_(mode == ThinkingMode::kThinking ? State::kReasoning : State::kContent) {}

  void push(std::string_view piece, std::vector<ChatEvent>& events) override {
    raw_.append(piece);
    if (state_ == State::kFailed || finished_) return;
    buf_.append(piece);
    while (step(events)) {
    }
  }

  void finish(std::vector<ChatEvent>& events) override {
    if (finished_) return;
    finished_ = true;
    std::string problem;
    switch (state_) {
      case State::kFailed: return;
      case State::kDone: break;
      case State::kAfterBlock:
        if (!buf_.empty()) problem = "the end-of-sentence token is cut off";
        break;
      case State::kReasoning: problem = "missing </think>: the reasoning never ends"; break;
      case State::kContent: problem = "missing end-of-sentence token"; break;
      default: problem = "the tool-call block is cut off"; break;
    }
    if (!problem.empty()) {
      fail(std::move(problem), events);
      return;
    }
    ChatEvent e;
    e.kind = ChatEventKind::kEndOfTurn;
    events.push_back(std::move(e));
  }

  const AssistantMessage& message() const override { return message_; }
  bool failed() const override { return state_ == State::kFailed; }
  const std::string& raw_text() const override { return raw_; }

 private:
  enum class State {
    kReasoning,     // before </think>
    kContent,       // before EOS or a tool block
    kBlockOpen,     // after "\n\n<｜DSML｜tool_calls": ">\n" and an invoke or the block's end
    kInvokeHeader,  // after "<｜DSML｜invoke": ` name="NAME">\n`
    kParamHeader,   // after "<｜DSML｜parameter": ` name="KEY" string="true|false">`
    kParamValue,    // the value, up to "</｜DSML｜parameter"
    kAfterParam,    // ">\n" and the next parameter or the invoke's end
    kAfterInvoke,   // ">\n" and the next invoke or the block's end
    kAfterBlock,    // an optional EOS
    kDone,          // nothing more may follow
    kFailed,
  };

  bool step(std::vector<ChatEvent>& events) {
    switch (state_) {
      case State::kReasoning:
      case State::kContent: return step_text(events);
      case State::kBlockOpen:
      case State::kAfterInvoke: return step_between_invokes(events);
      case State::kInvokeHeader: return step_invoke_header(events);
      case State::kParamHeader: return step_param_header(events);
      case State::kParamValue: return step_param_value(events);
      case State::kAfterParam: return step_after_param(events);
      case State::kAfterBlock: {
        int m = match_literal({tokens::kEos});
        if (m == kWait) return false;
        if (m == kMismatch) return fail("unexpected text after the tool calls", events);
        state_ = State::kDone;
        return true;
      }
      case State::kDone:
        if (buf_.empty()) return false;
        return fail("unexpected text after the end-of-sentence token", events);
      case State::kFailed: return false;
    }
    return false;
  }

  bool step_text(std::vector<ChatEvent>& events) {
    static constexpr std::string_view kReasoningMarkers[] = {
        tokens::kThinkEnd, tokens::kBos, tokens::kEos, tokens::kThinkBegin, tokens::kDsml};
    static constexpr std::string_view kContentMarkers[] = {tokens::kEos,      dsml::kToolCallsStart,
                                                           tokens::kBos,      tokens::kThinkBegin,
                                                           tokens::kThinkEnd, tokens::kDsml};
    const bool reasoning = state_ == State::kReasoning;
    std::span<const std::string_view> markers =
        reasoning ? std::span<const std::string_view>(kReasoningMarkers)
                  : std::span<const std::string_view>(kContentMarkers);
    MarkerScan scan = scan_markers(buf_, 0, markers, true);
    size_t end = scan.pos == kNone ? buf_.size() : scan.pos;
    emit_text(reasoning, std::string_view(buf_).substr(0, end), events);
    if (scan.pos == kNone || scan.partial) {
      buf_.erase(0, end);
      return false;
    }
    std::string_view marker = markers[scan.marker];
    buf_.erase(0, end + marker.size());
    if (scan.marker == 0) {
      state_ = reasoning ? State::kContent : State::kDone;
      return true;
    }
    if (!reasoning && scan.marker == 1) {
      state_ = State::kBlockOpen;
      return true;
    }
    return fail("unexpected '" + std::string(marker) + "' in the " +
                    (reasoning ? "reasoning (before </think>)" : "content"),
                events);
  }

  bool step_between_invokes(std::vector<ChatEvent>& events) {
    int m = match_literal({kNextInvoke, kEndOfBlock});
    if (m == kWait) return false;
    if (m == kMismatch) {
      return fail("tool calls: expected '>\\n' and then an invoke or the end of the block", events);
    }
    if (state_ == State::kAfterInvoke) complete_call(events);
    state_ = m == 0 ? State::kInvokeHeader : State::kAfterBlock;
    return true;
  }

  bool step_invoke_header(std::vector<ChatEvent>& events) {
    static constexpr std::string_view kMarkers[] = {dsml::kParameterOpen, dsml::kInvokeClose};
    MarkerScan scan = scan_markers(buf_, scan_from_, kMarkers, false);
    if (scan.pos == kNone) {
      // Fail early when the text after the leading whitespace cannot begin `name="`.
      std::string_view rest = std::string_view(buf_).substr(skip_py_space(buf_));
      if (!rest.empty() && static_cast<unsigned char>(rest[0]) < 0x80) {
        size_t n = std::min(rest.size(), kNameAttr.size());
        if (rest.substr(0, n) != kNameAttr.substr(0, n)) {
          return fail("tool calls: malformed invoke header", events);
        }
      }
      keep_scanning_from(kMarkers);
      return false;
    }
    auto name = invoke_name(std::string_view(buf_).substr(0, scan.pos));
    if (!name) return fail("tool calls: malformed invoke header", events);
    call_name_.assign(*name);
    call_args_.clear();
    param_names_.clear();
    ChatEvent e;
    e.kind = ChatEventKind::kToolCallBegin;
    e.tool_index = message_.tool_calls.size();
    e.name = call_name_;
    events.push_back(std::move(e));
    consume(scan.pos + kMarkers[scan.marker].size());
    state_ = scan.marker == 0 ? State::kParamHeader : State::kAfterInvoke;
    return true;
  }

  bool step_param_header(std::vector<ChatEvent>& events) {
    static constexpr std::string_view kMarkers[] = {"\" string=\"true\">", "\" string=\"false\">",
                                                    kBareValueEnd};
    size_t n = std::min(buf_.size(), kParamNameAttr.size());
    if (std::string_view(buf_).substr(0, n) != kParamNameAttr.substr(0, n)) {
      return fail("tool calls: malformed parameter header in '" + call_name_ + "'", events);
    }
    if (buf_.size() < kParamNameAttr.size()) return false;
    MarkerScan scan =
        scan_markers(buf_, std::max(scan_from_, kParamNameAttr.size()), kMarkers, false);
    if (scan.pos == kNone) {
      keep_scanning_from(kMarkers);
      return false;
    }
    if (scan.marker == 2) {
      return fail("tool calls: malformed parameter in '" + call_name_ +
                      "' (string must be \"true\" or \"false\")",
                  events);
    }
    std::string key = buf_.substr(kParamNameAttr.size(), scan.pos - kParamNameAttr.size());
    if (std::find(param_names_.begin(), param_names_.end(), key) != param_names_.end()) {
      return fail("tool calls: duplicate parameter '" + key + "' in '" + call_name_ + "'", events);
    }
    value_is_string_ = scan.marker == 0;
    value_.clear();
    std::string delta = param_names_.empty() ? "{" : ", ";
    json::append_string(delta, key);
    delta.append(": ");
    if (value_is_string_) delta.push_back('"');
    param_names_.push_back(std::move(key));
    emit_args(delta, events);
    consume(scan.pos + kMarkers[scan.marker].size());
    state_ = State::kParamValue;
    return true;
  }

  bool step_param_value(std::vector<ChatEvent>& events) {
    // The official parser ends a value at "/｜DSML｜parameter" and requires "<" (or "<\n") before
    // it.
    static constexpr std::string_view kMarkers[] = {dsml::kParameterClose, kValueEndNewline,
                                                    kBareValueEnd};
    MarkerScan scan = scan_markers(buf_, 0, kMarkers, true);
    size_t end = scan.pos == kNone ? buf_.size() : scan.pos;
    append_value(std::string_view(buf_).substr(0, end), events);
    if (scan.pos == kNone || scan.partial) {
      buf_.erase(0, end);
      return false;
    }
    if (scan.marker == 2) {
      return fail("tool calls: malformed end of parameter '" + param_names_.back() + "'", events);
    }
    if (!value_is_string_) {
      PyJsonParseOptions strict;
      strict.allow_nan = false;
      auto parsed = parse_py_json(value_, strict);
      if (!parsed.is_ok()) {
        return fail("tool calls: parameter '" + param_names_.back() + "' of '" + call_name_ +
                        "' is marked string=\"false\" but is not JSON (" +
                        parsed.status().message() + ")",
                    events);
      }
    } else {
      emit_args("\"", events);
    }
    consume(end + kMarkers[scan.marker].size());
    state_ = State::kAfterParam;
    return true;
  }

  bool step_after_param(std::vector<ChatEvent>& events) {
    int m = match_literal({kNextParameter, kEndOfInvoke});
    if (m == kWait) return false;
    if (m == kMismatch) {
      return fail("tool calls: expected '>\\n' after parameter '" + param_names_.back() + "'",
                  events);
    }
    state_ = m == 0 ? State::kParamHeader : State::kAfterInvoke;
    return true;
  }

  static constexpr int kWait = -1;
  static constexpr int kMismatch = -2;

  // Which literal buf_ begins with (consuming it); kWait while buf_ is a proper prefix of one.
  int match_literal(std::initializer_list<std::string_view> literals) {
    bool could_grow = false;
    int index = 0;
    for (std::string_view lit : literals) {
      if (buf_.size() >= lit.size() && std::string_view(buf_).substr(0, lit.size()) == lit) {
        consume(lit.size());
        return index;
      }
      if (buf_.size() < lit.size() && lit.substr(0, buf_.size()) == buf_) could_grow = true;
      ++index;
    }
    return could_grow ? kWait : kMismatch;
  }

  void consume(size_t n) {
    buf_.erase(0, n);
    scan_from_ = 0;
  }

  // No marker starts before the last (longest marker - 1) bytes: later scans start there.
  void keep_scanning_from(std::span<const std::string_view> markers) {
    size_t max_len = 0;
    for (auto m : markers) max_len = std::max(max_len, m.size());
    scan_from_ = buf_.size() >= max_len ? buf_.size() - max_len + 1 : 0;
  }

  void emit_text(bool reasoning, std::string_view text, std::vector<ChatEvent>& events) {
    if (text.empty()) return;
    (reasoning ? message_.reasoning_content : message_.content).append(text);
    ChatEvent e;
    e.kind = reasoning ? ChatEventKind::kReasoningDelta : ChatEventKind::kTextDelta;
    e.text.assign(text);
    events.push_back(std::move(e));
  }

  void append_value(std::string_view text, std::vector<ChatEvent>& events) {
    if (text.empty()) return;
    if (!value_is_string_) {
      value_.append(text);
      emit_args(text, events);
      return;
    }
    // Escape like json.dumps, without the surrounding quotes (they come with the header and end).
    std::string quoted;
    json::append_string(quoted, text);
    emit_args(std::string_view(quoted).substr(1, quoted.size() - 2), events);
  }

  void emit_args(std::string_view delta, std::vector<ChatEvent>& events) {
    if (delta.empty()) return;
    call_args_.append(delta);
    ChatEvent e;
    e.kind = ChatEventKind::kToolCallArgsDelta;
    e.tool_index = message_.tool_calls.size();
    e.text.assign(delta);
    events.push_back(std::move(e));
  }

  void complete_call(std::vector<ChatEvent>& events) {
    emit_args(param_names_.empty() ? "{}" : "}", events);
    ToolCall call;
    call.type = "function";
    call.name = call_name_;
    call.arguments = call_args_;
    ChatEvent e;
    e.kind = ChatEventKind::kToolCallEnd;
    e.tool_index = message_.tool_calls.size();
    e.name = call.name;
    e.arguments = call.arguments;
    message_.tool_calls.push_back(std::move(call));
    events.push_back(std::move(e));
  }

  // Always returns false, so a step can `return fail(...)`.
  bool fail(std::string message, std::vector<ChatEvent>& events) {
    state_ = State::kFailed;
    buf_.clear();
    ChatEvent e;
    e.kind = ChatEventKind::kError;
    e.text = std::move(message);
    e.raw = raw_;
    events.push_back(std::move(e));
    return false;
  }

  State state_;
  bool finished_ = false;
  std::string raw_;
  std::string buf_;       // text not yet consumed
  size_t scan_from_ = 0;  // header states: where the next marker search may start
  AssistantMessage message_;
  std::string call_name_;
  std::string call_args_;
  std::vector<std::string> param_names_;
  bool value_is_string_ = true;
  std::string value_;  // the raw value of a string="false" parameter
};

}  // namespace

std::unique_ptr<ChatOutputParser> make_v4_output_parser(ThinkingMode mode) {
  return std::make_unique<V4OutputParser>(mode);
}

Result<AssistantMessage> parse_v4_completion(std::string_view text, ThinkingMode mode) {
  V4OutputParser parser(mode);
  std::vector<ChatEvent> events;
  parser.push(text, events);
  parser.finish(events);
  for (const ChatEvent& e : events) {
    if (e.kind == ChatEventKind::kError) return Status::invalid_argument(e.text);
  }
  return parser.message();
}

}  // namespace mnemo::inference
