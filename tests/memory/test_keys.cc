// API keys: made once, stored only as a hash, found by the key, listed, revoked.
#include <mnemo/memory/keys.h>
#include <mnemo/memory/store.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "memory_test_util.h"

using namespace mnemo;
using namespace mnemo::memory;

TEST_CASE("an API key is found by its text, listed by id and revoked", "[memory][keys]") {
  test::TempDir dir;
  auto store = Store::open(dir.path());
  REQUIRE(store);
  auto none = list_api_keys(**store);
  REQUIRE(none);
  CHECK(none->empty());

  auto a = add_api_key(**store, "acme");
  REQUIRE(a);
  auto b = add_api_key(**store, "globex");
  REQUIRE(b);
  CHECK(a->key.starts_with("mnemo_sk_"));
  CHECK(a->key.size() == 9 + 64);
  CHECK(a->key != b->key);
  CHECK(a->info.id.starts_with("key_"));

  auto found = find_api_key(**store, a->key);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->tenant == "acme");
  CHECK((*found)->id == a->info.id);
  auto wrong = find_api_key(**store, a->key.substr(0, a->key.size() - 1) + "x");
  REQUIRE(wrong);
  CHECK(!wrong->has_value());
  CHECK(!find_api_key(**store, "")->has_value());

  auto listed = list_api_keys(**store);
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].tenant == "acme");
  CHECK((*listed)[1].tenant == "globex");

  REQUIRE(revoke_api_key(**store, a->info.id));
  CHECK(!find_api_key(**store, a->key)->has_value());
  CHECK(find_api_key(**store, b->key)->has_value());
  Status again = revoke_api_key(**store, a->info.id);
  CHECK(again.code() == StatusCode::kNotFound);
  CHECK(!add_api_key(**store, "bad tenant"));
}

TEST_CASE("the store keeps only a hash of an API key", "[memory][keys]") {
  test::TempDir dir;
  std::string key;
  {
    auto store = Store::open(dir.path());
    REQUIRE(store);
    auto made = add_api_key(**store, "acme");
    REQUIRE(made);
    key = made->key;
    REQUIRE((*store)->flush());
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    CHECK(bytes.find(key.substr(9)) == std::string::npos);
  }
  // A read-only instance beside nothing still finds it.
  auto ro = Store::open(dir.path(), {.read_only = true});
  REQUIRE(ro);
  CHECK(find_api_key(**ro, key)->has_value());
}
