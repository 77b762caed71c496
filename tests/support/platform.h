// The platform's real binaries, started by an end-to-end test: the scoring
// service, the customer service on a fresh database of the test MariaDB, and
// when asked the partner service on another, each on a free loopback port;
// rapportctl is pointed at them.
//
//   Platform platform;  // scoring and customer
//   RunResult r = platform.Ctl({"customers", "list", "--output", "csv"});
//   std::vector<std::vector<std::string>> rows = CsvRows(r.out);
//
// Every process dies with the test (see Process).
#ifndef RAPPORT_TESTS_SUPPORT_PLATFORM_H_
#define RAPPORT_TESTS_SUPPORT_PLATFORM_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport::testing {

struct PlatformOptions {
  bool scoring = true;
  bool customer = true;
  // The partner and financial-community services, each on a fresh database
  // of its own.
  bool partner = false;
  bool community = false;
  // Replicas of each, on their own ports; the customer replicas share one
  // database, and each balances its calls to scoring over every replica.
  int scoring_replicas = 1;
  int customer_replicas = 1;
  // Flags and environment of the customer service, after the defaults
  // (--shutdown_grace=5s --db_wait=20s --suppression_salt=e2e); a flag given
  // again wins.
  std::vector<std::string> customer_args;
  Env customer_env;
  // The services' databases; default: a fresh one each.
  std::string customer_database;
  std::string partner_database;
  std::string community_database;
  // The scoring address the customer service uses when `scoring` is off.
  std::string scoring_addr = "127.0.0.1:1";
};

class Platform {
 public:
  explicit Platform(PlatformOptions options = {});
  ~Platform();

  // Runs rapportctl with the services' addresses in its environment, as an
  // admin (subject kPlatformAdmin).
  RunResult Ctl(std::vector<std::string> args,
                const std::string& input = "") const;
  // The same with a token of `role` ("reader", "writer", "admin") for
  // `subject`.
  RunResult CtlAs(const std::string& role, const std::string& subject,
                  std::vector<std::string> args) const;
  // Runs a rapportctl command that must succeed (a failed expectation
  // otherwise) with --output csv; its rows, header first.
  std::vector<std::vector<std::string>> CsvCtl(
      std::vector<std::string> args) const;
  // Writes a file into a scratch directory that lives as long as the
  // platform; returns its path.
  std::string File(const std::string& name, const std::string& content) const;
  // The path of a file in that directory.
  std::string Path(const std::string& name) const { return dir_.File(name); }
  // rapportctl's environment: RAPPORT_<SERVICE>_ADDR of each service, an
  // admin token (RAPPORT_TOKEN) and the key that signs people's tokens.
  Env CtlEnv() const;
  // The same with `token`.
  Env CtlEnvAs(const std::string& token) const;

  ServerProcess& scoring(int replica = 0) { return *scoring_[replica]; }
  ServerProcess& partner() { return *partner_; }
  const std::string& partner_database() const { return partner_database_; }
  ServerProcess& community() { return *community_; }
  ServerProcess& customer(int replica = 0) { return *customer_[replica]; }
  // Starts a customer replica again (after a crash) with the same database
  // and flags, on a new port; rapportctl follows it.
  void RestartCustomer(int replica = 0);
  const std::string& customer_database() const { return customer_database_; }
  // The services' logs, for failure messages.
  std::string logs() const;

 private:
  std::unique_ptr<ServerProcess> StartCustomer();
  // A partner or financial-community service (`name`) on `database`.
  std::unique_ptr<ServerProcess> StartCounterpart(const std::string& binary,
                                                  const std::string& name,
                                                  const std::string& database);

  PlatformOptions options_;
  TempDir dir_;
  std::string scoring_addr_;
  std::string customer_database_;
  std::vector<std::unique_ptr<ServerProcess>> scoring_;
  std::vector<std::unique_ptr<ServerProcess>> customer_;
  std::string partner_database_;
  std::unique_ptr<ServerProcess> partner_;
  std::unique_ptr<ServerProcess> community_;
};

// The non-empty lines of `text`.
std::vector<std::string> Lines(const std::string& text);
// Rows of simple CSV output (fields without commas or quotes), header first.
std::vector<std::vector<std::string>> CsvRows(const std::string& out);
// The first field of the last row of `--output csv` output (an id).
std::string CsvId(const std::string& out);

// Whether `rapportctl <command> value` refuses `id` as not valued yet
// (FAILED_PRECONDITION, before any refresh) and an unknown id as NOT_FOUND.
::testing::AssertionResult NotValuedYet(Platform& platform,
                                        const std::string& command,
                                        const std::string& id);

// Whether `rapportctl <command> value` and `refresh-job` refuse what is not
// an id as such (INVALID_ARGUMENT "id: is not an id", without quoting it
// back) and answer NOT_FOUND for a job id nobody made.
::testing::AssertionResult RefusesWhatIsNotAnId(Platform& platform,
                                                const std::string& command);

// Whether `rapportctl <command> value <id>` (as CSV) agrees, column by
// column, with the row of `id` in `export_file` (from `<command> export
// scores`): the stored value one entity reads is the one exported.
::testing::AssertionResult ValueAsExported(Platform& platform,
                                           const std::string& command,
                                           const std::string& id,
                                           const std::string& export_file);

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_PLATFORM_H_
