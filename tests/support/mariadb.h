// The MariaDB that integration and end-to-end tests talk to: real, never a
// mock.
//
// Shared() is the server tests/run started (its URI prefix comes in
// RAPPORT_TEST_MYSQL); run alone, a test binary starts a private one for
// itself. Each test takes a fresh database from CreateDatabase().
// StartPrivate() gives a server of the test's own that it may stop, kill and
// start again, for outage tests; it is durable (innodb_flush_log_at_trx_commit
// = 1), as deployments are, so what it acknowledged survives a kill.
//
//   std::string uri = TestMariaDb::Shared().CreateDatabase();
//   auto pool = MysqlPool::Create(*MysqlOptions::FromUri(uri));
#ifndef RAPPORT_TESTS_SUPPORT_MARIADB_H_
#define RAPPORT_TESTS_SUPPORT_MARIADB_H_

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace rapport::testing {

class TestMariaDb {
 public:
  static TestMariaDb& Shared();
  // `tls_dir` (ca.crt, server.crt, server.key): the server offers TLS too.
  static std::unique_ptr<TestMariaDb> StartPrivate(
      const std::string& tls_dir = "");
  ~TestMariaDb();

  // "mysql://user:password@127.0.0.1:PORT", without a database.
  const std::string& uri_prefix() const { return uri_prefix_; }
  // Creates an empty database and returns its full URI; aborts the test run on
  // failure.
  std::string CreateDatabase();

  // Only for private servers: stop (gracefully), kill (SIGKILL, as a crash
  // would) and start again on the same port and data.
  void Stop();
  void Kill();
  void Start();
  // Only for private servers: SIGSTOP, as a server whose disk or host hangs
  // (it accepts connections and answers nothing), and SIGCONT.
  void Pause();
  void Resume();

 private:
  TestMariaDb() = default;
  void Signal(const std::string& name);
  std::unique_ptr<TempDir>
      dir_;  // null for a server this process did not start
  std::string port_;
  std::string uri_prefix_;
  std::string tls_dir_;
};

// Where the source tree and the build tree are (set by CMake).
std::string SourceDir();
std::string BinaryDir();

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_MARIADB_H_
