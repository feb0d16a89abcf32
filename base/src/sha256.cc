#include <mnemo/base/check.h>
#include <mnemo/base/sha256.h>

#include <openssl/evp.h>

namespace mnemo {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  MNEMO_CHECK(ctx_->md && EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

Sha256& Sha256::update(const void* data, size_t n) {
  MNEMO_CHECK(EVP_DigestUpdate(ctx_->md, data, n) == 1);
  return *this;
}

Sha256& Sha256::update_field(std::string_view s) {
  uint64_t n = s.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  update(len, 8);
  return update(s);
}

Digest Sha256::finish() {
  Digest d{};
  unsigned int n = 0;
  MNEMO_CHECK(EVP_DigestFinal_ex(ctx_->md, d.data(), &n) == 1 && n == d.size());
  return d;
}

Digest sha256(std::string_view data) { return Sha256().update(data).finish(); }

std::string to_hex(const Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

}  // namespace mnemo
