// TLS settings for servers and clients.
//
// Empty options mean plaintext (for loopback and development). With a
// certificate and key a server speaks TLS; adding a CA makes it verify client
// certificates (mutual TLS, for traffic inside the cluster): required by
// default, or only checked when presented (`client_certs = kOptional`), for a
// service that other services call with certificates and people call with
// bearer tokens alone.
#ifndef RAPPORT_COMMON_TLS_H_
#define RAPPORT_COMMON_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

struct TlsOptions {
  enum class ClientCerts { kRequire, kOptional };

  std::string cert_file;  // PEM certificate chain of this party
  std::string key_file;   // PEM private key of this party
  std::string ca_file;    // PEM roots that the peer's certificate must chain to
  // Servers with a ca_file: whether a client must present a certificate.
  ClientCerts client_certs = ClientCerts::kRequire;
  // How often the files are read again: a renewed certificate (cert-manager
  // writes it into the mounted Secret) is taken up without a restart, by
  // servers and by long-lived clients alike.
  int reload_seconds = 60;

  bool enabled() const { return !cert_file.empty() || !ca_file.empty(); }
};

// Server credentials: insecure when TLS is off, else TLS (mutual when ca_file
// is set, as client_certs says), from files read again every reload_seconds.
// Files that cannot be read now are INVALID_ARGUMENT naming their setting.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls);

// Channel credentials: insecure when TLS is off, else TLS verifying the server
// (its chain, with ca_file or the system's roots, and its name) and
// presenting cert/key when given, read again as for servers.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsOptions& tls);

// "require" or "optional" (the --tls_client_certs flag); errors name the flag.
absl::StatusOr<TlsOptions::ClientCerts> ParseClientCerts(
    absl::string_view value);

}  // namespace rapport

#endif  // RAPPORT_COMMON_TLS_H_
