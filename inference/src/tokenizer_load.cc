// Loading tokenizer.json: the BPE vocabulary and merges, added tokens, and a check that the
// normalizer, pre-tokenizer and decoder are the ones this implementation computes.
#include <mnemo/base/file.h>
#include <mnemo/base/utf8.h>

#include <simdjson.h>

#include "pretokenizer.h"
#include "tokenizer_impl.h"

namespace mnemo::inference {
namespace {

using simdjson::dom::element;

Status json_error(std::string_view where, simdjson::error_code e) {
  return Status::invalid_argument(std::string(where) + ": " + simdjson::error_message(e));
}

// Raw bytes of a vocabulary entry written in the byte-level alphabet.
Result<std::string> from_byte_level(std::string_view token) {
  const ByteLevel& bl = byte_level();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    char32_t cp = utf8::next(token, i);
    auto it = bl.char_to_byte.find(cp);
    if (it == bl.char_to_byte.end()) {
      return Status::invalid_argument("vocab token '" + std::string(token) +
                                      "' has a character outside the byte-level alphabet");
    }
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

Status check_split(element split, std::string_view pattern, size_t index) {
  std::string where = "pre_tokenizer.pretokenizers[" + std::to_string(index) + "]";
  std::string_view type, regex, behavior;
  bool invert = true;
  if (split["type"].get(type) || type != "Split" || split["pattern"]["Regex"].get(regex) ||
      split["behavior"].get(behavior) || split["invert"].get(invert)) {
    return Status::unsupported(where + ": expected a Split with a Regex pattern");
  }
  if (regex != pattern || behavior != "Isolated" || invert) {
    return Status::unsupported(where + ": Split pattern '" + std::string(regex) +
                               "' is not the DeepSeek pre-tokenizer this build implements");
  }
  return Status::ok();
}

Status check_pipeline(element root) {
  element normalizer;
  if (!root["normalizer"].get(normalizer) && !normalizer.is_null()) {
    std::string_view type;
    simdjson::dom::array list;
    if (normalizer["type"].get(type) || type != "Sequence" || normalizer["normalizers"].get(list) ||
        list.size() != 0) {
      return Status::unsupported("normalizer: only none or an empty Sequence is supported");
    }
  }
  simdjson::dom::array pre;
  if (root["pre_tokenizer"]["pretokenizers"].get(pre) || pre.size() != 4) {
    return Status::unsupported("pre_tokenizer: expected the DeepSeek Sequence of 3 Splits and ByteLevel");
  }
  MNEMO_RETURN_IF_ERROR(check_split(pre.at(0).value_unsafe(), kDigitsPattern, 0));
  MNEMO_RETURN_IF_ERROR(check_split(pre.at(1).value_unsafe(), kCjkPattern, 1));
  MNEMO_RETURN_IF_ERROR(check_split(pre.at(2).value_unsafe(), kMainPattern, 2));
  std::string_view type;
  bool use_regex = true;
  if (pre.at(3)["type"].get(type) || type != "ByteLevel" || pre.at(3)["use_regex"].get(use_regex) ||
      use_regex) {
    return Status::unsupported("pre_tokenizer.pretokenizers[3]: expected ByteLevel without regex");
  }
  if (root["decoder"]["type"].get(type) || type != "ByteLevel") {
    return Status::unsupported("decoder: only ByteLevel is supported");
  }
  if (root["model"]["type"].get(type) || type != "BPE") {
    return Status::unsupported("model.type: only BPE is supported");
  }
  bool byte_fallback = false;
  if (!root["model"]["byte_fallback"].get(byte_fallback) && byte_fallback) {
    return Status::unsupported("model.byte_fallback: not supported");
  }
  return Status::ok();
}

Status load_vocab(element model, Tokenizer::Impl& t) {
  simdjson::dom::object vocab;
  if (auto e = model["vocab"].get(vocab)) return json_error("model.vocab", e);
  t.bpe_by_bytes.reserve(vocab.size());
  for (auto [key, value] : vocab) {
    int64_t id;
    if (value.get(id) || id < 0 || id >= (int64_t{1} << 24)) {
      return Status::invalid_argument("model.vocab['" + std::string(key) + "']: id is not a valid token id");
    }
    // Entries outside the byte-level alphabet (the special tokens) stand for their own text.
    auto bytes = from_byte_level(key);
    if (!bytes) bytes = std::string(key);
    t.ensure_id(static_cast<TokenId>(id));
    if (t.id_kind[id] != TokenKind::kUnknown) {
      return Status::invalid_argument("model.vocab: id " + std::to_string(id) + " appears twice");
    }
    t.id_kind[id] = TokenKind::kBpe;
    t.id_bytes[id] = *bytes;
    t.bpe_by_bytes.emplace(std::move(bytes).value(), static_cast<TokenId>(id));
  }
  for (int b = 0; b < 256; ++b) {
    auto it = t.bpe_by_bytes.find(std::string(1, static_cast<char>(b)));
    if (it == t.bpe_by_bytes.end()) {
      return Status::invalid_argument("model.vocab: no token for byte " + std::to_string(b));
    }
    t.byte_token[b] = it->second;
  }
  return Status::ok();
}

Status load_merges(element model, Tokenizer::Impl& t) {
  simdjson::dom::array merges;
  if (auto e = model["merges"].get(merges)) return json_error("model.merges", e);
  t.merges.reserve(merges.size());
  uint32_t rank = 0;
  for (element m : merges) {
    std::string where = "model.merges[" + std::to_string(rank) + "]";
    std::string_view left, right, line;
    simdjson::dom::array pair;
    if (!m.get(line)) {
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos) return Status::invalid_argument(where + ": expected 'A B'");
      left = line.substr(0, sp);
      right = line.substr(sp + 1);
    } else if (!m.get(pair) && pair.size() == 2 && !pair.at(0).get(left) && !pair.at(1).get(right)) {
    } else {
      return Status::invalid_argument(where + ": expected a string 'A B' or a pair [A, B]");
    }
    auto lb = from_byte_level(left);
    auto rb = from_byte_level(right);
    if (!lb || !rb) return Status::invalid_argument(where + ": not in the byte-level alphabet");
    auto li = t.bpe_by_bytes.find(*lb);
    auto ri = t.bpe_by_bytes.find(*rb);
    auto mi = t.bpe_by_bytes.find(*lb + *rb);
    if (li == t.bpe_by_bytes.end() || ri == t.bpe_by_bytes.end() || mi == t.bpe_by_bytes.end()) {
      return Status::invalid_argument(where + ": merge of tokens missing from the vocabulary");
    }
    t.merges.insert(li->second, ri->second, {rank, mi->second});
    ++rank;
  }
  return Status::ok();
}

Status load_added(element root, Tokenizer::Impl& t) {
  simdjson::dom::array added;
  if (root["added_tokens"].get(added)) return Status::ok();  // optional
  size_t index = 0;
  for (element a : added) {
    std::string where = "added_tokens[" + std::to_string(index++) + "]";
    int64_t id;
    std::string_view content;
    bool special = false;
    if (a["id"].get(id) || id < 0 || id >= (int64_t{1} << 24) || a["content"].get(content)) {
      return Status::invalid_argument(where + ": needs an integer id and a string content");
    }
    if (a["special"].get(special)) special = false;
    MNEMO_RETURN_IF_ERROR(t.add_added_token(content, static_cast<TokenId>(id), special).with_context(where));
  }
  return Status::ok();
}

}  // namespace

Status Tokenizer::Impl::add_added_token(std::string_view content, TokenId id, bool special) {
  if (content.empty()) return Status::invalid_argument("empty token content");
  MNEMO_RETURN_IF_ERROR(utf8::validate(content));
  if (added_by_text.count(std::string(content))) {
    return Status::invalid_argument("token '" + std::string(content) + "' is already an added token");
  }
  ensure_id(id);
  if (id_kind[id] == TokenKind::kAdded || id_kind[id] == TokenKind::kSpecial) {
    return Status::invalid_argument("id " + std::to_string(id) + " is already an added token");
  }
  // As HF's ByteLevel decoder: the content maps through the byte-level alphabet when it can.
  auto mapped = from_byte_level(content);
  id_bytes[id] = mapped ? *mapped : std::string(content);
  id_kind[id] = special ? TokenKind::kSpecial : TokenKind::kAdded;
  added_by_text.emplace(content, id);
  added.add(content, id);
  return Status::ok();
}

Result<Tokenizer> Tokenizer::from_json(std::string_view json, std::string_view origin) {
  auto fail = [&](const Status& s) -> Result<Tokenizer> { return s.with_context(origin); };
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto e = parser.parse(padded).get(root)) return fail(json_error("not valid JSON", e));
  if (auto s = check_pipeline(root); !s) return fail(s);
  auto impl = std::make_unique<Impl>();
  element model = root["model"].value_unsafe();
  if (auto s = load_vocab(model, *impl); !s) return fail(s);
  if (auto s = load_merges(model, *impl); !s) return fail(s);
  if (auto s = load_added(root, *impl); !s) return fail(s);
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.status();
  return from_json(*text, path);
}

}  // namespace mnemo::inference
