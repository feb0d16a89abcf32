#pragma once
// One assistant turn assembled from decoded text: the V4 output parser's events become OpenAI
// message deltas (content, reasoning_content, tool_calls) and the final message; `stop` strings end
// the content early. Shared by streamed and whole responses, so both say the same thing.
#include <mnemo/inference/chat.h>

#include <boost/json/object.hpp>

#include <memory>
#include <string>
#include <vector>

namespace mnemo::server {

class TurnAssembler {
 public:
  // `id_seed` makes tool-call ids: "call_" + hex of SHA-256(id_seed, index).
  TurnAssembler(inference::ThinkingMode mode, std::vector<std::string> stops,
                std::string id_seed);

  // A decoded piece of the completion; appends the deltas it completes.
  void push(std::string_view piece, std::vector<boost::json::object>& deltas);
  // The end: `complete` when the model ended its turn (EOS), not when it was cut short.
  void finish(bool complete, std::vector<boost::json::object>& deltas);

  // A stop string was generated: the caller cancels the request, the turn is over.
  bool stopped() const { return stopped_; }
  // The output was not a well-formed V4 turn: what follows the error is plain content.
  bool failed() const { return failed_; }
  const std::string& content() const { return content_; }
  const std::string& reasoning() const { return reasoning_; }
  // Complete calls only (a call cut short or voided by a malformed turn is not listed).
  const std::vector<inference::ToolCall>& tool_calls() const { return final_calls_; }

 private:
  void handle(const inference::ChatEvent& e, std::string_view piece,
              std::vector<boost::json::object>& deltas, bool at_end);
  void add_content(std::string_view text, std::vector<boost::json::object>& deltas);
  void emit_content(std::string text, std::vector<boost::json::object>& deltas);
  std::string call_id(size_t index) const;

  std::unique_ptr<inference::ChatOutputParser> parser_;
  std::vector<std::string> stops_;
  std::string id_seed_;
  std::vector<inference::ChatEvent> events_;
  std::string held_;        // content that may begin a stop string
  std::string leading_ws_;  // whitespace before any content: dropped when the turn is a call
  std::string content_, reasoning_;
  std::vector<inference::ToolCall> calls_, final_calls_;
  bool stopped_ = false;
  bool failed_ = false;
};

}  // namespace mnemo::server
