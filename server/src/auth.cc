#include <mnemo/memory/keys.h>
#include <mnemo/server/auth.h>

namespace mnemo::server {
namespace {

class StoreAuthenticator final : public Authenticator {
 public:
  explicit StoreAuthenticator(const memory::Store& store) : store_(store) {}
  Result<std::optional<std::string>> tenant(std::string_view key) const override {
    auto found = memory::find_api_key(store_, key);
    if (!found) return found.status();
    if (!found->has_value()) return std::optional<std::string>();
    return std::optional<std::string>((*found)->tenant);
  }

 private:
  const memory::Store& store_;
};

}  // namespace

std::shared_ptr<const Authenticator> make_store_authenticator(const memory::Store& store) {
  return std::make_shared<StoreAuthenticator>(store);
}

}  // namespace mnemo::server
