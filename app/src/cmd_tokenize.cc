// `mnemo tokenize`: JSON lines in, JSON lines out; a bad line gets an error line and the rest goes on.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/tokenizer.h>

#include <simdjson.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "paths.h"

namespace mnemo::app {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string model;
  bool decode = false;
};

std::string error_line(size_t line_no, std::string_view message) {
  std::string out = "{\"error\": ";
  json::append_string(out, "line " + std::to_string(line_no) + ": " + std::string(message));
  out += "}";
  return out;
}

std::string encode_line(const inference::Tokenizer& tok, simdjson::dom::element doc, size_t line_no) {
  std::string_view text;
  if (doc["text"].get(text)) return error_line(line_no, "expected {\"text\": \"...\"}");
  auto ids = tok.encode(text);
  if (!ids) return error_line(line_no, ids.status().message());
  std::string out = "{\"ids\": [";
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i) out += ", ";
    out += std::to_string((*ids)[i]);
  }
  out += "]}";
  return out;
}

std::string decode_line(const inference::Tokenizer& tok, simdjson::dom::element doc, size_t line_no) {
  simdjson::dom::array arr;
  if (doc["ids"].get(arr)) return error_line(line_no, "expected {\"ids\": [...]}");
  std::vector<inference::TokenId> ids;
  size_t index = 0;
  for (simdjson::dom::element e : arr) {
    int64_t id;
    if (e.get(id) || id < 0 || id > INT32_MAX) {
      return error_line(line_no, "ids[" + std::to_string(index) + "] is not a token id");
    }
    ids.push_back(static_cast<inference::TokenId>(id));
    ++index;
  }
  auto text = tok.decode(ids);
  if (!text) return error_line(line_no, text.status().message());
  std::string out = "{\"text\": ";
  json::append_string(out, *text);
  out += "}";
  return out;
}

int run_tokenize(const TokenizeOptions& opt) {
  auto path = resolve_tokenizer(opt.tokenizer, opt.model);
  if (!path) return fail(path.status().message());
  auto tok = inference::Tokenizer::load(*path);
  if (!tok) return fail(tok.status().message());
  simdjson::dom::parser parser;
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    simdjson::dom::element doc;
    std::string out;
    if (auto e = parser.parse(line).get(doc)) {
      out = error_line(line_no, std::string("invalid JSON: ") + simdjson::error_message(e));
    } else {
      out = opt.decode ? decode_line(*tok, doc, line_no) : encode_line(*tok, doc, line_no);
    }
    std::cout << out << '\n';
  }
  std::cout.flush();
  return 0;
}

}  // namespace

void register_tokenize_command(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Token ids of JSON lines {\"text\": ...} on stdin, one {\"ids\": [...]} line each");
  cmd->add_option("--tokenizer", opt->tokenizer, "tokenizer.json to use");
  cmd->add_option("--model", opt->model, "model directory (uses DIR/tokenizer.json)");
  cmd->add_flag("--decode", opt->decode, "read {\"ids\": [...]} lines and write {\"text\": ...}");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_tokenize(*opt); });
}

}  // namespace mnemo::app
