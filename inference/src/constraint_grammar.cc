// Compiles OpenAI tool definitions into the constraint's grammar: schema nodes with the length of
// their shortest value, and the literal tries of tool names, DSML parameter headers and object
// keys.
#include <mnemo/base/json_text.h>
#include <mnemo/inference/chat_json.h>
#include <mnemo/inference/special_tokens.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "constraint_impl.h"

namespace mnemo::inference {

using namespace constraint;

void constraint::append_text(Syms& out, std::string_view text) {
  for (char ch : text) out.push_back(static_cast<Sym>(static_cast<unsigned char>(ch)));
}

void Trie::add(const Syms& s, int32_t terminal) {
  const auto len = static_cast<uint32_t>(s.size());
  uint32_t node = 0;
  auto visit = [&](uint32_t n) {
    nodes[n].below.push_back(terminal);
    nodes[n].min_dist = std::min(nodes[n].min_dist, len - nodes[n].depth);
  };
  visit(0);
  for (Sym sym : s) {
    int32_t n = child(node, sym);
    if (n < 0) {
      Node fresh;
      fresh.depth = nodes[node].depth + 1;
      nodes.push_back(std::move(fresh));
      n = static_cast<int32_t>(nodes.size() - 1);
      nodes[node].children.emplace_back(sym, static_cast<uint32_t>(n));
    }
    node = static_cast<uint32_t>(n);
    visit(node);
  }
  nodes[node].terminal = terminal;
  if (term_len.size() <= static_cast<size_t>(terminal)) {
    term_len.resize(static_cast<size_t>(terminal) + 1);
  }
  term_len[static_cast<size_t>(terminal)] = len;
}

namespace {

constexpr size_t kMaxToolBytes = 256 * 1024;
constexpr size_t kMaxEnumValues = 4096;

using GImpl = ToolCallGrammar::Impl;

const PyJson* get(const PyJson& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  for (size_t i = 0; i < obj.keys().size(); ++i) {
    if (obj.keys()[i] == key) return &obj.items()[i];
  }
  return nullptr;
}

Syms dsml(std::string_view before, std::string_view after) {
  Syms s;
  append_text(s, before);
  s.push_back(kSymDsml);
  append_text(s, after);
  return s;
}

uint32_t add_trie(GImpl& g, Trie t) {
  g.tries.push_back(std::move(t));
  return static_cast<uint32_t>(g.tries.size() - 1);
}

uint32_t add_schema(GImpl& g, Schema s) {
  g.schemas.push_back(std::move(s));
  return static_cast<uint32_t>(g.schemas.size() - 1);
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(GImpl& g) : g_(g) {}

  Result<uint32_t> compile(const PyJson& v, const std::string& path, int depth) {
    if (depth > 16) return Status::invalid_argument(path + ": the schema nests too deeply");
    if (v.type() == PyJson::Type::kBool) return uint32_t{0};  // `true`: anything
    if (!v.is_object()) return Status::invalid_argument(path + ": a schema must be an object");
    note_unenforced(v, path);
    if (const PyJson* e = get(v, "const")) return enum_of({e});
    if (const PyJson* e = get(v, "enum")) {
      if (e->type() != PyJson::Type::kArray || e->items().empty()) {
        return Status::invalid_argument(path + ".enum: must be a non-empty array");
      }
      if (e->items().size() > kMaxEnumValues) {
        return Status::invalid_argument(path + ".enum: " + std::to_string(e->items().size()) +
                                        " values; a constrained enum has at most " +
                                        std::to_string(kMaxEnumValues));
      }
      std::vector<const PyJson*> values;
      for (const PyJson& x : e->items()) values.push_back(&x);
      return enum_of(values);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (const PyJson* alts = get(v, key)) {
        if (alts->type() != PyJson::Type::kArray || alts->items().empty()) {
          return Status::invalid_argument(path + "." + key + ": must be a non-empty array");
        }
        Schema u;
        u.kind = SchemaKind::kUnion;
        for (size_t i = 0; i < alts->items().size(); ++i) {
          auto m = compile(alts->items()[i], path + "." + key + "[" + std::to_string(i) + "]",
                           depth + 1);
          if (!m) return m.status();
          u.members.push_back(*m);
        }
        return union_of(std::move(u));
      }
    }
    const PyJson* type = get(v, "type");
    if (type && type->type() == PyJson::Type::kArray) {
      Schema u;
      u.kind = SchemaKind::kUnion;
      for (const PyJson& t : type->items()) {
        if (!t.is_string()) return Status::invalid_argument(path + ".type: names must be strings");
        auto m = typed(v, t.text(), path, depth);
        if (!m) return m.status();
        u.members.push_back(*m);
      }
      if (u.members.empty()) return Status::invalid_argument(path + ".type: empty list");
      return union_of(std::move(u));
    }
    if (type && !type->is_string()) {
      return Status::invalid_argument(path + ".type: must be a string or a list of strings");
    }
    std::string name = type                   ? type->text()
                       : get(v, "properties") ? "object"
                       : get(v, "items")      ? "array"
                                              : "";
    return typed(v, name, path, depth);
  }

 private:
  Result<uint32_t> typed(const PyJson& v, const std::string& type, const std::string& path,
                         int depth) {
    Schema s;
    if (type.empty()) return uint32_t{0};
    if (type == "string") {
      s.kind = SchemaKind::kString;
      MNEMO_RETURN_IF_ERROR(
          count_range(v, "minLength", "maxLength", path, s.min_chars, s.max_chars));
      s.min_len = 2 + s.min_chars;
      s.first = '"';
    } else if (type == "integer" || type == "number") {
      s.kind = type == "integer" ? SchemaKind::kInteger : SchemaKind::kNumber;
      MNEMO_RETURN_IF_ERROR(bounds(v, path, s));
    } else if (type == "boolean") {
      s.kind = SchemaKind::kBoolean;
      s.min_len = 4;
      s.first = 't';
    } else if (type == "null") {
      s.kind = SchemaKind::kNull;
      s.min_len = 4;
      s.first = 'n';
    } else if (type == "array") {
      s.kind = SchemaKind::kArray;
      s.min_len = 2;
      s.first = '[';
      if (const PyJson* items = get(v, "items")) {
        auto it = compile(*items, path + ".items", depth + 1);
        if (!it) return it.status();
        s.items = *it;
      }
      MNEMO_RETURN_IF_ERROR(count_range(v, "minItems", "maxItems", path, s.min_items, s.max_items));
      if (s.min_items > 4096)
        return Status::invalid_argument(path + ".minItems: at most 4096 for a constrained call");
      const int64_t k = s.min_items;
      if (k > 0) s.min_len = 2 + k * g_.schemas[s.items].min_len + 2 * (k - 1);
    } else if (type == "object") {
      return object(v, path, depth);
    } else {
      return Status::invalid_argument(path + ".type: unknown type '" + type + "'");
    }
    return add_schema(g_, std::move(s));
  }

  Result<uint32_t> object(const PyJson& v, const std::string& path, int depth) {
    const PyJson* props = get(v, "properties");
    Schema s;
    if (!props || !props->is_object() || props->keys().empty()) {
      s.kind = SchemaKind::kFreeObject;
      s.min_len = 2;
      s.first = '{';
      return add_schema(g_, std::move(s));
    }
    if (props->keys().size() > 64) {
      return Status::invalid_argument(path + ".properties: more than 64 properties");
    }
    s.kind = SchemaKind::kObject;
    s.first = '{';
    auto required = required_names(v, path);
    if (!required) return required.status();
    Trie keys;
    for (size_t i = 0; i < props->keys().size(); ++i) {
      const std::string& name = props->keys()[i];
      auto ps = compile(props->items()[i], path + ".properties." + name, depth + 1);
      if (!ps) return ps.status();
      std::string key = json::quote(name) + ": ";
      Syms syms;
      append_text(syms, key);
      keys.add(syms, static_cast<int32_t>(i));
      Property p;
      p.name = name;
      p.schema = *ps;
      p.required = std::find(required->begin(), required->end(), name) != required->end();
      p.entry_cost = static_cast<int64_t>(syms.size()) + g_.schemas[*ps].min_len;
      if (p.required) s.required_mask |= uint64_t{1} << i;
      s.props.push_back(std::move(p));
    }
    int64_t sum = 0, n = 0;
    for (const Property& p : s.props) {
      if (p.required) sum += p.entry_cost, ++n;
    }
    s.min_len = 2 + (n > 0 ? sum + 2 * (n - 1) : 0);
    s.trie = add_trie(g_, std::move(keys));
    return add_schema(g_, std::move(s));
  }

  uint32_t enum_of(const std::vector<const PyJson*>& values) {
    Trie t;
    for (size_t i = 0; i < values.size(); ++i) {
      Syms syms;
      append_text(syms, dump_py_json(*values[i]));
      t.add(syms, static_cast<int32_t>(i));
    }
    Schema s;
    s.kind = SchemaKind::kEnum;
    s.min_len = t.nodes[0].min_dist;
    for (const auto& [sym, child] : t.nodes[0].children) {
      if (t.nodes[child].min_dist + 1 == t.nodes[0].min_dist) {
        s.first = sym;
        break;
      }
    }
    s.trie = add_trie(g_, std::move(t));
    return add_schema(g_, std::move(s));
  }

  // The union's shortest value comes from a member that the dispatch on its first symbol picks
  // (the first member that can start with it), so the cost is reachable.
  uint32_t union_of(Schema u) {
    u.min_len = std::numeric_limits<int64_t>::max();
    for (uint32_t m : u.members) {
      const Schema& ms = g_.schemas[m];
      uint32_t picked = m;
      for (uint32_t other : u.members) {
        if (schema_starts(g_, other, ms.first)) {
          picked = other;
          break;
        }
      }
      if (picked == m && ms.min_len < u.min_len) {
        u.min_len = ms.min_len;
        u.first = ms.first;
      }
    }
    return add_schema(g_, std::move(u));
  }

  // The keywords a schema object uses that decoding does not enforce, noted as PATH.KEY.
  void note_unenforced(const PyJson& v, const std::string& path) {
    static constexpr std::string_view kKnown[] = {
        "type", "description", "title", "default", "examples", "enum", "const", "anyOf", "oneOf",
        "properties", "required", "items", "additionalProperties", "minLength", "maxLength",
        "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "nullable"};
    for (const std::string& key : v.keys()) {
      if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown))
        g_.unenforced.push_back(path + "." + key);
    }
  }

  // A non-negative integer keyword (minLength, maxItems, ...); absent: nullopt.
  static Result<std::optional<uint32_t>> count(const PyJson& v, const char* key,
                                               const std::string& path) {
    const PyJson* k = get(v, key);
    if (!k) return std::optional<uint32_t>();
    uint64_t n = 0;
    const std::string& t = k->text();
    if (k->type() == PyJson::Type::kFloat && k->float_value() >= 0 &&
        k->float_value() == static_cast<double>(static_cast<uint64_t>(k->float_value()))) {
      n = static_cast<uint64_t>(k->float_value());
    } else if (k->type() != PyJson::Type::kInt ||
               std::from_chars(t.data(), t.data() + t.size(), n).ec != std::errc()) {
      return Status::invalid_argument(path + "." + key + ": must be a non-negative integer");
    }
    return std::optional<uint32_t>(
        static_cast<uint32_t>(std::min<uint64_t>(n, Schema::kUnbounded - 1)));
  }

  // A pair of count keywords (minLength/maxLength, minItems/maxItems): absent ones leave 0 and
  // unbounded; a minimum above the maximum is the schema's error.
  static Status count_range(const PyJson& v, const char* lo_key, const char* hi_key,
                            const std::string& path, uint32_t& lo, uint32_t& hi) {
    auto l = count(v, lo_key, path);
    if (!l) return l.status();
    auto h = count(v, hi_key, path);
    if (!h) return h.status();
    lo = l->value_or(0);
    hi = h->value_or(Schema::kUnbounded);
    if (lo > hi)
      return Status::invalid_argument(path + ": " + lo_key + " is above " + hi_key);
    return Status::ok();
  }

  static std::optional<double> number(const PyJson* k) {
    if (!k) return std::nullopt;
    if (k->type() == PyJson::Type::kFloat) return k->float_value();
    if (k->type() == PyJson::Type::kInt) return std::strtod(k->text().c_str(), nullptr);
    return std::nullopt;
  }

  // minimum/maximum and their exclusive forms as the integer range of the integer part.
  Status bounds(const PyJson& v, const std::string& path, Schema& s) {
    double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
    bool any = false, lo_open = false, hi_open = false;
    for (const char* key : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      const PyJson* k = get(v, key);
      if (!k) continue;
      // Draft 4's boolean exclusiveMinimum/exclusiveMaximum modify minimum/maximum.
      if (k->type() == PyJson::Type::kBool) {
        (std::string_view(key) == "exclusiveMinimum" ? lo_open : hi_open) = k->bool_value();
        continue;
      }
      auto x = number(k);
      if (!x || std::isnan(*x))
        return Status::invalid_argument(path + "." + key + ": must be a number");
      any = true;
      const std::string_view name = key;
      if (name == "minimum") lo = std::max(lo, *x);
      if (name == "maximum") hi = std::min(hi, *x);
      if (name == "exclusiveMinimum" && *x >= lo) lo = *x, lo_open = true;
      if (name == "exclusiveMaximum" && *x <= hi) hi = *x, hi_open = true;
    }
    if (!any) return Status::ok();
    constexpr double kLimit = 999999999999999999.0;  // 18 digits: the bounded grammar's width
    double ilo = std::ceil(lo), ihi = std::floor(hi);
    if (lo_open && ilo == lo) ilo += 1;
    if (hi_open && ihi == hi) ihi -= 1;
    ilo = std::max(ilo, -kLimit);
    ihi = std::min(ihi, kLimit);
    if (ilo > ihi) {
      if (s.kind == SchemaKind::kInteger)
        return Status::invalid_argument(path + ": no integer lies within its minimum and maximum");
      // No whole number in range (0.2 to 0.8): decoding leaves the number free.
      g_.unenforced.push_back(path + ".minimum/maximum");
      return Status::ok();
    }
    s.bounded = true;
    s.lo = static_cast<int64_t>(ilo);
    s.hi = static_cast<int64_t>(ihi);
    // An open bound excludes the bound itself: a fraction of [v, v+1) is in range only when the
    // whole unit is (conservative: 4.5 under a maximum of 4.9 is not offered).
    s.lo_real = lo_open ? std::nextafter(lo, kLimit) : lo;
    s.hi_real = hi_open ? std::nextafter(hi, -kLimit) : hi;
    // The shortest integer in range: the one nearest zero.
    const int64_t nearest = s.lo > 0 ? s.lo : s.hi < 0 ? s.hi : 0;
    const std::string text = std::to_string(nearest);
    s.min_len = static_cast<int64_t>(text.size());
    s.first = static_cast<uint16_t>(text[0]);
    return Status::ok();
  }

  GImpl& g_;

 public:
  static Result<std::vector<std::string>> required_names(const PyJson& v, const std::string& path) {
    std::vector<std::string> out;
    if (const PyJson* req = get(v, "required")) {
      if (req->type() != PyJson::Type::kArray) {
        return Status::invalid_argument(path + ".required: must be an array of names");
      }
      for (const PyJson& r : req->items()) {
        if (!r.is_string())
          return Status::invalid_argument(path + ".required: names must be strings");
        out.push_back(r.text());
      }
    }
    return out;
  }
};

bool plain_name(std::string_view s) {
  if (s.empty()) return false;
  return std::none_of(s.begin(), s.end(),
                      [](char c) {
                        return c == '"' || c == '<' || c == '>' ||
                               static_cast<unsigned char>(c) < 0x20;
                      }) &&
         s.find(tokens::kDsml) == std::string_view::npos;
}

// A string enum travels raw (string="true"): a trie of each value followed by its closing tag.
// -1 when the schema is not an enum of strings only.
int32_t raw_enum(GImpl& g, const PyJson& schema) {
  std::vector<const PyJson*> values;
  if (const PyJson* c = get(schema, "const")) {
    values.push_back(c);
  } else if (const PyJson* e = get(schema, "enum"); e && e->type() == PyJson::Type::kArray) {
    for (const PyJson& v : e->items()) values.push_back(&v);
  }
  if (values.empty()) return -1;
  Trie t;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i]->is_string() || values[i]->text().find("</") != std::string::npos ||
        values[i]->text().find(tokens::kDsml) != std::string::npos) {
      return -1;
    }
    Syms s;
    append_text(s, values[i]->text());
    Syms close = dsml("</", "parameter>\n");
    s.insert(s.end(), close.begin(), close.end());
    t.add(s, static_cast<int32_t>(i));
  }
  return static_cast<int32_t>(add_trie(g, std::move(t)));
}

Status compile_tool(GImpl& g, const PyJson& def, size_t index) {
  const std::string where = "tools[" + std::to_string(index) + "]";
  const PyJson* fn = get(def, "function");
  if (!fn) fn = &def;
  const PyJson* name = get(*fn, "name");
  if (!name || !name->is_string() || !plain_name(name->text())) {
    return Status::invalid_argument(where +
                                    ".function.name: a non-empty name without '\"', '<', "
                                    "'>' or control characters is required");
  }
  Tool tool;
  tool.name = name->text();
  const PyJson* params = get(*fn, "parameters");
  const std::string ppath = where + ".function.parameters";
  Trie first, next;
  if (params && params->is_object()) {
    const PyJson* props = get(*params, "properties");
    if (props && props->is_object()) {
      if (props->keys().size() > 63)
        return Status::invalid_argument(ppath + ": more than 63 parameters");
      auto required = SchemaCompiler::required_names(*params, ppath);
      if (!required) return required.status();
      SchemaCompiler compiler(g);
      for (size_t i = 0; i < props->keys().size(); ++i) {
        const std::string& key = props->keys()[i];
        if (!plain_name(key)) {
          return Status::invalid_argument(ppath + ".properties: parameter name '" + key +
                                          "' cannot be written in a DSML tag");
        }
        auto schema = compiler.compile(props->items()[i], ppath + ".properties." + key, 0);
        if (!schema) return schema.status();
        const Schema& s = g.schemas[*schema];
        // Strings travel raw (string="true"), as the renderer writes them; the rest as JSON.
        const int32_t enum_trie = raw_enum(g, props->items()[i]);
        const bool raw = s.kind == SchemaKind::kString || enum_trie >= 0;
        Syms header = dsml(
            "<", "parameter name=\"" + key + "\" string=\"" + (raw ? "true" : "false") + "\">");
        first.add(header, static_cast<int32_t>(i));
        next.add(header, static_cast<int32_t>(i));
        Property p;
        p.name = key;
        p.schema = *schema;
        p.required = std::find(required->begin(), required->end(), key) != required->end();
        p.entry_cost = static_cast<int64_t>(header.size()) +
                       (enum_trie >= 0 ? g.tries[static_cast<size_t>(enum_trie)].nodes[0].min_dist
                        : raw          ? 14 + s.min_chars
                                       : s.min_len + 14);
        if (p.required) tool.required_mask |= uint64_t{1} << i;
        tool.params.push_back(std::move(p));
        tool.raw.push_back(raw);
        tool.raw_enum_trie.push_back(enum_trie);
      }
    }
  }
  if (g.options.syntax == ToolCallSyntax::kV3) {
    if (params && params->is_object()) {
      SchemaCompiler compiler(g);
      auto args = compiler.compile(*params, ppath, 0);
      if (!args) return args.status();
      tool.args_schema = *args;
    }
    if (g.schemas[tool.args_schema].kind == SchemaKind::kAny) {
      Schema free;
      free.kind = SchemaKind::kFreeObject;
      free.min_len = 2;
      tool.args_schema = add_schema(g, std::move(free));
    }
  }
  const auto close = static_cast<int32_t>(tool.params.size());
  first.add(dsml("\n</", "invoke>\n"), close);
  next.add(dsml("</", "invoke>\n"), close);
  tool.trie_first = add_trie(g, std::move(first));
  tool.trie_next = add_trie(g, std::move(next));
  g.tools.push_back(std::move(tool));
  return Status::ok();
}

}  // namespace

ToolCallGrammar::ToolCallGrammar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ToolCallGrammar::~ToolCallGrammar() = default;

const std::vector<std::string>& ToolCallGrammar::unenforced() const { return impl_->unenforced; }

Result<std::shared_ptr<const ToolCallGrammar>> ToolCallGrammar::compile(
    std::span<const std::string> tools, const ToolCallGrammarOptions& options) {
  auto g = std::make_unique<Impl>();
  g->options = options;
  const bool v3 = options.syntax == ToolCallSyntax::kV3;
  if (v3 && options.reasoning) {
    return Status::invalid_argument("the V3 call syntax has no reasoning block");
  }
  g->schemas.push_back(Schema{});  // [0]: any JSON value, shortest "0"
  // The grammar's size grows with the schemas: bounded before any work, so that no request can
  // keep the cores busy compiling one.
  size_t total = 0;
  for (const std::string& t : tools) total += t.size();
  if (total > kMaxToolBytes) {
    return Status::invalid_argument("tools: the definitions are " + std::to_string(total) +
                                    " bytes; a constrained call takes at most " +
                                    std::to_string(kMaxToolBytes));
  }
  for (size_t i = 0; i < tools.size(); ++i) {
    auto def = parse_py_json(tools[i]);
    if (!def) return def.status().with_context("tools[" + std::to_string(i) + "]");
    MNEMO_RETURN_IF_ERROR(compile_tool(*g, *def, i));
  }
  if (g->tools.empty())
    return Status::invalid_argument("a tool-call constraint needs at least one tool");
  Trie names;
  int64_t min_invoke = std::numeric_limits<int64_t>::max();
  bool found = false;
  for (size_t i = 0; i < g->tools.size(); ++i) {
    const Tool& t = g->tools[i];
    if (options.forced_tool && *options.forced_tool != t.name) continue;
    Syms s;
    append_text(s, t.name + (v3 ? "\n```json\n" : "\">\n"));
    for (size_t j = 0; j < i; ++j) {
      if (g->tools[j].name == t.name)
        return Status::invalid_argument("tools: duplicate name '" + t.name + "'");
    }
    names.add(s, static_cast<int32_t>(i));
    int64_t req = 0, n = 0;
    for (const Property& p : t.params) {
      if (p.required) req += p.entry_cost, ++n;
    }
    // DSML: the shortest parameter list and "</｜DSML｜invoke>\n"; V3: the arguments and closing.
    const int64_t body = v3 ? g->schemas[t.args_schema].min_len + 5 : n > 0 ? req + 11 : 12;
    min_invoke = std::min(min_invoke, static_cast<int64_t>(s.size()) + body);
    found = true;
  }
  if (!found) {
    return Status::invalid_argument("tool_choice names '" + options.forced_tool.value_or("") +
                                    "', which is not among the declared tools");
  }
  g->min_invoke = min_invoke;
  g->name_trie = add_trie(*g, std::move(names));
  Trie block_next, block_end;
  Syms next_call = v3 ? Syms{'\n', kSymCallBegin} : dsml("<", "invoke name=\"");
  if (v3) append_text(next_call, "function"), next_call.push_back(kSymSep);
  const Syms end = v3 ? Syms{kSymCallsEnd} : dsml("</", "tool_calls>");
  block_next.add(next_call, 0);
  block_next.add(end, 1);
  block_end.add(end, 1);
  g->block_close = static_cast<int64_t>(end.size());
  g->block_next_trie = add_trie(*g, std::move(block_next));
  g->block_end_trie = add_trie(*g, std::move(block_end));
  Trie booleans, null;
  Syms t, f, n;
  append_text(t, "true");
  append_text(f, "false");
  append_text(n, "null");
  booleans.add(t, 0);
  booleans.add(f, 1);
  null.add(n, 0);
  g->bool_trie = add_trie(*g, std::move(booleans));
  g->null_trie = add_trie(*g, std::move(null));
  Syms open = v3 ? Syms{kSymCallsBegin, kSymCallBegin} : dsml("\n\n<", "tool_calls>\n");
  Syms invoke = dsml("<", "invoke name=\"");
  if (v3) {
    invoke.clear();
    append_text(invoke, "function");
    invoke.push_back(kSymSep);
  }
  open.insert(open.end(), invoke.begin(), invoke.end());
  g->literals.push_back(std::move(open));
  g->lit_open = 0;
  Syms tail;
  append_text(tail, "parameter>\n");
  g->literals.push_back(std::move(tail));
  g->lit_param_tail = 1;
  g->literals.push_back(dsml("</", "parameter>\n"));
  g->lit_param_close = 2;
  Syms call_close;
  append_text(call_close, "\n```");
  call_close.push_back(kSymCallEnd);
  g->literals.push_back(std::move(call_close));
  g->lit_call_close = 3;
  return std::shared_ptr<const ToolCallGrammar>(new ToolCallGrammar(std::move(g)));
}

}  // namespace mnemo::inference
