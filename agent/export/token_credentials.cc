// SPDX-License-Identifier: Apache-2.0
#include "agent/export/token_credentials.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace wattlens {
namespace {

class TokenFilePlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit TokenFilePlugin(std::string file) : file_(std::move(file)) {}

  bool IsBlocking() const override { return true; }  // reads a file
  const char* GetType() const override { return "wattlens-sa-token"; }

  grpc::Status GetMetadata(
      grpc::string_ref /*service_url*/, grpc::string_ref /*method_name*/,
      const grpc::AuthContext& /*channel_auth_context*/,
      std::multimap<std::string, std::string>* metadata) override {
    std::ifstream in(file_);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string token(absl::StripAsciiWhitespace(ss.str()));
    if (!in.good() && token.empty()) {
      return grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("service-account token ", file_, " is not readable"));
    }
    if (token.empty()) {
      return grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("service-account token ", file_, " is empty"));
    }
    metadata->insert({"authorization", absl::StrCat("Bearer ", token)});
    return grpc::Status::OK;
  }

 private:
  const std::string file_;
};

}  // namespace

std::shared_ptr<grpc::CallCredentials> ServiceAccountTokenCredentials(
    const std::string& token_file) {
  return grpc::MetadataCredentialsFromPlugin(
      std::make_unique<TokenFilePlugin>(token_file));
}

}  // namespace wattlens
