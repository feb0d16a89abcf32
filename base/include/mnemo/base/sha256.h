#pragma once
// SHA-256 (OpenSSL) for content keys and fingerprints.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mnemo {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& update(const void* data, size_t n);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Length-prefixed, so that consecutive fields cannot run into each other.
  Sha256& update_field(std::string_view s);
  Digest finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

Digest sha256(std::string_view data);
std::string to_hex(const Digest& d);

}  // namespace mnemo
