#pragma once
// Temporary store directories and direct RocksDB access for the memory tests.
#include <rocksdb/db.h>

#include <unistd.h>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

namespace mnemo::test {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("mnemo-memory-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Opens the store's RocksDB directly (no Store) and applies `edit` to one column family.
template <typename Edit>
void edit_family(const std::string& dir, const std::string& family, Edit edit) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir + "/db", &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), dir + "/db", descs, &handles, &db).ok());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == family) edit(*db, handles[i]);
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

inline void set_schema(const std::string& dir, uint64_t version) {
  edit_family(dir, "meta", [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
    std::string v(reinterpret_cast<const char*>(&version), 8);
    REQUIRE(db.Put(rocksdb::WriteOptions(), cf, std::string(1, 1) + "schema", v).ok());
  });
}

}  // namespace mnemo::test

#include <mnemo/inference/model.h>
#include <mnemo/memory/store.h>

#include <cstring>
#include <span>
#include <vector>

#include "support/tiny_model.h"

namespace mnemo::test {

// Store options with small chunks and prefix tails, so tests of a few hundred tokens cross boundaries.
inline memory::StoreOptions small_chunks() {
  memory::StoreOptions o;
  o.chunk_tokens = 128;
  o.prefix_tail_every = 256;
  return o;
}

// n token ids: golden-tiny's sequence_337, then a fixed pseudo-random continuation inside its
// vocabulary.
inline std::vector<inference::TokenId> long_tokens(size_t n, uint32_t seed = 1) {
  std::vector<inference::TokenId> out = tiny_tokens("sequence_337");
  out.resize(std::min(out.size(), n));
  uint32_t x = seed * 2654435761u + 12345u;
  while (out.size() < n) {
    x = x * 1664525u + 1013904223u;
    out.push_back(static_cast<inference::TokenId>((x >> 8) % 4096));
  }
  return out;
}

// Runs tokens through the sequence in one chunk and returns their logits.
inline std::vector<float> run(const inference::Model& m, inference::Sequence& seq,
                              std::span<const inference::TokenId> tokens) {
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.config().vocab_size));
  REQUIRE(m.forward(seq, tokens, logits));
  return logits;
}

// Logits of decoding tokens one at a time.
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace mnemo::test
