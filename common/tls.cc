#include "common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

// OpenSSL objects freed with their own functions.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM text; null when there is none.
std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Free>(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

// The files read and parsed now, so that one missing, unreadable, garbled or
// a key that is not the certificate's stops a start (or a command) with its
// setting named, rather than failing every handshake later with a log line.
// (A renewal is read by gRPC: replace both files at once, as the kubelet
// does a Secret's.)
absl::Status ParseFiles(const TlsOptions& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key go together: give both or neither");
  }
  if (!tls.ca_file.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(std::string ca, ReadPem(tls.ca_file, "tls_ca"));
    if (FirstCertificate(ca) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_ca: ", tls.ca_file, " holds no PEM certificate"));
    }
  }
  if (tls.cert_file.empty()) return absl::OkStatus();
  RAPPORT_ASSIGN_OR_RETURN(std::string cert_pem,
                           ReadPem(tls.cert_file, "tls_cert"));
  RAPPORT_ASSIGN_OR_RETURN(std::string key_pem,
                           ReadPem(tls.key_file, "tls_key"));
  std::unique_ptr<X509, X509Free> cert = FirstCertificate(cert_pem);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert: ", tls.cert_file, " holds no PEM certificate"));
  }
  Bio key_bio = MemoryBio(key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      key_bio
          ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)
          : nullptr);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key: ", tls.key_file, " holds no PEM private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_key: ", tls.key_file, " is not the key of ", tls.cert_file));
  }
  return absl::OkStatus();
}

absl::Status CheckFiles(const TlsOptions& tls) {
  absl::Status parsed = ParseFiles(tls);
  ERR_clear_error();  // what failed to parse leaves no error for gRPC's TLS
  return parsed;
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
  RAPPORT_RETURN_IF_ERROR(CheckFiles(tls));
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
  RAPPORT_RETURN_IF_ERROR(CheckFiles(tls));
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
