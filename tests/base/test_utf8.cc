#include <mnemo/base/status.h>
#include <mnemo/base/utf8.h>

#include <catch2/catch.hpp>

using namespace mnemo;

TEST_CASE("lossy decoding replaces each maximal invalid subpart with one U+FFFD", "[utf8]") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(utf8::lossy("abc") == "abc");
  CHECK(utf8::lossy("\x80") == r);
  CHECK(utf8::lossy("\xE4\xBD") == r);                 // truncated 3-byte sequence: one replacement
  CHECK(utf8::lossy("\xE4\xBDx") == r + "x");
  CHECK(utf8::lossy("\xF0\x80\x80") == r + r + r);     // overlong lead: each byte on its own
  CHECK(utf8::lossy("\xED\xA0\x80") == r + r + r);     // surrogate
  CHECK(utf8::lossy("\xF4\x90\x80\x80") == r + r + r + r);
  CHECK(utf8::lossy("\xC3\xA9\xFF") == "\xC3\xA9" + r);
}

TEST_CASE("incremental lossy decoding holds back an incomplete character", "[utf8]") {
  std::string out;
  CHECK(utf8::decode_lossy("a\xE4\xBD", out, false) == 1);
  CHECK(out == "a");
  out.clear();
  CHECK(utf8::decode_lossy("\xE4\xBD\xA0", out, false) == 3);
  CHECK(out == "\xE4\xBD\xA0");
}

TEST_CASE("validation names the offset of the first bad byte", "[utf8]") {
  CHECK(utf8::validate("héllo"));
  auto s = utf8::validate("ab\xFF");
  REQUIRE_FALSE(s);
  CHECK(s.message() == "invalid UTF-8 at byte 2");
}

TEST_CASE("Result carries a value or the error status", "[status]") {
  Result<int> ok = 3;
  REQUIRE(ok);
  CHECK(*ok == 3);
  Result<int> bad = Status::not_found("no such thing");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == StatusCode::kNotFound);
  CHECK(bad.status().with_context("loading").message() == "loading: no such thing");
}

#include <mnemo/base/sha256.h>

TEST_CASE("SHA-256 gives the standard digests", "[sha256]") {
  CHECK(mnemo::to_hex(mnemo::sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(mnemo::to_hex(mnemo::sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  mnemo::Sha256 h;
  h.update("a").update("bc");
  CHECK(mnemo::to_hex(h.finish()) == mnemo::to_hex(mnemo::sha256("abc")));
}
