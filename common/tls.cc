#include "common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rapport {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view setting) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The files read now, so that one missing or unreadable stops a start (or a
// command) with its setting named, not every handshake later.
absl::Status CheckReadable(const TlsOptions& tls) {
  const std::pair<const std::string*, absl::string_view> files[] = {
      {&tls.cert_file, "tls_cert"},
      {&tls.key_file, "tls_key"},
      {&tls.ca_file, "tls_ca"}};
  for (const auto& [path, setting] : files) {
    if (path->empty()) continue;
    RAPPORT_RETURN_IF_ERROR(ReadPem(*path, setting).status());
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key go together: give both or neither");
  }
  return absl::OkStatus();
}

unsigned int ReloadSeconds(const TlsOptions& tls) {
  return static_cast<unsigned int>(std::max(1, tls.reload_seconds));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key are both required for a TLS server");
  }
  RAPPORT_RETURN_IF_ERROR(CheckReadable(tls));
  auto files = std::make_shared<FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.ca_file, ReloadSeconds(tls));
  grpc::experimental::TlsServerCredentialsOptions options(files);
  options.watch_identity_key_cert_pairs();
  if (!tls.ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(
        tls.client_certs == TlsOptions::ClientCerts::kRequire
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  RAPPORT_RETURN_IF_ERROR(CheckReadable(tls));
  grpc::experimental::TlsChannelCredentialsOptions options;
  // Without a CA, the system's roots (as for any TLS client).
  options.set_certificate_provider(
      std::make_shared<FileWatcherCertificateProvider>(
          tls.key_file, tls.cert_file, tls.ca_file, ReloadSeconds(tls)));
  if (!tls.ca_file.empty()) options.watch_root_certs();
  if (!tls.cert_file.empty()) options.watch_identity_key_cert_pairs();
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

absl::StatusOr<TlsOptions::ClientCerts> ParseClientCerts(
    absl::string_view value) {
  if (value == "require") return TlsOptions::ClientCerts::kRequire;
  if (value == "optional") return TlsOptions::ClientCerts::kOptional;
  return absl::InvalidArgumentError(absl::StrCat(
      "tls_client_certs: \"", value, "\" is neither require nor optional"));
}

}  // namespace rapport
