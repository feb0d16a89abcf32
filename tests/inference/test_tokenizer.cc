#include <mnemo/base/file.h>
#include <mnemo/base/utf8.h>
#include <mnemo/inference/special_tokens.h>
#include <mnemo/inference/tokenizer.h>

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "support/test_paths.h"

using mnemo::inference::StreamDecoder;
using mnemo::inference::TokenId;
using mnemo::inference::Tokenizer;

namespace {

const Tokenizer& v3() {
  static auto tok = Tokenizer::load(mnemo::test::v3_tokenizer_path());
  REQUIRE(tok);
  return *tok;
}

struct Case {
  std::string text;
  std::vector<TokenId> ids;
};

std::vector<Case> golden_cases() {
  std::vector<Case> cases;
  std::ifstream in(mnemo::test::data_path("tokenizer_cases.jsonl"));
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    simdjson::dom::element doc;
    REQUIRE(!parser.parse(line).get(doc));
    Case c;
    std::string_view text;
    simdjson::dom::array ids;
    REQUIRE(!doc["text"].get(text));
    REQUIRE(!doc["ids"].get(ids));
    c.text = std::string(text);
    for (simdjson::dom::element e : ids) {
      int64_t id = 0;
      REQUIRE(!e.get(id));
      c.ids.push_back(static_cast<TokenId>(id));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

TEST_CASE("tokenizer gives the reference ids for every golden text", "[tokenizer]") {
  auto cases = golden_cases();
  REQUIRE(cases.size() == 300);
  size_t failures = 0;
  for (const Case& c : cases) {
    auto ids = v3().encode(c.text);
    REQUIRE(ids);
    if (*ids != c.ids) {
      ++failures;
      UNSCOPED_INFO("mismatch on: " << c.text.substr(0, 120));
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("decode(encode(text)) gives the text back for every golden text", "[tokenizer]") {
  for (const Case& c : golden_cases()) {
    auto text = v3().decode(c.ids);
    REQUIRE(text);
    CHECK(*text == c.text);
  }
}

TEST_CASE("special tokens in text become single ids", "[tokenizer]") {
  auto ids = v3().encode("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
  REQUIRE(ids);
  REQUIRE(ids->size() == 4);
  CHECK((*ids)[0] == 0);
  CHECK((*ids)[1] == 128803);
  CHECK((*ids)[3] == 128804);
  CHECK(v3().is_special(0));
  CHECK_FALSE(v3().is_special(128803));  // V3's file lists <｜User｜> as added but not special
  CHECK_FALSE(v3().is_special((*ids)[2]));
}

TEST_CASE("the V4 tokenizer adds think, DSML and latest_reminder tokens", "[tokenizer]") {
  auto tok = Tokenizer::load(mnemo::test::v3_tokenizer_path());
  REQUIRE(tok);
  REQUIRE(mnemo::inference::tokens::add_v4_tokens(*tok));
  auto ids = tok->encode("<think>x</think><｜DSML｜invoke");
  REQUIRE(ids);
  CHECK((*ids)[0] == 128821);
  CHECK((*ids)[2] == 128822);
  CHECK((*ids)[4] == 128825);  // `<` stays a plain token before the DSML marker
  CHECK(tok->vocab_size() == 128829);
  CHECK_FALSE(tok->add_special_token("<think>", 128900));  // already added
  auto text = tok->decode(*ids);
  REQUIRE(text);
  CHECK(*text == "<think>x</think><｜DSML｜invoke");
}

TEST_CASE("invalid UTF-8 input is an error naming the offset", "[tokenizer]") {
  auto ids = v3().encode("ok \xC3\x28 bad");
  REQUIRE_FALSE(ids);
  CHECK(ids.status().message().find("byte 3") != std::string::npos);
  CHECK_FALSE(v3().encode("\xED\xA0\x80"));  // a UTF-16 surrogate encoded in UTF-8
}

TEST_CASE("unknown ids are an error when decoding", "[tokenizer]") {
  std::vector<TokenId> ids{5, 999999};
  CHECK_FALSE(v3().decode(ids));
  std::vector<TokenId> negative{-1};
  CHECK_FALSE(v3().decode(negative));
}

TEST_CASE("bytes that are not UTF-8 decode to U+FFFD", "[tokenizer]") {
  // A lone continuation byte and a truncated 3-byte sequence, by way of their byte tokens.
  auto tok_of = [](unsigned char b) { return *v3().token_id(std::string(1, static_cast<char>(b))); };
  (void)tok_of;
  std::vector<TokenId> ids;
  for (const char* s : {"a", "\x80", "b", "\xE4\xBD", "c"}) {
    for (const char* p = s; *p; ++p) {
      std::string one(1, *p);
      // The vocabulary is keyed by raw bytes for BPE tokens.
      auto id = v3().token_id(one);
      REQUIRE(id);
      ids.push_back(*id);
    }
  }
  auto text = v3().decode(ids);
  REQUIRE(text);
  CHECK(*text == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");
}

TEST_CASE("streaming decode emits whole characters and matches the full decode", "[tokenizer]") {
  for (const Case& c : golden_cases()) {
    StreamDecoder stream(v3());
    std::string joined;
    for (TokenId id : c.ids) {
      auto piece = stream.push(id);
      REQUIRE(piece);
      REQUIRE(mnemo::utf8::validate(*piece));
      joined += *piece;
    }
    joined += stream.finish();
    CHECK(joined == c.text);
  }
}

TEST_CASE("streaming decode of broken UTF-8 gives the same U+FFFD as the full decode", "[tokenizer]") {
  std::vector<std::string> byte_seqs{"\xF0\x9F\x98", "x", "\xE4", "\xBD\xA0", "\xC3", "\xC3\xA9", "\xF4\x90\x80\x80", "\xE0\x80", "\xF0\x9F"};
  std::vector<TokenId> ids;
  for (const auto& s : byte_seqs) {
    for (char b : s) ids.push_back(*v3().token_id(std::string(1, b)));
  }
  auto full = v3().decode(ids);
  REQUIRE(full);
  StreamDecoder stream(v3());
  std::string joined;
  for (TokenId id : ids) {
    auto piece = stream.push(id);
    REQUIRE(piece);
    joined += *piece;
  }
  joined += stream.finish();
  CHECK(joined == *full);
  CHECK(mnemo::utf8::validate(joined));
}

TEST_CASE("a tokenizer.json with another pre-tokenizer is refused with a clear error", "[tokenizer]") {
  auto text = mnemo::read_file(mnemo::test::v3_tokenizer_path());
  REQUIRE(text);
  std::string changed = *text;
  auto at = changed.find("\\\\p{N}{1,3}");
  REQUIRE(at != std::string::npos);
  changed.replace(at, 11, "\\\\p{N}{1,4}");
  auto tok = Tokenizer::from_json(changed, "changed.json");
  REQUIRE_FALSE(tok);
  CHECK(tok.status().message().find("changed.json: pre_tokenizer.pretokenizers[0]") == 0);
  auto broken = Tokenizer::from_json(text->substr(0, text->size() / 2), "half.json");
  REQUIRE_FALSE(broken);
  CHECK(broken.status().message().find("half.json") == 0);
}

TEST_CASE("random Unicode text round-trips through encode and decode", "[tokenizer]") {
  // Code points from the classes the pre-tokenizer distinguishes, mixed at random.
  const std::vector<std::pair<char32_t, char32_t>> ranges{
      {0x20, 0x7E}, {0x09, 0x0D}, {0x00, 0x1F}, {0xA0, 0x17F}, {0x300, 0x36F}, {0x4E00, 0x4E80},
      {0x3040, 0x30FF}, {0x2000, 0x206F}, {0x1F300, 0x1F64F}, {0x0660, 0x0669}, {0xAC00, 0xAC40},
      {0x3000, 0x3003}, {0x85, 0x85}, {0xFEFF, 0xFEFF}, {0x10FFF0, 0x10FFFD}};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto rnd = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 300; ++round) {
    std::string text;
    size_t n = rnd() % 200;
    for (size_t i = 0; i < n; ++i) {
      auto [lo, hi] = ranges[rnd() % ranges.size()];
      mnemo::utf8::append(text, static_cast<char32_t>(lo + rnd() % (hi - lo + 1)));
      if (rnd() % 16 == 0) text += "<｜User｜>";
    }
    auto ids = v3().encode(text);
    REQUIRE(ids);
    auto back = v3().decode(*ids);
    REQUIRE(back);
    CHECK(*back == text);
  }
}
