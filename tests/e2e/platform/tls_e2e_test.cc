// TLS through the real binaries: a server with --tls_cert, --tls_key and
// --tls_ca speaks mutual TLS only, and serves a renewed certificate (the
// files replaced, as cert-manager replaces a mounted Secret's) without a
// restart; rapportctl verifies the server's chain and name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/mariadb.h"
#include "tests/support/process.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

using testing::RunResult;
using testing::TempDir;

// Two CAs; a server certificate from each (for 127.0.0.1 and localhost),
// one from the first for another name, and a client certificate from the
// first, all made by openssl.
constexpr char kMakeCertificates[] = R"sh(
set -euo pipefail
certs=$0 dir=$1
for ca in ca1 ca2; do "$certs" ca "$dir" $ca; done
"$certs" issue "$dir" server1 ca1 serverAuth IP:127.0.0.1,DNS:localhost
"$certs" issue "$dir" server2 ca2 serverAuth IP:127.0.0.1,DNS:localhost
"$certs" issue "$dir" client ca1 clientAuth IP:127.0.0.1,DNS:localhost
"$certs" issue "$dir" elsewhere ca1 serverAuth DNS:elsewhere.example
cp "$dir/server1.key" "$dir/server.key"
cp "$dir/server1.crt" "$dir/server.crt"
)sh";

class TlsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    RunResult made = testing::Run(
        {"/bin/bash", "-c", kMakeCertificates,
         testing::SourceDir() + "/tests/support/test-certs", dir_.path()});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  std::string File(const std::string& name) const { return dir_.File(name); }
  // rapportctl health against `addr` with these TLS flags.
  int Health(const std::string& addr, std::vector<std::string> tls) const {
    std::vector<std::string> args = {testing::CtlPath(), "health", "--addr",
                                     addr};
    args.insert(args.end(), tls.begin(), tls.end());
    return testing::Run(args).exit_code;
  }
  // True when the call fails for the connection (UNAVAILABLE: the handshake
  // refused), not for a usage error or a NOT_SERVING answer.
  bool Refused(const std::string& addr, std::vector<std::string> tls) const {
    std::vector<std::string> args = {testing::CtlPath(), "health", "--addr",
                                     addr};
    args.insert(args.end(), tls.begin(), tls.end());
    const auto r = testing::Run(args);
    return r.exit_code == 1 && r.err.find("UNAVAILABLE") != std::string::npos;
  }
  TempDir dir_;
};

TEST_F(TlsE2E, MutualTlsOnlyAndARenewedCertificateServedWithoutARestart) {
  testing::ServerProcess server(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--tls_cert=" + File("server.crt"), "--tls_key=" + File("server.key"),
       "--tls_ca=" + File("ca1.crt"), "--tls_reload=1s"});
  const std::string addr = server.addr();
  const std::vector<std::string> client = {"--tls-cert", File("client.crt"),
                                           "--tls-key", File("client.key")};
  auto trusting = [&](const std::string& ca) {
    std::vector<std::string> flags = {"--tls-ca", File(ca)};
    flags.insert(flags.end(), client.begin(), client.end());
    return flags;
  };
  EXPECT_EQ(Health(addr, trusting("ca1.crt")), 0) << server.log();
  // No client certificate, no TLS, or a server from another CA: refused.
  EXPECT_TRUE(Refused(addr, {"--tls-ca", File("ca1.crt")}));
  EXPECT_TRUE(Refused(addr, {}));
  EXPECT_TRUE(Refused(addr, trusting("ca2.crt")));

  // The renewed certificate (here from the other CA, to tell them apart) in
  // place of the old, the key first: served once the files are read again.
  ASSERT_EQ(
      std::rename(File("server2.key").c_str(), File("server.key").c_str()), 0);
  ASSERT_EQ(
      std::rename(File("server2.crt").c_str(), File("server.crt").c_str()), 0);
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (Health(addr, trusting("ca2.crt")) != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(Health(addr, trusting("ca2.crt")), 0) << server.log();
  EXPECT_TRUE(Refused(addr, trusting("ca1.crt")));
  // The same process throughout.
  EXPECT_TRUE(server.process().running());
}

// TLS on one side only fails the connection; rapportctl says which way it
// may be wrong, and prints no log line of gRPC's own.
TEST_F(TlsE2E, TlsOnOneSideOnlyIsRefusedWithAHint) {
  testing::ServerProcess tls(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--tls_cert=" + File("server.crt"), "--tls_key=" + File("server.key")});
  testing::ServerProcess plain(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {}, {});
  RunResult no_tls =
      testing::Run({testing::CtlPath(), "health", "--addr", tls.addr()});
  EXPECT_EQ(no_tls.exit_code, 1) << no_tls.err;
  EXPECT_NE(no_tls.err.find("hint: the service closed the connection; if it "
                            "did so as the call began, it may serve TLS"),
            std::string::npos)
      << no_tls.err;
  RunResult tls_only =
      testing::Run({testing::CtlPath(), "health", "--addr", plain.addr(),
                    "--tls-ca", File("ca1.crt")});
  EXPECT_EQ(tls_only.exit_code, 1) << tls_only.err;
  EXPECT_NE(tls_only.err.find("hint: the service does not speak TLS there"),
            std::string::npos)
      << tls_only.err;
  // Its status, not gRPC's "E1207 ... Handshake failed" log line.
  EXPECT_EQ(tls_only.err.find("ssl_transport_security"), std::string::npos)
      << tls_only.err;
  EXPECT_EQ(std::count(tls_only.err.begin(), tls_only.err.end(), '\n'), 2)
      << tls_only.err;
}

// The client checks the server's name, not only its chain: a certificate
// of the right CA for another host is refused.
TEST_F(TlsE2E, AServerCertificateForAnotherNameIsRefused) {
  testing::ServerProcess server(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--tls_cert=" + File("elsewhere.crt"),
       "--tls_key=" + File("elsewhere.key")});
  EXPECT_TRUE(Refused(server.addr(), {"--tls-ca", File("ca1.crt")}));
  // The same CA's certificate for this host is taken (the check above
  // fails for the name, not for the chain).
  testing::ServerProcess named(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--tls_cert=" + File("server1.crt"),
       "--tls_key=" + File("server1.key")});
  EXPECT_EQ(Health(named.addr(), {"--tls-ca", File("ca1.crt")}), 0)
      << named.log();
}

// Files that would fail every handshake stop the start instead, naming the
// setting: a key that is not the certificate's, a certificate file with no
// certificate in it.
TEST_F(TlsE2E, AKeyThatIsNotTheCertificatesStopsTheStart) {
  auto start = [&](const std::string& cert, const std::string& key) {
    return testing::Run(
        {testing::BinaryDir() + "/services/scoring/rapport-scoring",
         "--listen=127.0.0.1:0", "--metrics_listen=",
         "--jwks_file=" + testing::TestAuth::Get().jwks_file(),
         "--tls_cert=" + File(cert), "--tls_key=" + File(key)});
  };
  RunResult mismatched = start("server1.crt", "server2.key");
  EXPECT_NE(mismatched.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(
      mismatched.out + mismatched.err,
      "tls_key: " + File("server2.key") + " is not the key of"))
      << mismatched.out << mismatched.err;
  RunResult garbled = start("server1.key", "server1.key");
  EXPECT_NE(garbled.exit_code, 0);
  EXPECT_TRUE(
      absl::StrContains(garbled.out + garbled.err, "holds no PEM certificate"))
      << garbled.out << garbled.err;
}

}  // namespace
}  // namespace rapport
