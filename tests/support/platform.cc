#include "tests/support/platform.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/support/mariadb.h"
#include "tests/support/test_auth.h"

namespace rapport::testing {

Platform::Platform(PlatformOptions options) : options_(std::move(options)) {
  // rapportctl runs with the token CtlEnvAs gives, or none: never one the
  // shell that runs the tests exported.
  ::unsetenv("RAPPORT_TOKEN");
  ::unsetenv("RAPPORT_TOKEN_FILE");
  if (options_.scoring) {
    std::vector<std::string> addresses;
    for (int i = 0; i < options_.scoring_replicas; ++i) {
      scoring_.push_back(std::make_unique<ServerProcess>(
          BinaryDir() + "/services/scoring/rapport-scoring"));
      addresses.push_back(scoring_.back()->addr());
    }
    scoring_addr_ = absl::StrJoin(addresses, ",");
  } else {
    scoring_addr_ = options_.scoring_addr;
  }
  if (options_.customer) {
    customer_database_ = options_.customer_database.empty()
                             ? TestMariaDb::Shared().CreateDatabase()
                             : options_.customer_database;
    for (int i = 0; i < options_.customer_replicas; ++i) {
      customer_.push_back(StartCustomer());
    }
  }
  if (options_.partner) {
    partner_database_ = options_.partner_database.empty()
                            ? TestMariaDb::Shared().CreateDatabase()
                            : options_.partner_database;
    partner_ = StartCounterpart("partner/rapport-partner", "partner",
                                partner_database_);
  }
  if (options_.community) {
    community_ =
        StartCounterpart("financial_community/rapport-financial-community",
                         "financial-community",
                         options_.community_database.empty()
                             ? TestMariaDb::Shared().CreateDatabase()
                             : options_.community_database);
  }
}

std::unique_ptr<ServerProcess> Platform::StartCounterpart(
    const std::string& binary, const std::string& name,
    const std::string& database) {
  return std::make_unique<ServerProcess>(
      BinaryDir() + "/services/" + binary,
      Env{{"RAPPORT_MYSQL_URI", database},
          {"RAPPORT_SCORING_ADDR", scoring_addr_}},
      std::vector<std::string>{
          "--shutdown_grace=5s", "--db_wait=20s",
          "--service_key_file=" + TestAuth::Get().service_key_file(name)});
}

std::unique_ptr<ServerProcess> Platform::StartCustomer() {
  Env env = options_.customer_env;
  env.emplace("RAPPORT_MYSQL_URI", customer_database_);
  env.emplace("RAPPORT_SCORING_ADDR", scoring_addr_);
  std::vector<std::string> args = {
      "--shutdown_grace=5s", "--db_wait=20s", "--suppression_salt=e2e",
      "--service_key_file=" + TestAuth::Get().service_key_file()};
  args.insert(args.end(), options_.customer_args.begin(),
              options_.customer_args.end());
  return std::make_unique<ServerProcess>(
      BinaryDir() + "/services/customer/rapport-customer", env, args);
}

void Platform::RestartCustomer(int replica) {
  customer_[replica].reset();
  customer_[replica] = StartCustomer();
}

Platform::~Platform() = default;

Env Platform::CtlEnv() const {
  return CtlEnvAs(TestAuth::Get().Token("admin", kPlatformAdmin));
}

Env Platform::CtlEnvAs(const std::string& token) const {
  Env env = {{"RAPPORT_SCORING_ADDR", scoring_addr_},
             {"RAPPORT_SIGNING_KEY_FILE", TestAuth::Get().people_key_file()}};
  // No token: an empty file (an empty RAPPORT_TOKEN is refused).
  if (token.empty()) {
    env["RAPPORT_TOKEN_FILE"] = "/dev/null";
  } else {
    env["RAPPORT_TOKEN"] = token;
  }
  if (!customer_.empty()) env["RAPPORT_CUSTOMER_ADDR"] = customer_[0]->addr();
  if (partner_) env["RAPPORT_PARTNER_ADDR"] = partner_->addr();
  if (community_) env["RAPPORT_COMMUNITY_ADDR"] = community_->addr();
  return env;
}

RunResult Platform::Ctl(std::vector<std::string> args,
                        const std::string& input) const {
  args.insert(args.begin(), CtlPath());
  return Run(args, CtlEnv(), input);
}

RunResult Platform::CtlAs(const std::string& role, const std::string& subject,
                          std::vector<std::string> args) const {
  args.insert(args.begin(), CtlPath());
  return Run(args, CtlEnvAs(TestAuth::Get().Token(role, subject)));
}

std::vector<std::vector<std::string>> Platform::CsvCtl(
    std::vector<std::string> args) const {
  args.push_back("--output");
  args.push_back("csv");
  RunResult r = Ctl(args);
  EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.err;
  return CsvRows(r.out);
}

std::string Platform::File(const std::string& name,
                           const std::string& content) const {
  WriteFile(dir_.File(name), content);
  return dir_.File(name);
}

std::string Platform::logs() const {
  std::string out;
  for (size_t i = 0; i < scoring_.size(); ++i) {
    out += "--- scoring " + std::to_string(i) + " ---\n" + scoring_[i]->log();
  }
  for (size_t i = 0; i < customer_.size(); ++i) {
    out += "--- customer " + std::to_string(i) + " ---\n" + customer_[i]->log();
  }
  if (partner_) out += "--- partner ---\n" + partner_->log();
  if (community_) out += "--- financial community ---\n" + community_->log();
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

std::vector<std::vector<std::string>> CsvRows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Lines(out))
    rows.push_back(absl::StrSplit(line, ','));
  return rows;
}

std::string CsvId(const std::string& out) {
  std::vector<std::vector<std::string>> rows = CsvRows(out);
  return rows.size() < 2 ? "" : rows.back()[0];
}

::testing::AssertionResult NotValuedYet(Platform& platform,
                                        const std::string& command,
                                        const std::string& id) {
  const std::pair<std::string, const char*> cases[] = {
      {id, "FAILED_PRECONDITION"}, {"01jd8x4r2c6n7m9p0q1r2s3t4v", "NOT_FOUND"}};
  for (const auto& [asked, code] : cases) {
    const RunResult r = platform.Ctl({command, "value", asked});
    if (r.exit_code != 1 || r.err.find(code) == std::string::npos) {
      return ::testing::AssertionFailure()
             << command << " value " << asked << ": wanted " << code
             << ", got exit " << r.exit_code << ": " << r.err;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RefusesWhatIsNotAnId(Platform& platform,
                                                const std::string& command) {
  const std::string long_id(5000, 'z');
  for (const char* verb : {"value", "refresh-job"}) {
    for (const std::string& asked : {std::string("nope"), long_id}) {
      const RunResult r = platform.Ctl({command, verb, asked});
      if (r.exit_code != 1 ||
          r.err.find("INVALID_ARGUMENT") == std::string::npos ||
          r.err.find("id: is not an id") == std::string::npos ||
          r.err.find("zzzzzzzz") != std::string::npos) {
        return ::testing::AssertionFailure()
               << command << " " << verb << " of " << asked.size()
               << " bytes: wanted INVALID_ARGUMENT, the id not quoted, got "
               << "exit " << r.exit_code << ": " << r.err.substr(0, 400);
      }
    }
  }
  const RunResult r =
      platform.Ctl({command, "refresh-job", "01jd8x4r2c6n7m9p0q1r2s3t4v"});
  if (r.exit_code != 1 || r.err.find("NOT_FOUND") == std::string::npos) {
    return ::testing::AssertionFailure()
           << command << " refresh-job of an unknown job: wanted NOT_FOUND, "
           << "got exit " << r.exit_code << ": " << r.err;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ValueAsExported(Platform& platform,
                                           const std::string& command,
                                           const std::string& id,
                                           const std::string& export_file) {
  const std::vector<std::vector<std::string>> exported =
      CsvRows(ReadFile(export_file));
  const std::vector<std::string>* row = nullptr;
  for (const std::vector<std::string>& r : exported) {
    if (!r.empty() && r[0] == id) row = &r;
  }
  if (exported.empty() || row == nullptr) {
    return ::testing::AssertionFailure() << id << " is not exported";
  }
  const RunResult value =
      platform.Ctl({command, "value", id, "--output", "csv"});
  const std::vector<std::vector<std::string>> got = CsvRows(value.out);
  if (value.exit_code != 0 || got.size() != 2) {
    return ::testing::AssertionFailure()
           << command << " value " << id << ": " << value.err << value.out;
  }
  for (size_t c = 0; c < exported[0].size(); ++c) {
    if (c >= got[1].size() || got[1][c] != (*row)[c]) {
      return ::testing::AssertionFailure()
             << exported[0][c] << ": value says "
             << (c < got[1].size() ? got[1][c] : "nothing") << ", export "
             << (*row)[c];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace rapport::testing
