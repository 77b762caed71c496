// A Rapport server binary started by a test on a free loopback port.
//
//   ServerProcess scoring(BinaryDir() + "/services/scoring/rapport-scoring");
//   RunResult r = Run({ctl, "scoring", "rfm", ..., "--addr", scoring.addr()});
//
// It listens on 127.0.0.1:0 and reports the port through --port_file (and
// its metrics endpoint's through --metrics_port_file),
// verifies tokens with the test deployment's keys (TestAuth, --jwks_file);
// its log is kept for failure messages, and it dies with the test (see
// Process).
#ifndef RAPPORT_TESTS_SUPPORT_SERVER_H_
#define RAPPORT_TESTS_SUPPORT_SERVER_H_

#include <string>
#include <vector>

#include "tests/support/process.h"

namespace rapport::testing {

class ServerProcess {
 public:
  // Starts `binary` with `args` after the listen and port-file flags, and waits
  // (up to 20 s) until it reports its port; a test expectation fails otherwise.
  explicit ServerProcess(const std::string& binary, const Env& env = {},
                         const std::vector<std::string>& args = {});

  std::string addr() const { return "127.0.0.1:" + port_; }
  // host:port of its Prometheus metrics endpoint (HTTP).
  std::string metrics_addr() const { return "127.0.0.1:" + metrics_port_; }
  std::string log() const { return ReadFile(dir_.File("log")); }
  Process& process() { return process_; }
  // A scratch directory that lives as long as the server.
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::string port_;
  std::string metrics_port_;
  Process process_;
};

// The path of rapportctl in the build tree.
std::string CtlPath();

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_SERVER_H_
