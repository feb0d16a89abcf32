// Constrained decoding of DSML tool calls: every walk through the mask ends in a complete call that
// the V4 parser accepts, with arguments that match the tool's schema, within the token budget.
#include <mnemo/inference/chat.h>
#include <mnemo/inference/chat_json.h>
#include <mnemo/inference/constraint.h>
#include <mnemo/inference/engine.h>
#include <mnemo/inference/model.h>
#include <mnemo/inference/model_init.h>
#include <mnemo/inference/special_tokens.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <random>

#include "support/test_paths.h"
#include "support/v4_tokenizer.h"
#include "support/tiny_model.h"

using namespace mnemo::inference;
namespace fs = std::filesystem;

namespace {

using mnemo::test::v4_tokenizer;

std::shared_ptr<const ConstraintVocabulary> vocab() {
  static auto v = [] {
    auto built = ConstraintVocabulary::build(v4_tokenizer());
    REQUIRE(built);
    return *built;
  }();
  return v;
}

const std::vector<std::string> kTools = {
    R"({"type": "function", "function": {"name": "get_weather", "description": "Weather.",
        "parameters": {"type": "object", "properties": {
          "location": {"type": "string"},
          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
          "days": {"type": "integer"}},
        "required": ["location", "unit"]}}})",
    R"({"name": "run", "description": "Runs a command.",
        "parameters": {"type": "object", "properties": {
          "command": {"type": "string"},
          "timeout": {"type": "number"},
          "args": {"type": "array", "items": {"type": "string"}},
          "env": {"type": "object"},
          "flags": {"type": "object", "properties": {
             "verbose": {"type": "boolean"}, "level": {"type": "integer"},
             "mode": {"enum": [1, 10, "x"]}}, "required": ["verbose"]},
          "note": {"type": ["string", "null"]},
          "opt": {"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
                             "required": ["a"]}, {"type": "object"}, {"enum": [7, 70]}]},
          "any": {}},
        "required": ["command", "flags"]}})",
    R"({"name": "noop", "description": "Nothing.", "parameters": {"type": "object", "properties": {}}})",
    // Bounds decoding enforces: lengths, item counts, integer and number ranges; `pattern` it does
    // not (a notice names it).
    R"({"name": "pick", "description": "Bounded values.",
        "parameters": {"type": "object", "properties": {
          "tag": {"type": "string", "minLength": 3, "maxLength": 5},
          "n": {"type": "integer", "minimum": 10, "maximum": 12},
          "xs": {"type": "array", "items": {"type": "integer", "minimum": -30, "exclusiveMaximum": -1},
                 "minItems": 2, "maxItems": 3},
          "r": {"type": "number", "minimum": 0.5, "maximum": 2.5},
          "words": {"type": "array", "items": {"type": "string", "maxLength": 2}, "maxItems": 2},
          "code": {"type": "string", "pattern": "^[a-z]+$"}},
        "required": ["tag", "n", "xs", "r"]}})",
};

// Unicode code points of UTF-8 text (what minLength and maxLength count).
size_t code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

double number_of(const PyJson& v) {
  return v.type() == PyJson::Type::kInt ? std::stod(v.text()) : v.float_value();
}

const mnemo::inference::PyJson* field(const PyJson& obj, std::string_view key) {
  for (size_t i = 0; i < obj.keys().size(); ++i) {
    if (obj.keys()[i] == key) return &obj.items()[i];
  }
  return nullptr;
}

bool type_ok(const PyJson& v, std::string_view type) {
  using T = PyJson::Type;
  if (type == "string") return v.type() == T::kString;
  if (type == "integer") return v.type() == T::kInt;
  if (type == "number") return v.type() == T::kInt || v.type() == T::kFloat;
  if (type == "boolean") return v.type() == T::kBool;
  if (type == "null") return v.type() == T::kNull;
  if (type == "array") return v.type() == T::kArray;
  if (type == "object") return v.type() == T::kObject;
  return false;
}

// The subset of JSON Schema the constraint enforces: type(s), enum, properties, required, items,
// minLength/maxLength, minItems/maxItems, minimum/maximum and exclusiveMaximum.
bool valid(const PyJson& v, const PyJson& schema) {
  if (!schema.is_object()) return true;
  auto bound = [&](const char* key) -> std::optional<double> {
    const PyJson* b = field(schema, key);
    return b ? std::optional<double>(number_of(*b)) : std::nullopt;
  };
  if (v.is_string()) {
    if (auto lo = bound("minLength"); lo && code_points(v.text()) < *lo) return false;
    if (auto hi = bound("maxLength"); hi && code_points(v.text()) > *hi) return false;
  }
  if (v.type() == PyJson::Type::kArray) {
    if (auto lo = bound("minItems"); lo && v.items().size() < *lo) return false;
    if (auto hi = bound("maxItems"); hi && v.items().size() > *hi) return false;
  }
  if (v.type() == PyJson::Type::kInt || v.type() == PyJson::Type::kFloat) {
    const double x = number_of(v);
    if (auto lo = bound("minimum"); lo && x < *lo) return false;
    if (auto hi = bound("maximum"); hi && x > *hi) return false;
    if (auto hi = bound("exclusiveMaximum"); hi && x >= *hi) return false;
  }
  if (const PyJson* any = field(schema, "anyOf")) {
    return std::any_of(any->items().begin(), any->items().end(),
                       [&](const PyJson& m) { return valid(v, m); });
  }
  if (const PyJson* e = field(schema, "enum")) {
    const std::string text = dump_py_json(v);
    return std::any_of(e->items().begin(), e->items().end(),
                       [&](const PyJson& x) { return dump_py_json(x) == text; });
  }
  if (const PyJson* t = field(schema, "type")) {
    bool ok = t->is_string() ? type_ok(v, t->text()) : false;
    for (const PyJson& x : t->items()) ok = ok || type_ok(v, x.text());
    if (!ok) return false;
  }
  if (const PyJson* items = field(schema, "items"); items && v.type() == PyJson::Type::kArray) {
    for (const PyJson& x : v.items()) {
      if (!valid(x, *items)) return false;
    }
  }
  if (v.is_object()) {
    const PyJson* props = field(schema, "properties");
    if (const PyJson* req = field(schema, "required")) {
      for (const PyJson& r : req->items()) {
        if (!field(v, r.text())) return false;
      }
    }
    if (props && !props->keys().empty()) {
      for (size_t i = 0; i < v.keys().size(); ++i) {
        const PyJson* ps = field(*props, v.keys()[i]);
        if (!ps || !valid(v.items()[i], *ps)) return false;
      }
    }
  }
  return true;
}

const PyJson& tool_function(const PyJson& def) {
  const PyJson* fn = field(def, "function");
  return fn ? *fn : def;
}

// Parses generated ids as a V4 completion and checks every call against the declared tools.
// Checks every call of a completion against its tool's schema; returns how many calls it made.
size_t check_calls(const std::vector<TokenId>& ids, ThinkingMode mode,
                   const std::optional<std::string>& forced) {
  auto text = v4_tokenizer().decode(ids);
  REQUIRE(text);
  INFO("completion: " << *text);
  auto msg = parse_v4_completion(*text, mode);
  REQUIRE(msg);
  REQUIRE(!msg->tool_calls.empty());
  for (const ToolCall& call : msg->tool_calls) {
    INFO("call " << call.name << " " << call.arguments);
    if (forced) CHECK(call.name == *forced);
    bool found = false;
    for (const std::string& t : kTools) {
      const PyJson def = parse_py_json(t).value();
      const PyJson& fn = tool_function(def);
      if (field(fn, "name")->text() != call.name) continue;
      found = true;
      auto args = parse_py_json(call.arguments, PyJsonParseOptions{false, 512});
      REQUIRE(args);
      CHECK(valid(*args, *field(fn, "parameters")));
    }
    CHECK(found);
  }
  return msg->tool_calls.size();
}

std::shared_ptr<const ToolCallGrammar> grammar(ToolCallGrammarOptions options = {}) {
  auto g = ToolCallGrammar::compile(kTools, options);
  REQUIRE(g);
  return *g;
}

std::vector<TokenId> bits(const std::vector<uint64_t>& mask) {
  std::vector<TokenId> out;
  for (size_t w = 0; w < mask.size(); ++w) {
    for (uint64_t b = mask[w]; b; b &= b - 1) {
      out.push_back(static_cast<TokenId>(w * 64 + static_cast<size_t>(__builtin_ctzll(b))));
    }
  }
  return out;
}

bool structural(TokenId t) {
  const Tokenizer& tok = v4_tokenizer();
  if (tok.is_special(t)) return true;
  std::string_view b = tok.token_bytes(t);
  return !b.empty() && std::all_of(b.begin(), b.end(), [](char c) {
    return std::ispunct(static_cast<unsigned char>(c)) || c == ' ' || c == '\n';
  });
}

struct WalkStats {
  std::vector<double> text_us, other_us;
};

// A random walk over allowed tokens; `bias` prefers punctuation and special tokens, so that values
// end and more parameters and calls begin.
std::vector<TokenId> walk(ToolCallConstraint& c, int64_t budget, uint64_t seed, bool bias,
                          WalkStats* stats = nullptr) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> mask;
  std::vector<TokenId> out;
  for (int64_t remaining = budget; remaining > 0 && !c.done(); --remaining) {
    auto t0 = std::chrono::steady_clock::now();
    c.allowed(mask, remaining);
    double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    std::vector<TokenId> ok = bits(mask);
    REQUIRE(!ok.empty());
    if (stats) (ok.size() > 10000 ? stats->text_us : stats->other_us).push_back(us);
    std::vector<TokenId> pick = ok;
    if (bias && rng() % 2 == 0) {
      std::vector<TokenId> s;
      std::copy_if(ok.begin(), ok.end(), std::back_inserter(s), structural);
      if (!s.empty()) pick = std::move(s);
    }
    TokenId t = pick[rng() % pick.size()];
    REQUIRE(c.accept(t));
    out.push_back(t);
    // The budget rule: what is left always fits.
    REQUIRE(c.min_tokens() <= remaining - 1);
  }
  REQUIRE(c.done());
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

TEST_CASE("the first tokens can only begin the DSML block", "[constraint]") {
  ToolCallConstraint c(grammar(), vocab());
  std::vector<uint64_t> mask;
  c.allowed(mask, 1000);
  std::vector<TokenId> ok = bits(mask);
  REQUIRE(!ok.empty());
  for (TokenId t : ok) {
    std::string_view b = v4_tokenizer().token_bytes(t);
    INFO("token " << t << " '" << b << "'");
    CHECK(std::string_view("\n\n<").substr(0, b.size()) == b);
  }
  // "\n\n" is one token of the vocabulary.
  CHECK(std::find(ok.begin(), ok.end(), v4_tokenizer().encode("\n\n").value()[0]) != ok.end());
  CHECK(!c.accept(v4_tokenizer().encode("Hello").value()[0]));
  CHECK(!c.done());
}

TEST_CASE("the rendered form of a call is accepted token by token", "[constraint]") {
  const std::string block =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"run\">\n"
      "<｜DSML｜parameter name=\"command\" string=\"true\">ls -la </tmp> "
      "\"x\"</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"flags\" string=\"false\">{\"verbose\": true, \"mode\": "
      "10}</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"args\" string=\"false\">[\"a\\n\", "
      "\"\\u001f\"]</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"timeout\" string=\"false\">-1.5e+3</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"opt\" string=\"false\">{\"a\": 5}</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"env\" string=\"false\">{\"A\": [1, {}], \"B\": "
      "null}</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"noop\">\n\n</｜DSML｜invoke>\n"
      "</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  auto ids = v4_tokenizer().encode(block);
  REQUIRE(ids);
  ToolCallConstraint c(grammar(), vocab());
  for (TokenId t : *ids) REQUIRE(c.accept(t));
  CHECK(c.done());
  check_calls(*ids, ThinkingMode::kChat, std::nullopt);

  // A repeated parameter, a missing required one, or a wrong JSON type never gets through.
  for (std::string bad : {
           std::string("<｜DSML｜parameter name=\"command\" string=\"true\">a</｜DSML｜parameter>\n"
                       "<｜DSML｜parameter name=\"command\" string=\"true\">"),
           std::string("</｜DSML｜invoke>"),
           std::string("<｜DSML｜parameter name=\"timeout\" string=\"false\">\"1\""),
           std::string("<｜DSML｜parameter name=\"flags\" string=\"false\">{}"),
           std::string("<｜DSML｜parameter name=\"command\" string=\"false\">"),
       }) {
    INFO(bad);
    ToolCallConstraint d(grammar(), vocab());
    auto prefix =
        v4_tokenizer().encode("\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"run\">\n" + bad);
    bool ok = true;
    for (TokenId t : *prefix) ok = ok && d.accept(t).is_ok();
    CHECK(!ok);
  }
}

TEST_CASE("random walks through the mask always end in a parseable, schema-valid call",
          "[constraint]") {
  auto g = grammar();
  WalkStats stats;
  size_t calls = 0, several = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    ToolCallConstraint c(g, vocab());
    const int64_t budget = c.min_tokens() + (seed % 3 == 0 ? 3 : seed % 3 == 1 ? 90 : 300);
    auto ids = walk(c, budget, seed, seed % 4 != 0, &stats);
    CHECK(static_cast<int64_t>(ids.size()) <= budget);
    const size_t n = check_calls(ids, ThinkingMode::kChat, std::nullopt);
    calls += n;
    several += n > 1;
  }
  // Each walk ended in at least one call, and the walks with room went on to further calls, so the
  // paths between calls were taken too.
  INFO(calls << " calls, " << several << " walks with several");
  CHECK(calls > 24);
  CHECK(several > 0);
  // apply() on a full logits row in a raw-string state: the mask plus one pass over the row.
  ToolCallConstraint c(g, vocab());
  auto prefix = v4_tokenizer().encode(
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"run\">\n"
      "<｜DSML｜parameter name=\"command\" string=\"true\">ls");
  for (TokenId t : prefix.value()) REQUIRE(c.accept(t));
  std::vector<float> row(129280);
  const int kReps = 50;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReps; ++i) {
    std::fill(row.begin(), row.end(), 0.0f);
    c.apply(row.data(), static_cast<int64_t>(row.size()), 1000);
  }
  const double apply_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      kReps;
  const auto finite = std::count_if(row.begin(), row.end(), [](float x) { return x == 0.0f; });
  CHECK(finite > 100000);
  CHECK(row[129279] < 0);  // past the tokenizer's vocabulary
  std::printf("constraint apply() on a 129280-logit row in a string value: %.0f us\n", apply_us);
  std::printf(
      "constraint mask per step: text states p50 %.0f us p99 %.0f us (n=%zu); other "
      "states p50 %.0f us p99 %.0f us (n=%zu)\n",
      percentile(stats.text_us, 0.5), percentile(stats.text_us, 0.99), stats.text_us.size(),
      percentile(stats.other_us, 0.5), percentile(stats.other_us, 0.99), stats.other_us.size());
}

TEST_CASE("a forced tool, one call, and thinking mode", "[constraint]") {
  ToolCallGrammarOptions o;
  o.forced_tool = "get_weather";
  o.max_calls = 1;
  auto g = grammar(o);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    ToolCallConstraint c(g, vocab());
    auto ids = walk(c, c.min_tokens() + 60, seed, true);
    auto msg = parse_v4_completion(v4_tokenizer().decode(ids).value(), ThinkingMode::kChat);
    REQUIRE(msg);
    CHECK(msg->tool_calls.size() == 1);
    check_calls(ids, ThinkingMode::kChat, o.forced_tool);
  }
  o.reasoning = true;
  o.max_calls = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    ToolCallConstraint c(grammar(o), vocab());
    check_calls(walk(c, c.min_tokens() + 150, seed, seed % 2 == 0), ThinkingMode::kThinking,
                o.forced_tool);
  }
  o.forced_tool = "missing";
  CHECK(!ToolCallGrammar::compile(kTools, o));
  CHECK(!ToolCallGrammar::compile(std::vector<std::string>{R"({"name": "a\"b"})"}));
  CHECK(!ToolCallGrammar::compile(std::vector<std::string>{}));
}

TEST_CASE("lengths, item counts and numeric ranges are enforced while decoding", "[constraint]") {
  ToolCallGrammarOptions forced;
  forced.forced_tool = "pick";
  auto g = grammar(forced);
  // What decoding leaves to the check before a call runs is named, and only that.
  CHECK(g->unenforced() ==
        std::vector<std::string>{"tools[3].function.parameters.properties.code.pattern"});

  // Whether a call that begins with these arguments can be written at all.
  auto fits = [&](const std::string& params) {
    ToolCallConstraint c(g, vocab());
    return static_cast<bool>(
        c.accept_text("\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"pick\">\n" + params));
  };
  auto raw = [](const std::string& name, const std::string& v) {
    return "<｜DSML｜parameter name=\"" + name + "\" string=\"true\">" + v +
           "</｜DSML｜parameter>\n";
  };
  auto json = [](const std::string& name, const std::string& v) {
    return "<｜DSML｜parameter name=\"" + name + "\" string=\"false\">" + v +
           "</｜DSML｜parameter>\n";
  };
  CHECK(fits(raw("tag", "abc")));
  CHECK(fits(raw("tag", "a</b")));  // "</" that does not close is text: four characters
  CHECK(fits(raw("tag", "äöüßé")));  // characters, not bytes
  CHECK_FALSE(fits(raw("tag", "ab")));
  CHECK_FALSE(fits(raw("tag", "abcdef")));
  CHECK_FALSE(fits(raw("tag", "äöüßéx")));
  CHECK(fits(json("n", "10")));
  CHECK(fits(json("n", "12")));
  CHECK_FALSE(fits(json("n", "9")));
  CHECK_FALSE(fits(json("n", "13")));
  CHECK_FALSE(fits(json("n", "-11")));
  CHECK_FALSE(fits(json("n", "1.5")));
  CHECK_FALSE(fits(json("n", "100")));
  CHECK(fits(json("xs", "[-30, -2]")));
  CHECK(fits(json("xs", "[-2, -3, -4]")));
  CHECK_FALSE(fits(json("xs", "[-2]")));             // minItems
  CHECK_FALSE(fits(json("xs", "[-2, -3, -4, -5]")));  // maxItems
  CHECK_FALSE(fits(json("xs", "[-1, -2]")));          // exclusiveMaximum
  CHECK_FALSE(fits(json("xs", "[-31, -2]")));
  CHECK_FALSE(fits(json("xs", "[3, -2]")));
  // A fraction only where its whole unit is in range: [0, 1) is not within [0.5, 2.5], so 0.75 is
  // never offered (conservative: every value offered is valid).
  CHECK_FALSE(fits(json("r", "0.75")));
  CHECK_FALSE(fits(json("r", "0.4")));
  CHECK(fits(json("r", "1.25")));
  CHECK(fits(json("r", "2")));
  CHECK_FALSE(fits(json("r", "2.25")));  // [2, 3) is not within the bounds: no fraction at 2
  CHECK_FALSE(fits(json("r", "3")));
  CHECK_FALSE(fits(json("r", "1e0")));
  CHECK(fits(json("words", "[\"ab\", \"\\n\"]")));  // an escape is one character
  CHECK_FALSE(fits(json("words", "[\"abc\"]")));
  CHECK_FALSE(fits(json("words", "[\"a\", \"b\", \"c\"]")));
  CHECK(fits(json("words", "[]")));

  // Random walks, with room and at the shortest budget, always end in values within the bounds.
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    ToolCallConstraint c(g, vocab());
    const int64_t budget = c.min_tokens() + (seed % 3 == 0 ? 0 : seed % 3 == 1 ? 40 : 200);
    auto ids = walk(c, budget, seed, seed % 2 == 0);
    CHECK(static_cast<int64_t>(ids.size()) <= budget);
    check_calls(ids, ThinkingMode::kChat, std::string("pick"));
  }
  // Bounds that no value meets are the schema's error, named.
  auto none = ToolCallGrammar::compile(std::vector<std::string>{
      R"({"name": "t", "parameters": {"properties": {"k": {"type": "integer", "minimum": 3, "maximum": 2}}}})"});
  REQUIRE_FALSE(none);
  CHECK_THAT(none.status().message(), Catch::Contains("properties.k"));
  auto bad = ToolCallGrammar::compile(std::vector<std::string>{
      R"({"name": "t", "parameters": {"properties": {"k": {"type": "string", "maxLength": -1}}}})"});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.status().message(), Catch::Contains("maxLength"));
}

TEST_CASE("the V3 call syntax: JSON arguments between the V3 call tokens", "[constraint]") {
  ToolCallGrammarOptions o;
  o.syntax = ToolCallSyntax::kV3;
  auto g = grammar(o);
  const std::string kCallsBegin = "<｜tool▁calls▁begin｜>", kCallBegin = "<｜tool▁call▁begin｜>",
                    kSep = "<｜tool▁sep｜>", kCallEnd = "<｜tool▁call▁end｜>",
                    kEnd = "<｜tool▁calls▁end｜>" + std::string(tokens::kEos);
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    ToolCallConstraint c(g, vocab());
    auto text = v4_tokenizer().decode(walk(c, c.min_tokens() + 100, seed, seed % 2 == 1)).value();
    INFO(text);
    REQUIRE(text.starts_with(kCallsBegin));
    REQUIRE(text.ends_with(kEnd));
    std::string_view rest = std::string_view(text).substr(
        kCallsBegin.size(), text.size() - kCallsBegin.size() - kEnd.size());
    int calls = 0;
    while (!rest.empty()) {
      if (calls > 0) {
        REQUIRE(rest.starts_with("\n"));
        rest.remove_prefix(1);
      }
      const std::string head = kCallBegin + "function" + kSep;
      REQUIRE(rest.starts_with(head));
      rest.remove_prefix(head.size());
      const size_t name_end = rest.find("\n```json\n");
      REQUIRE(name_end != std::string_view::npos);
      const std::string name(rest.substr(0, name_end));
      rest.remove_prefix(name_end + 9);
      const size_t args_end = rest.find("\n```" + kCallEnd);
      REQUIRE(args_end != std::string_view::npos);
      auto args = parse_py_json(rest.substr(0, args_end), PyJsonParseOptions{false, 512});
      REQUIRE(args);
      rest.remove_prefix(args_end + 4 + kCallEnd.size());
      bool found = false;
      for (const std::string& t : kTools) {
        const PyJson def = parse_py_json(t).value();
        const PyJson& fn = tool_function(def);
        if (field(fn, "name")->text() != name) continue;
        found = true;
        CHECK(args->is_object());
        CHECK(valid(*args, *field(fn, "parameters")));
      }
      CHECK(found);
      ++calls;
    }
    CHECK(calls >= 1);
  }
  o.reasoning = true;
  CHECK(!ToolCallGrammar::compile(kTools, o));
}

TEST_CASE("a budget of exactly the shortest completion still gives a complete call",
          "[constraint]") {
  auto g = grammar();
  const int64_t least = ToolCallConstraint(g, vocab()).min_tokens();
  CHECK(least > 20);
  for (int64_t extra : {0, 1, 2, 5, 9}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      ToolCallConstraint c(g, vocab());
      auto ids = walk(c, least + extra, seed * 31 + static_cast<uint64_t>(extra), false);
      CHECK(static_cast<int64_t>(ids.size()) <= least + extra);
      check_calls(ids, ThinkingMode::kChat, std::nullopt);
    }
  }
  // Below the minimum the constraint still finishes the call along the shortest path.
  ToolCallConstraint c(g, vocab());
  std::vector<uint64_t> mask;
  std::vector<TokenId> ids;
  for (int i = 0; i < 400 && !c.done(); ++i) {
    c.allowed(mask, 1);
    auto ok = bits(mask);
    REQUIRE(!ok.empty());
    REQUIRE(c.accept(ok.back()));
    ids.push_back(ok.back());
  }
  CHECK(c.done());
  check_calls(ids, ThinkingMode::kChat, std::nullopt);
}

TEST_CASE("the text fast path gives the same mask as the full vocabulary walk", "[constraint]") {
  // The tools without bounds: bounded strings take the walk wherever a bound decides.
  auto g = ToolCallGrammar::compile(std::span(kTools).first(3)).value();
  std::mt19937_64 rng(7);
  int compared = 0;
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    ToolCallConstraint c(g, vocab());
    std::vector<uint64_t> fast, full, wide;
    for (int step = 0; step < 120 && !c.done(); ++step) {
      c.allowed(wide, 1 << 20);
      auto ok = bits(wide);
      if (ok.size() > 10000 && step % 3 == 0) {
        // Spare budget, a tight one (only text that keeps the cost), and one below the minimum.
        const int64_t m = c.min_tokens();
        for (int64_t remaining : {int64_t{1} << 20, m + 3, m + 1, int64_t{1}}) {
          c.allowed(fast, remaining);
          c.allowed_by_walk(full, remaining);
          CHECK(fast == full);
        }
        ++compared;
      }
      std::vector<TokenId> s;
      std::copy_if(ok.begin(), ok.end(), std::back_inserter(s), structural);
      const auto& pick = (!s.empty() && rng() % 3 == 0) ? s : ok;
      REQUIRE(c.accept(pick[rng() % pick.size()]));
    }
  }
  CHECK(compared > 12);
}

namespace {

// Collects one request's tokens, for the engine tests.
struct Done {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<RequestOutcome> outcome;
  RequestOutcome& wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outcome.has_value(); });
    return *outcome;
  }
  std::function<void(RequestOutcome)> callback() {
    return [this](RequestOutcome o) {
      std::lock_guard lock(mu);
      outcome = std::move(o);
      cv.notify_all();
    };
  }
};

// Allows only `token` and records the budgets it was given.
struct OnlyToken final : LogitsProcessor {
  TokenId token;
  std::vector<int64_t> budgets;
  std::vector<TokenId> accepted;
  explicit OnlyToken(TokenId t) : token(t) {}
  void apply(float* logits, int64_t vocab, int64_t remaining) override {
    budgets.push_back(remaining);
    for (int64_t i = 0; i < vocab; ++i) {
      if (i != token) logits[i] = -std::numeric_limits<float>::infinity();
    }
  }
  mnemo::Status accept(TokenId t) override {
    accepted.push_back(t);
    return t == 13 ? mnemo::Status::invalid_argument("13 is refused") : mnemo::Status::ok();
  }
};

}  // namespace

TEST_CASE("the engine runs a request's logits processor before sampling", "[constraint][engine]") {
  const Model& model = mnemo::test::tiny_model();
  Engine engine(model);
  auto only = std::make_shared<OnlyToken>(7);
  Request r;
  r.prompt = {1, 2, 3};
  r.max_new_tokens = 5;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 3;
  r.logits_processor = only;
  Done done;
  r.on_done = done.callback();
  engine.submit(std::move(r));
  RequestOutcome& out = done.wait();
  REQUIRE(out.status);
  CHECK(out.generated == std::vector<TokenId>(5, 7));
  CHECK(only->budgets == std::vector<int64_t>{5, 4, 3, 2, 1});
  CHECK(only->accepted == out.generated);

  // An error from accept ends the request.
  Request bad;
  bad.prompt = {1, 2, 3};
  bad.max_new_tokens = 5;
  bad.logits_processor = std::make_shared<OnlyToken>(13);
  Done bad_done;
  bad.on_done = bad_done.callback();
  engine.submit(std::move(bad));
  CHECK(bad_done.wait().reason == FinishReason::kError);
}

TEST_CASE("forced tool calls from a random-weight model with the real vocabulary",
          "[constraint][engine]") {
  fs::path dir = fs::temp_directory_path() / ("mnemo-constraint-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  InitOptions io;
  io.seed = 5;
  const std::string v3_dir = fs::path(mnemo::test::v3_tokenizer_path()).parent_path().string();
  REQUIRE(init_model(dir.string(), preset_config(ModelPreset::kTiny), io, v3_dir));
  auto model = Model::load(dir.string());
  REQUIRE(model);
  auto conv = parse_conversation_json(
      std::string(R"({"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                   "tools": [)") +
      kTools[0] + R"(, {"type": "function", "function": )" + kTools[1] + "}]}");
  REQUIRE(conv);
  auto prompt_text = render_v4_prompt(*conv);
  REQUIRE(prompt_text);
  auto prompt = v4_tokenizer().encode(*prompt_text);
  REQUIRE(prompt);
  ToolCallGrammarOptions o;
  o.forced_tool = "run";
  auto g = grammar(o);
  Engine engine(**model);
  struct Case {
    float temperature;
    uint64_t seed;
    int64_t extra_budget;  // tokens beyond the shortest call
  };
  for (Case k : {Case{0.0f, 0, 20}, Case{0.8f, 1, 0}, Case{1.5f, 2, 40}}) {
    auto c = std::make_shared<ToolCallConstraint>(g, vocab());
    Request r;
    r.prompt = *prompt;
    r.max_new_tokens = c->min_tokens() + k.extra_budget;
    r.sampling.temperature = k.temperature;
    r.sampling.seed = k.seed;
    r.stop_tokens = {vocab()->eos_token()};
    r.logits_processor = c;
    Done done;
    r.on_done = done.callback();
    engine.submit(std::move(r));
    RequestOutcome& out = done.wait();
    REQUIRE(out.status);
    CHECK(out.reason == FinishReason::kStop);
    CHECK(c->done());
    check_calls(out.generated, ThinkingMode::kChat, o.forced_tool);
  }
  fs::remove_all(dir);
}
