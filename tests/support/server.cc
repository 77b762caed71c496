#include "tests/support/server.h"

#include <gtest/gtest.h>

#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/mariadb.h"
#include "tests/support/test_auth.h"

namespace rapport::testing {

ServerProcess::ServerProcess(const std::string& binary, const Env& env,
                             const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      binary,
      "--listen=127.0.0.1:0",
      "--port_file=" + dir_.File("port"),
      "--metrics_listen=127.0.0.1:0",
      "--metrics_port_file=" + dir_.File("metrics_port"),
      "--jwks_file=" + TestAuth::Get().jwks_file()};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = Process::Start(argv, env, dir_.File("log"));
  // Up to a minute: a slow machine migrating a fresh database, and a first
  // health probe that may wait 10 s, come before the port file.
  for (int i = 0; i < 1200 && port_.empty() && process_.running(); ++i) {
    port_ =
        std::string(absl::StripAsciiWhitespace(ReadFile(dir_.File("port"))));
    if (port_.empty()) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(port_.empty()) << binary << " did not start:\n" << log();
  // Written before the port file.
  metrics_port_ = std::string(
      absl::StripAsciiWhitespace(ReadFile(dir_.File("metrics_port"))));
}

std::string CtlPath() { return BinaryDir() + "/tools/rapportctl/rapportctl"; }

}  // namespace rapport::testing
