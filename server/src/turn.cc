#include "turn.h"

#include <boost/json.hpp>

#include <mnemo/base/sha256.h>

#include <algorithm>

namespace mnemo::server {
namespace json = boost::json;
using inference::ChatEvent;
using inference::ChatEventKind;

namespace {

bool all_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}

json::object tool_delta(json::object call) {
  json::array calls;
  calls.push_back(std::move(call));
  json::object d;
  d["tool_calls"] = std::move(calls);
  return d;
}

}  // namespace

TurnAssembler::TurnAssembler(inference::ThinkingMode mode, std::vector<std::string> stops,
                             std::string id_seed)
    : parser_(inference::make_v4_output_parser(mode)),
      stops_(std::move(stops)),
      id_seed_(std::move(id_seed)) {}

std::string TurnAssembler::call_id(size_t index) const {
  return "call_" + to_hex(sha256(id_seed_ + "/tool_call/" + std::to_string(index))).substr(0, 24);
}

void TurnAssembler::push(std::string_view piece, std::vector<json::object>& deltas) {
  if (stopped_) return;
  if (failed_) {
    add_content(piece, deltas);
    return;
  }
  events_.clear();
  parser_->push(piece, events_);
  for (const ChatEvent& e : events_) handle(e, piece, deltas, false);
}

void TurnAssembler::finish(bool complete, std::vector<json::object>& deltas) {
  if (!stopped_ && !failed_) {
    events_.clear();
    parser_->finish(events_);
    for (const ChatEvent& e : events_) {
      // A turn cut short (length) is not malformed: keep what was said.
      if (e.kind == ChatEventKind::kError && !complete) break;
      handle(e, {}, deltas, true);
    }
  }
  if (!stopped_) {
    std::string rest = std::exchange(held_, {});
    if (!rest.empty()) emit_content(std::move(rest), deltas);
  }
}

void TurnAssembler::handle(const ChatEvent& e, std::string_view piece,
                           std::vector<json::object>& deltas, bool at_end) {
  switch (e.kind) {
    case ChatEventKind::kTextDelta:
      add_content(e.text, deltas);
      break;
    case ChatEventKind::kReasoningDelta: {
      if (e.text.empty()) break;
      reasoning_ += e.text;
      json::object d;
      d["reasoning_content"] = e.text;
      deltas.push_back(std::move(d));
      break;
    }
    case ChatEventKind::kToolCallBegin: {
      calls_.resize(std::max(calls_.size(), e.tool_index + 1));
      inference::ToolCall& c = calls_[e.tool_index];
      c.id = call_id(e.tool_index);
      c.type = "function";
      c.name = e.name;
      json::object call{{"index", e.tool_index}, {"id", c.id}, {"type", "function"}};
      call["function"] = json::object{{"name", e.name}, {"arguments", ""}};
      deltas.push_back(tool_delta(std::move(call)));
      break;
    }
    case ChatEventKind::kToolCallArgsDelta: {
      if (e.tool_index >= calls_.size() || e.text.empty()) break;
      calls_[e.tool_index].arguments += e.text;
      json::object call{{"index", e.tool_index}};
      call["function"] = json::object{{"arguments", e.text}};
      deltas.push_back(tool_delta(std::move(call)));
      break;
    }
    case ChatEventKind::kToolCallEnd:
      if (e.tool_index < calls_.size()) calls_[e.tool_index].arguments = e.arguments;
      break;
    case ChatEventKind::kEndOfTurn:
      final_calls_ = calls_;
      break;
    case ChatEventKind::kError:
      // Not a V4 turn: the piece that broke it and everything after is plain content.
      failed_ = true;
      calls_.clear();
      if (!at_end) add_content(piece, deltas);
      break;
  }
}

void TurnAssembler::add_content(std::string_view text, std::vector<json::object>& deltas) {
  if (stopped_ || text.empty()) return;
  held_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string before = held_.substr(0, cut);
    held_.clear();
    if (!before.empty()) emit_content(std::move(before), deltas);
    return;
  }
  // Hold back the longest tail that could still begin a stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  if (held_.size() > keep) {
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    emit_content(std::move(out), deltas);
  }
}

void TurnAssembler::emit_content(std::string text, std::vector<json::object>& deltas) {
  // Whitespace before the first words is held: a turn that is only a tool call has no content.
  if (content_.empty()) {
    leading_ws_ += text;
    if (all_space(leading_ws_)) return;
    text = std::exchange(leading_ws_, {});
  }
  if (text.empty()) return;
  content_ += text;
  json::object d;
  d["content"] = text;
  deltas.push_back(std::move(d));
}

}  // namespace mnemo::server
