// Server-sent events, incrementally: the line rules of the WHATWG EventSource spec, data only.
#include <mnemo/inference/remote_client.h>

namespace mnemo::inference {

void SseParser::push(std::string_view bytes, std::vector<SseEvent>& events) {
  for (char c : bytes) {
    size_t at = bytes_++;
    if (done_) continue;
    if (c == '\n' && after_cr_) {
      // The LF of a CRLF whose CR already ended the line.
      after_cr_ = false;
      continue;
    }
    after_cr_ = c == '\r';
    if (c == '\r' || c == '\n') {
      end_line(events);
      continue;
    }
    if (line_.empty()) line_start_ = at;
    line_.push_back(c);
  }
}

void SseParser::end_line(std::vector<SseEvent>& events) {
  if (line_.empty()) {
    // A blank line dispatches the event, if it has data.
    if (has_data_) {
      if (data_ == "[DONE]") {
        done_ = true;
      } else {
        events.push_back(SseEvent{std::move(data_), ++events_, event_start_});
      }
    }
    data_.clear();
    has_data_ = false;
    return;
  }
  std::string_view line = line_;
  if (line.front() != ':') {
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    // event:, id: and retry: mean nothing to a chat completion; unknown fields are ignored too.
    if (field == "data") {
      if (has_data_) {
        data_.push_back('\n');
      } else {
        event_start_ = line_start_;
      }
      data_.append(value);
      has_data_ = true;
    }
  }
  line_.clear();
}

}  // namespace mnemo::inference
