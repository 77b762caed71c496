// The real rapport-customer binary over real gRPC, driven through rapportctl,
// on a real MariaDB.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/mysql/mysql_options.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tests/support/mariadb.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/raw_call.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

using testing::BinaryDir;
using testing::CsvId;
using testing::Process;
using testing::Run;
using testing::RunResult;
using testing::TempDir;
using testing::TestMariaDb;

// One rapport-customer (no scoring service) on a database, driven through
// rapportctl.
class CustomerServer : public testing::Platform {
 public:
  explicit CustomerServer(const std::string& mysql_uri)
      : Platform({.scoring = false, .customer_database = mysql_uri}) {}
  std::string log() const { return logs(); }
  Process& process() { return customer().process(); }
};

TEST(CustomerE2E, CreateRecordTwoPurchasesAndListThem) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();

  RunResult created = server.Ctl(
      {"customers", "create", "--display-name", "Ada Lovelace", "--email",
       "ada@example.com", "--external-id", "crm:42", "--output", "csv"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string id = CsvId(created.out);
  ASSERT_EQ(id.size(), 26u) << created.out;

  RunResult p1 =
      server.Ctl({"purchases", "record", "--customer", id, "--amount", "19.99",
                  "--time", "2024-03-01T12:00:00Z", "--request-id", "order-1"});
  ASSERT_EQ(p1.exit_code, 0) << p1.err;
  RunResult p2 = server.Ctl(
      {"purchases", "record", "--customer", id, "--amount", "-5.5", "--time",
       "2024-03-02T13:00:00.5+01:00", "--description", "refund"});
  ASSERT_EQ(p2.exit_code, 0) << p2.err;

  RunResult listed =
      server.Ctl({"purchases", "list", "--customer", id, "--output", "csv"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> rows =
      absl::StrSplit(listed.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 3u) << listed.out;
  EXPECT_EQ(rows[0],
            "id,customer_id,purchase_time,amount,currency,description");
  EXPECT_NE(rows[1].find(",2024-03-01T12:00:00Z,19.99,USD,"), std::string::npos)
      << rows[1];
  EXPECT_NE(rows[2].find(",2024-03-02T12:00:00.500Z,-5.50,USD,refund"),
            std::string::npos)
      << rows[2];

  // The table view names the customer for people.
  RunResult got = server.Ctl({"customers", "get", id});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("Ada Lovelace"), std::string::npos);
  EXPECT_NE(got.out.find("crm:42"), std::string::npos);
}

// GetCustomer and RecordPurchase wait in a queue with their requests: one
// padded (with unknown fields) past what any valid request holds is refused
// at once, naming the request, while the same call unpadded is served.
TEST(CustomerE2E, AnOversizedCallWaitsInNoQueue) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  const std::string id =
      CsvId(server
                .Ctl({"customers", "create", "--display-name", "Eve",
                      "--output", "csv"})
                .out);
  const std::string bearer =
      "Bearer " + testing::TestAuth::Get().Token("writer", "user:test");
  const std::string service = "/rapport.customer.v1.CustomerService/";
  customer::v1::GetCustomerRequest get;
  get.set_id(id);
  customer::v1::RecordPurchaseRequest record;
  record.set_customer_id(id);
  record.mutable_purchase()->mutable_amount()->set_currency_code("USD");
  record.mutable_purchase()->mutable_amount()->set_units(5);
  record.mutable_purchase()->mutable_purchase_time()->set_seconds(1709294400);
  for (auto [method, request] :
       {std::pair<std::string, google::protobuf::Message*>{"GetCustomer", &get},
        {"RecordPurchase", &record}}) {
    grpc::Status plain =
        testing::CallRaw(server.customer().addr(), service + method, bearer,
                         request->SerializeAsString());
    EXPECT_TRUE(plain.ok()) << method << ": " << plain.error_message();
    request->GetReflection()->MutableUnknownFields(request)->AddLengthDelimited(
        999, std::string(200 << 10, 'p'));
    grpc::Status padded =
        testing::CallRaw(server.customer().addr(), service + method, bearer,
                         request->SerializeAsString());
    EXPECT_EQ(padded.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method;
    EXPECT_NE(padded.error_message().find("request: is "), std::string::npos)
        << padded.error_message();
  }
}

// A request that protobuf cannot decode (a text field that is not valid
// UTF-8, as only a hand-built message carries) is the caller's mistake:
// INVALID_ARGUMENT naming the request, not INTERNAL.
TEST(CustomerE2E, AnUndecodableRequestIsInvalidArgument) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  const std::string bearer =
      "Bearer " + testing::TestAuth::Get().Token("reader", "user:test");
  const std::string service = "/rapport.customer.v1.CustomerService/";
  const std::string get = service + "GetCustomer";
  // Field 1 (id), length-delimited, two bytes that are no UTF-8. GetCustomer
  // has a callback handler, GetCustomerValue a synchronous one: gRPC fails
  // the two differently.
  const std::string not_utf8("\x0a\x02\xff\xfe", 4);
  for (const std::string& method : {get, service + "GetCustomerValue"}) {
    grpc::Status bad =
        testing::CallRaw(server.customer().addr(), method, bearer, not_utf8);
    EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << bad.error_message();
    EXPECT_NE(bad.error_message().find("request: cannot be decoded"),
              std::string::npos)
        << method << ": " << bad.error_message();
  }
  // Two valid bytes in their place: decoded, and then refused as an id.
  grpc::Status valid = testing::CallRaw(server.customer().addr(), get, bearer,
                                        std::string("\x0a\x02no", 4));
  EXPECT_EQ(valid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(valid.error_message().find("is not a customer id"),
            std::string::npos)
      << valid.error_message();
}

// Import streams opened and left idle by one writer hold a serving thread
// each: past --max_streams_per_caller (16 of the 64 threads) one more is
// refused at once, and other callers' calls go on meanwhile.
TEST(CustomerE2E, IdleImportStreamsOfOneCallerLeaveThreadsToOthers) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  // The import calls the server has answered with `code`, from its metrics.
  const auto answered = [&](absl::string_view code) {
    return testing::SumOf(
        testing::FetchMetrics(server.customer().metrics_addr()),
        "grpc_server_handled_total",
        {"grpc_method=\"ImportPurchases\"",
         absl::StrCat("grpc_code=\"", code, "\"")});
  };
  const testing::TestAuth& keys = testing::TestAuth::Get();
  auto stub = customer::v1::CustomerService::NewStub(grpc::CreateChannel(
      server.customer().addr(), grpc::InsecureChannelCredentials()));
  struct Open {
    grpc::ClientContext call;
    customer::v1::ImportPurchasesResponse response;
    std::unique_ptr<grpc::ClientWriter<customer::v1::ImportPurchasesRequest>>
        stream;
  };
  std::vector<std::unique_ptr<Open>> held;
  for (int i = 0; i < 17; ++i) {
    auto o = std::make_unique<Open>();
    o->call.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    o->call.AddMetadata("authorization",
                        "Bearer " + keys.Token("writer", "user:flood"));
    o->stream = stub->ImportPurchases(&o->call, &o->response);
    held.push_back(std::move(o));
  }
  for (int i = 0; i < 300 && answered("ResourceExhausted") < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(answered("ResourceExhausted"), 1);
  // Another caller is served while the 16 others are held.
  RunResult listed = server.Ctl({"customers", "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  // One stream was refused, saying why; the others, ended with no message,
  // were served (and refused for want of an import id).
  int refused = 0;
  int served = 0;
  for (auto& o : held) {
    o->stream->WritesDone();
    const grpc::Status s = o->stream->Finish();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      EXPECT_NE(s.error_message().find("max_streams_per_caller"),
                std::string::npos)
          << s.error_message();
    } else if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      ++served;
    }
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(served, 16);
}

TEST(CustomerE2E,
     RetriedPurchaseIsStoredOnceAndReusedIdWithOtherContentIsRefused) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  const std::string id =
      CsvId(server
                .Ctl({"customers", "create", "--display-name", "Bob",
                      "--output", "csv"})
                .out);
  std::vector<std::string> record = {
      "purchases",    "record", "--customer", id,
      "--amount",     "10",     "--time",     "2024-01-01T00:00:00Z",
      "--request-id", "r-1",    "--output",   "csv"};
  RunResult first = server.Ctl(record);
  RunResult again = server.Ctl(record);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(CsvId(first.out), CsvId(again.out));
  // Without --time, "now" would differ between a call and its retry: a
  // request id needs the time given.
  RunResult untimed =
      server.Ctl({"purchases", "record", "--customer", id, "--amount", "10",
                  "--request-id", "r-untimed"});
  EXPECT_EQ(untimed.exit_code, 2) << untimed.err;
  EXPECT_NE(untimed.err.find("--time: is required with --request-id"),
            std::string::npos)
      << untimed.err;

  record[5] = "11";
  RunResult other = server.Ctl(record);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("INVALID_ARGUMENT: request_id"), std::string::npos)
      << other.err;

  RunResult listed =
      server.Ctl({"purchases", "list", "--customer", id, "--output", "csv"});
  EXPECT_EQ(std::vector<std::string>(
                absl::StrSplit(listed.out, '\n', absl::SkipEmpty()))
                .size(),
            2u)
      << listed.out;
}

TEST(CustomerE2E, BadInputIsInvalidArgumentNamingTheField) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  RunResult no_name =
      server.Ctl({"customers", "create", "--email", "x@example.com"});
  EXPECT_EQ(no_name.exit_code, 1);
  EXPECT_NE(
      no_name.err.find("INVALID_ARGUMENT: customer.display_name: is required"),
      std::string::npos)
      << no_name.err;
  RunResult bad_phone = server.Ctl(
      {"customers", "create", "--display-name", "x", "--phone", "12"});
  EXPECT_EQ(bad_phone.exit_code, 1);
  EXPECT_NE(bad_phone.err.find("INVALID_ARGUMENT: customer.phone"),
            std::string::npos)
      << bad_phone.err;
  RunResult unknown =
      server.Ctl({"customers", "get", "01jd8x4r2c6n7m9p0q1r2s3t4v"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("NOT_FOUND"), std::string::npos) << unknown.err;
  // Nothing was written by the refused calls.
  RunResult listed = server.Ctl({"customers", "list", "--output", "csv"});
  EXPECT_EQ(listed.out,
            "id,display_name,email,phone,external_ids,create_time,etag,segment,"
            "value,tier\n");
  // A bad flag value is a usage error before any call.
  RunResult usage =
      server.Ctl({"purchases", "record", "--customer", "x", "--amount", "1e5"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--amount"), std::string::npos) << usage.err;
  // A value past 100 is refused, not wrapped round to a filter of 0.
  RunResult past =
      server.Ctl({"customers", "list", "--min-value", "42949672.96"});
  EXPECT_EQ(past.exit_code, 2);
  EXPECT_NE(past.err.find("--min-value"), std::string::npos) << past.err;
  // Flags that are fine alone but not together, or numbers past their
  // type, are named as flags before any call.
  RunResult crossed = server.Ctl(
      {"customers", "list", "--min-value", "50", "--max-value", "10"});
  EXPECT_EQ(crossed.exit_code, 2);
  EXPECT_NE(crossed.err.find("--max-value: is below --min-value"),
            std::string::npos)
      << crossed.err;
  RunResult huge = server.Ctl(
      {"customers", "refresh-scores", "--window-days", "2147483648"});
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_NE(huge.err.find("--window-days: 2147483648 is out of range"),
            std::string::npos)
      << huge.err;
  RunResult zero =
      server.Ctl({"customers", "refresh-scores", "--window-days", "0"});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("leave it out for no window"), std::string::npos)
      << zero.err;
  // A directory given for a file is named as one.
  RunResult directory =
      server.Ctl({"customers", "import", "purchases", ::testing::TempDir()});
  EXPECT_NE(directory.exit_code, 0);
  EXPECT_NE(directory.err.find("is a directory, not a CSV file"),
            std::string::npos)
      << directory.err;
  // So are a file in UTF-16, one whose lines end in CR alone, and one that
  // cannot be opened, each with what is wrong rather than a missing column.
  for (const auto& [name, bytes, says] :
       {std::tuple<std::string, std::string, std::string>{
            "utf16.csv",
            std::string("\xff\xfe"
                        "c\0u\0s\0t\0\n\0",
                        12),
            "the file is UTF-16; save it as UTF-8"},
        {"cr.csv", "customer_ref,timestamp,amount\rc1,2024-01-01T00:00:00Z,1\r",
         "the lines end in a carriage return alone"}}) {
    RunResult odd = server.Ctl(
        {"customers", "import", "purchases", server.File(name, bytes)});
    EXPECT_NE(odd.exit_code, 0) << name;
    EXPECT_NE(odd.err.find(says), std::string::npos) << odd.err;
  }
  RunResult unreadable = server.Ctl(
      {"customers", "import", "purchases", "/nonexistent/purchases.csv"});
  EXPECT_NE(unreadable.err.find("cannot open the file (No such file"),
            std::string::npos)
      << unreadable.err;
  for (const char* counterpart : {"partners", "community"}) {
    RunResult nobody =
        server.Ctl({counterpart, "identify", "--display-name", "X"});
    EXPECT_EQ(nobody.exit_code, 2) << counterpart;
    EXPECT_NE(
        nobody.err.find("give --external-id SOURCE:ID or --contact-email"),
        std::string::npos)
        << nobody.err;
  }
}

TEST(CustomerE2E, LostDatabaseGivesUnavailableAndTheServiceRecoversByItself) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  CustomerServer server(db->CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  const std::string id =
      CsvId(server
                .Ctl({"customers", "create", "--display-name", "Ada",
                      "--output", "csv"})
                .out);
  ASSERT_FALSE(id.empty());

  db->Stop();
  RunResult down = server.Ctl({"customers", "get", id, "--timeout", "10s"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("UNAVAILABLE"), std::string::npos) << down.err;
  RunResult health = server.Ctl({"health"});
  for (int i = 0; i < 50 && health.exit_code != 3; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    health = server.Ctl({"health"});
  }
  EXPECT_EQ(health.exit_code, 3) << health.out << health.err;
  EXPECT_EQ(health.out, "NOT_SERVING\n");
  // Its service's name follows the database too; liveness does not (a probe
  // that restarted the process now would gain nothing).
  RunResult service = server.Ctl(
      {"health", "--service", "rapport.customer.v1.CustomerService"});
  EXPECT_EQ(service.exit_code, 3) << service.out << service.err;
  RunResult live = server.Ctl({"health", "--service", "liveness"});
  EXPECT_EQ(live.exit_code, 0) << live.out << live.err;
  EXPECT_EQ(live.out, "SERVING\n");
  // A name it does not know is the caller's mistake (2), not "nothing
  // answers" (1), and said at once, not at the end of a wait (which would
  // outlast the test's time limit).
  RunResult bogus =
      server.Ctl({"health", "--service", "rapport.customer.v1.CustomerServce",
                  "--wait", "1h"});
  EXPECT_EQ(bogus.exit_code, 2) << bogus.out << bogus.err;
  RunResult once =
      server.Ctl({"health", "--service", "rapport.customer.v1.CustomerServce"});
  EXPECT_EQ(once.exit_code, 2) << once.out << once.err;
  EXPECT_NE(bogus.err.find("knows no service named "
                           "\"rapport.customer.v1.CustomerServce\""),
            std::string::npos)
      << bogus.err;

  db->Start();
  RunResult back = server.Ctl({"health", "--wait", "20s"});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
  RunResult got = server.Ctl({"customers", "get", id});
  EXPECT_EQ(got.exit_code, 0) << got.err;

  // A database that hangs (it takes connections and answers nothing) is lost
  // too: once the health check has found it out, calls are UNAVAILABLE at
  // once, where each would wait for the database's 30 s I/O timeout.
  db->Pause();
  health = server.Ctl({"health"});
  for (int i = 0; i < 100 && health.exit_code != 3; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    health = server.Ctl({"health"});
  }
  RunResult hung = server.Ctl({"customers", "get", id, "--timeout", "10s"});
  live = server.Ctl({"health", "--service", "liveness"});
  db->Resume();
  EXPECT_EQ(live.exit_code, 0) << live.out << live.err;
  EXPECT_EQ(health.exit_code, 3) << health.out << health.err;
  EXPECT_EQ(hung.exit_code, 1);
  EXPECT_NE(hung.err.find("UNAVAILABLE"), std::string::npos) << hung.err;
  back = server.Ctl({"health", "--wait", "20s"});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
  got = server.Ctl({"customers", "get", id});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_TRUE(server.process().running());  // never restarted

  // Stopped while its health probe waits on a hung database: health says
  // NOT_SERVING (or the port is closed) at once, not once the probe gives up.
  // Asserted by order, not time: health stopped saying SERVING before any
  // probe found the database lost (a probe gives up after 3 s).
  db->Pause();
  absl::SleepFor(absl::Milliseconds(1200));  // a probe is waiting on it
  const size_t logged_before_stop = server.log().size();
  ASSERT_EQ(kill(server.process().pid(), SIGTERM), 0);
  RunResult stopping = server.Ctl({"health", "--timeout", "1s"});
  for (int i = 0; i < 100 && stopping.exit_code == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    stopping = server.Ctl({"health", "--timeout", "1s"});
  }
  const std::string since_stop = server.log().substr(logged_before_stop);
  db->Resume();
  EXPECT_NE(stopping.exit_code, 0) << stopping.out;
  EXPECT_NE(stopping.out, "SERVING\n");
  // The waiting probe gives up 3 s after the pause and may say so while the
  // server stops; it must not have said so first.
  const size_t shutting_down = since_stop.find("\"msg\":\"shutting down\"");
  const size_t not_ready = since_stop.find("\"msg\":\"not ready\"");
  EXPECT_NE(shutting_down, std::string::npos) << since_stop;
  EXPECT_TRUE(not_ready == std::string::npos || not_ready > shutting_down)
      << since_stop;
  EXPECT_EQ(server.process().Stop(absl::Seconds(30)), 0);
}

// The database password and the suppression salt may come from files (a
// mounted Secret), so that neither is in the process's environment.
TEST(CustomerE2E, SecretsComeFromFilesToo) {
  absl::StatusOr<MysqlOptions> db =
      MysqlOptions::FromUri(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_FALSE(db->password.empty());
  TempDir secrets;
  testing::WriteFile(secrets.File("password"), db->password + "\n");
  testing::WriteFile(secrets.File("salt"), "a salt of the deployment\n");
  testing::ServerProcess server(
      BinaryDir() + "/services/customer/rapport-customer",
      {{"RAPPORT_JWKS_FILE", testing::TestAuth::Get().jwks_file()},
       {"RAPPORT_SERVICE_KEY_FILE",
        testing::TestAuth::Get().service_key_file()},
       {"RAPPORT_MYSQL_URI", absl::StrCat("mysql://", db->user, "@", db->host,
                                          ":", db->port, "/", db->database)},
       {"RAPPORT_MYSQL_PASSWORD_FILE", secrets.File("password")},
       {"RAPPORT_SUPPRESSION_SALT_FILE", secrets.File("salt")}});
  RunResult health = testing::Run(
      {testing::CtlPath(), "health", "--addr", server.addr(), "--wait", "20s"});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err << server.log();
  EXPECT_EQ(health.out, "SERVING\n");
}

TEST(CustomerE2E, SigtermShutsDownGracefullyWithExitZero) {
  CustomerServer server(TestMariaDb::Shared().CreateDatabase());
  ASSERT_EQ(server.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << server.log();
  EXPECT_EQ(server.process().Stop(absl::Seconds(10)), 0);
  EXPECT_NE(server.log().find("\"msg\":\"stopped\""), std::string::npos)
      << server.log();
}

// --help lists each service's flags, those it shares with the others and its
// own, and none of Abseil's (--helpfull has those); help asked for ends with
// exit status 0.
TEST(CustomerE2E, EveryServiceListsItsFlagsOnHelp) {
  const std::vector<std::pair<std::string, std::string>> services = {
      {"customer/rapport-customer", "--suppression_salt"},
      {"partner/rapport-partner", "--deal_protection_days"},
      {"financial_community/rapport-financial-community",
       "--tier_management_time"},
      {"scoring/rapport-scoring", "--max_population_calls"}};
  for (const auto& [binary, own] : services) {
    const RunResult r =
        testing::Run({BinaryDir() + "/services/" + binary, "--help"});
    EXPECT_EQ(r.exit_code, 0) << binary << " --help:\n" << r.err;
    for (const std::string& flag :
         {std::string("--listen"), std::string("--jwks_file"),
          std::string("--metrics_listen"), own}) {
      EXPECT_NE(r.out.find(flag + " "), std::string::npos)
          << binary << " --help lacks " << flag << ":\n"
          << r.out;
    }
    EXPECT_EQ(r.out.find("--flagfile"), std::string::npos) << binary;
    EXPECT_NE(r.out.find("RAPPORT_<FLAG>"), std::string::npos) << r.out;
    // The short forms list the flags of the service's own directory, not
    // those of common/.
    for (const char* short_form : {"--helpshort", "--helppackage"}) {
      const RunResult s =
          testing::Run({BinaryDir() + "/services/" + binary, short_form});
      EXPECT_EQ(s.exit_code, 0) << binary << " " << short_form;
      EXPECT_NE(s.out.find(own + " "), std::string::npos)
          << binary << " " << short_form << ":\n"
          << s.out;
      EXPECT_EQ(s.out.find("--listen "), std::string::npos)
          << binary << " " << short_form << ":\n"
          << s.out;
    }
  }
}

TEST(CustomerE2E, BadConfigurationExitsNonZeroNamingTheSetting) {
  // Exit status 1: refused at start-up, not a crash or an abort.
  const std::string binary =
      BinaryDir() + "/services/customer/rapport-customer";
  RunResult r = testing::Run({binary, "--listen=nonsense"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("listen"), std::string::npos) << r.err;
  // Serving other machines in plaintext (tokens in the clear) is refused,
  // unless asked for.
  RunResult open = testing::Run({binary, "--listen=0.0.0.0:0"});
  EXPECT_EQ(open.exit_code, 1);
  EXPECT_NE(open.err.find("listen: 0.0.0.0:0 is reached from other machines"),
            std::string::npos)
      << open.err;
  RunResult allowed =
      testing::Run({binary, "--listen=0.0.0.0:0", "--allow_plaintext"});
  EXPECT_EQ(allowed.exit_code, 1);
  EXPECT_EQ(allowed.err.find("listen"), std::string::npos) << allowed.err;
  EXPECT_NE(allowed.err.find("jwks_file"), std::string::npos) << allowed.err;
  // Every call is authenticated: no keys, no service.
  RunResult keys = testing::Run({binary});
  EXPECT_EQ(keys.exit_code, 1);
  EXPECT_NE(keys.err.find("jwks_file"), std::string::npos) << keys.err;
  RunResult bad_keys = testing::Run({binary, "--jwks_file=/nonexistent"});
  EXPECT_EQ(bad_keys.exit_code, 1);
  EXPECT_NE(bad_keys.err.find("jwks_file"), std::string::npos) << bad_keys.err;
  const testing::Env auth = {
      {"RAPPORT_JWKS_FILE", testing::TestAuth::Get().jwks_file()},
      {"RAPPORT_SERVICE_KEY_FILE",
       testing::TestAuth::Get().service_key_file()}};
  testing::Env env = auth;
  env["RAPPORT_MYSQL_URI"] = "postgres://x/y";
  RunResult uri = testing::Run({binary}, env);
  EXPECT_EQ(uri.exit_code, 1);
  EXPECT_NE(uri.err.find("mysql_uri"), std::string::npos) << uri.err;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  env["RAPPORT_SERVICE_KEY_FILE"] = "";
  RunResult service_key = testing::Run({binary}, env);
  EXPECT_EQ(service_key.exit_code, 1);
  EXPECT_NE(service_key.err.find("service_key_file"), std::string::npos)
      << service_key.err;
  // Secrets from files: one that cannot be read, or holds nothing, is said
  // so.
  env = auth;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  env["RAPPORT_MYSQL_PASSWORD_FILE"] = "/nonexistent/password";
  RunResult password = testing::Run({binary}, env);
  EXPECT_EQ(password.exit_code, 1);
  EXPECT_NE(password.err.find(
                "mysql_password_file: cannot read /nonexistent/password"),
            std::string::npos)
      << password.err;
  env["RAPPORT_MYSQL_PASSWORD_FILE"] = "/tmp";
  RunResult directory = testing::Run({binary}, env);
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_NE(directory.err.find("mysql_password_file: /tmp is not a file"),
            std::string::npos)
      << directory.err;
  TempDir secrets;
  testing::WriteFile(secrets.File("password"), "secret\n");
  env["RAPPORT_MYSQL_URI"] = "mysql://u:inline@127.0.0.1:1/db";
  env["RAPPORT_MYSQL_PASSWORD_FILE"] = secrets.File("password");
  RunResult twice = testing::Run({binary}, env);
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("mysql_password_file: --mysql_uri has a password"),
            std::string::npos)
      << twice.err;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  // A secret is short: a file past 64 KiB is no password.
  testing::WriteFile(secrets.File("large"), std::string(64 * 1024 + 1, 'x'));
  env["RAPPORT_MYSQL_PASSWORD_FILE"] = secrets.File("large");
  RunResult large = testing::Run({binary}, env);
  EXPECT_EQ(large.exit_code, 1);
  EXPECT_NE(large.err.find("mysql_password_file: " + secrets.File("large") +
                           " is not a file of at most 64 KiB"),
            std::string::npos)
      << large.err;
  testing::WriteFile(secrets.File("empty"), "\n");
  env.erase("RAPPORT_MYSQL_PASSWORD_FILE");
  env["RAPPORT_SUPPRESSION_SALT_FILE"] = secrets.File("empty");
  RunResult empty_salt = testing::Run({binary}, env);
  EXPECT_EQ(empty_salt.exit_code, 1);
  EXPECT_NE(empty_salt.err.find("suppression_salt_file: "), std::string::npos)
      << empty_salt.err;
  EXPECT_NE(empty_salt.err.find(" is empty"), std::string::npos)
      << empty_salt.err;
  // The database's CA (RAPPORT_MYSQL_SSL_CA) is read before anything
  // connects: one that cannot be read is said so, as is one for a socket.
  env = auth;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  env["RAPPORT_MYSQL_SSL_CA"] = "/nonexistent/ca.crt";
  RunResult ca = testing::Run({binary}, env);
  EXPECT_EQ(ca.exit_code, 1);
  EXPECT_NE(ca.err.find("mysql_ssl_ca: cannot read /nonexistent/ca.crt"),
            std::string::npos)
      << ca.err;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@unix(/tmp/no.sock)/db";
  env["RAPPORT_MYSQL_SSL_CA"] = testing::TestAuth::Get().jwks_file();
  RunResult socket_ca = testing::Run({binary}, env);
  EXPECT_EQ(socket_ca.exit_code, 1);
  EXPECT_NE(socket_ca.err.find("mysql_ssl_ca: a database on a unix socket"),
            std::string::npos)
      << socket_ca.err;
  // A bad metrics address is refused before the service waits for its
  // database (which is away here): not after --db_wait, for a database error.
  env = auth;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  env["RAPPORT_SUPPRESSION_SALT"] = "salt";
  env["RAPPORT_DB_WAIT"] = "2s";
  env["RAPPORT_METRICS_LISTEN"] = "9451";
  RunResult metrics = testing::Run({binary}, env);
  EXPECT_EQ(metrics.exit_code, 1);
  EXPECT_NE(metrics.err.find("metrics_listen"), std::string::npos)
      << metrics.err;
  EXPECT_EQ(metrics.err.find("database"), std::string::npos) << metrics.err;
  env = auth;
  env["RAPPORT_MYSQL_URI"] = "mysql://u@127.0.0.1:1/db";
  RunResult salt = testing::Run({binary}, env);
  EXPECT_EQ(salt.exit_code, 1);
  EXPECT_NE(salt.err.find("suppression_salt"), std::string::npos) << salt.err;
}

}  // namespace
}  // namespace rapport
