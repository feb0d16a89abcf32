// `mnemo chat render|parse`: the chat codecs over JSON lines; a bad line gets an error line and the
// rest goes on.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/chat.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>
#include <simdjson.h>

#include <iostream>
#include <memory>
#include <optional>

#include "commands.h"
#include "paths.h"

namespace mnemo::app {
namespace {

struct RenderOptions {
  std::string codec = "v4";
  std::string tokenizer;
  std::string model;
};

struct ParseOptions {
  std::string codec = "v4";
  std::string thinking_mode = "chat";
};

std::string error_line(size_t line_no, std::string_view message) {
  std::string out = "{\"error\": ";
  json::append_string(out, "line " + std::to_string(line_no) + ": " + std::string(message));
  out += "}";
  return out;
}

// Calls `handle(line, line_no)` for each non-blank stdin line and prints what it returns.
template <typename Handler>
void for_each_line(Handler&& handle) {
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::cout << handle(line, line_no) << '\n';
  }
  std::cout.flush();
}

std::string render_line(const inference::ChatCodec& codec, const inference::Tokenizer* tok,
                        std::string_view line, size_t line_no) {
  auto conv = inference::parse_conversation_json(line);
  if (!conv) return error_line(line_no, conv.status().message());
  auto prompt = codec.render(*conv);
  if (!prompt) return error_line(line_no, prompt.status().message());
  std::string out = "{\"rendered\": ";
  json::append_string(out, *prompt);
  if (tok) {
    auto ids = tok->encode(*prompt);
    if (!ids) return error_line(line_no, ids.status().message());
    out += ", \"ids\": [";
    for (size_t i = 0; i < ids->size(); ++i) {
      if (i) out += ", ";
      out += std::to_string((*ids)[i]);
    }
    out += "]";
  }
  out += "}";
  return out;
}

int run_render(const RenderOptions& opt) {
  auto codec = inference::make_chat_codec(opt.codec);
  if (!codec) return fail(codec.status().message());
  std::optional<inference::Tokenizer> tok;
  if (!opt.tokenizer.empty() || !opt.model.empty()) {
    auto path = resolve_tokenizer(opt.tokenizer, opt.model);
    if (!path) return fail(path.status().message());
    auto loaded = inference::Tokenizer::load(*path);
    if (!loaded) return fail(loaded.status().message());
    tok.emplace(std::move(loaded).value());
    // A bare V3 tokenizer.json lacks the V4 tokens; a model directory's is used as it is.
    if (opt.model.empty() && opt.codec == "v4") {
      if (Status st = inference::tokens::add_v4_tokens(*tok); !st) return fail(st.message());
    }
  }
  for_each_line([&](std::string_view line, size_t line_no) {
    return render_line(**codec, tok ? &*tok : nullptr, line, line_no);
  });
  return 0;
}

std::string parsed_json(const inference::AssistantMessage& msg) {
  std::string out = "{\"parsed\": {\"role\": \"assistant\", \"content\": ";
  json::append_string(out, msg.content);
  out += ", \"reasoning_content\": ";
  json::append_string(out, msg.reasoning_content);
  out += ", \"tool_calls\": [";
  for (size_t i = 0; i < msg.tool_calls.size(); ++i) {
    if (i) out += ", ";
    out += "{\"type\": \"function\", \"function\": {\"name\": ";
    json::append_string(out, msg.tool_calls[i].name);
    out += ", \"arguments\": ";
    json::append_string(out, msg.tool_calls[i].arguments);
    out += "}}";
  }
  out += "]}}";
  return out;
}

std::string parse_line(const inference::ChatCodec& codec, inference::ThinkingMode default_mode,
                       simdjson::dom::parser& parser, std::string_view line, size_t line_no) {
  simdjson::dom::element doc;
  if (auto e = parser.parse(line.data(), line.size()).get(doc)) {
    return error_line(line_no, std::string("invalid JSON: ") + simdjson::error_message(e));
  }
  std::string_view completion;
  if (doc["completion"].get(completion)) {
    return error_line(line_no, "expected {\"completion\": \"...\"}");
  }
  // A line may carry its own thinking_mode, as the golden parse records do.
  inference::ThinkingMode mode = default_mode;
  std::string_view mode_name;
  if (!doc["thinking_mode"].get(mode_name)) {
    auto m = inference::parse_thinking_mode(mode_name);
    if (!m) return error_line(line_no, "thinking_mode: " + m.status().message());
    mode = *m;
  }
  auto parser_or = codec.make_output_parser(mode);
  if (!parser_or) return error_line(line_no, parser_or.status().message());
  inference::ChatOutputParser& out_parser = **parser_or;
  std::vector<inference::ChatEvent> events;
  out_parser.push(completion, events);
  out_parser.finish(events);
  const bool think_tag = mode == inference::ThinkingMode::kChat &&
                         completion.find("</think>") != std::string_view::npos;
  for (const auto& e : events) {
    if (e.kind != inference::ChatEventKind::kError) continue;
    // Chat mode has no reasoning block: say which mode reads the tag.
    return error_line(line_no, e.text + (think_tag ? " (a completion with reasoning needs "
                                                     "--thinking-mode thinking, or \"thinking_mode\": "
                                                     "\"thinking\" in its line)"
                                                   : ""));
  }
  return parsed_json(out_parser.message());
}

int run_parse(const ParseOptions& opt) {
  auto codec = inference::make_chat_codec(opt.codec);
  if (!codec) return fail(codec.status().message());
  auto mode = inference::parse_thinking_mode(opt.thinking_mode);
  if (!mode) return fail("--thinking-mode: " + mode.status().message());
  // Fail before reading input when the codec cannot parse at all.
  if (auto probe = (*codec)->make_output_parser(*mode); !probe)
    return fail(probe.status().message());
  simdjson::dom::parser parser;
  for_each_line([&](std::string_view line, size_t line_no) {
    return parse_line(**codec, *mode, parser, line, line_no);
  });
  return 0;
}

}  // namespace

void register_chat_commands(CLI::App& app, CommandContext& ctx) {
  CLI::App* chat = app.add_subcommand("chat", "Chat codecs: render prompts, parse model output");
  chat->require_subcommand(1);

  auto ropt = std::make_shared<RenderOptions>();
  CLI::App* render = chat->add_subcommand(
      "render",
      "Render JSON lines {\"messages\", \"tools\", options...} on stdin to prompts, one "
      "{\"rendered\": ...} (plus \"ids\" with a tokenizer) or {\"error\": ...} line each");
  render->add_option("--codec", ropt->codec, "prompt format: v4 (DeepSeek-V4) or v3 (V3 family)")
      ->check(CLI::IsMember({"v4", "v3"}))
      ->capture_default_str();
  render->add_option("--tokenizer", ropt->tokenizer,
                     "tokenizer.json to add token ids with (the V4 tokens are added for v4)");
  render->add_option("--model", ropt->model,
                     "model directory whose tokenizer.json adds token ids (used as it is)");
  render->callback([ropt, &ctx] { ctx.exit_code = run_render(*ropt); });

  auto popt = std::make_shared<ParseOptions>();
  CLI::App* parse = chat->add_subcommand(
      "parse",
      "Parse JSON lines {\"completion\": ...} of generated text on stdin, one {\"parsed\": "
      "{role, content, reasoning_content, tool_calls}} or {\"error\": ...} line each");
  parse->add_option("--codec", popt->codec, "output format: v4 (the only one with a parser)")
      ->check(CLI::IsMember({"v4", "v3"}))
      ->capture_default_str();
  parse
      ->add_option("--thinking-mode", popt->thinking_mode,
                   "chat (the prompt ended with </think>) or thinking (it ended with <think>); a "
                   "line's own \"thinking_mode\" wins")
      ->check(CLI::IsMember({"chat", "thinking"}))
      ->capture_default_str();
  parse->callback([popt, &ctx] { ctx.exit_code = run_parse(*popt); });
}

}  // namespace mnemo::app
