// Bulk imports end to end: `rapportctl customers import purchases|interactions`
// against the real rapport-customer binary over real gRPC, on a real MariaDB.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/mariadb.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

using testing::BinaryDir;
using testing::CsvId;
using testing::Lines;
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
  // A file in the platform's scratch directory.
  std::string Write(const std::string& name, const std::string& content) const {
    return File(name, content);
  }
};

// The number after "NAME: " in the import summary ("accepted: 3").
int64_t Summary(const std::string& out, const std::string& name) {
  const size_t at = out.find(name + ": ");
  if (at == std::string::npos) return -1;
  int64_t n = -1;
  absl::string_view rest = absl::string_view(out).substr(at + name.size() + 2);
  if (!absl::SimpleAtoi(rest.substr(0, rest.find_first_of(" \n")), &n))
    return -1;
  return n;
}

class CustomerImportE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CustomerServer>(
        TestMariaDb::Shared().CreateDatabase());
    ASSERT_EQ(server_->Ctl({"health", "--wait", "20s"}).exit_code, 0)
        << server_->log();
  }

  std::string CreateCustomer(const std::string& name,
                             const std::string& email = "") {
    std::vector<std::string> args = {"customers", "create",   "--display-name",
                                     name,        "--output", "csv"};
    if (!email.empty()) {
      args.push_back("--email");
      args.push_back(email);
    }
    RunResult r = server_->Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return CsvId(r.out);
  }

  // The purchases of a customer as "time amount" strings, oldest first.
  std::vector<std::string> Purchases(const std::string& customer) {
    RunResult r =
        server_->Ctl({"purchases", "list", "--customer", customer, "--all",
                      "--page-size", "1000", "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    std::vector<std::string> lines = Lines(r.out);
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ',');
      out.push_back(absl::StrCat(f[2], " ", f[3]));
    }
    return out;
  }

  // Customer ids in id order.
  std::vector<std::string> CustomerIds() {
    RunResult r =
        server_->Ctl({"customers", "list", "--all", "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    std::vector<std::string> lines = Lines(r.out);
    for (size_t i = 1; i < lines.size(); ++i) {
      ids.push_back(std::vector<std::string>(absl::StrSplit(lines[i], ','))[0]);
    }
    return ids;
  }

  // The customer holding an email, through IdentifyCustomer.
  std::string Identify(const std::string& email) {
    RunResult r = server_->Ctl(
        {"customers", "identify", "--email", email, "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return CsvId(r.out);
  }

  std::unique_ptr<CustomerServer> server_;
};

TEST_F(CustomerImportE2E, GoodAndBadRowsInOneFileAreStoredAndRejectedByLine) {
  const std::string ada = CreateCustomer("Ada");
  // Line 4 is blank (skipped by the reader), so rows after it keep their file
  // lines. The column "shop" is none of the import's: it is named, and
  // ignored.
  const std::string file = server_->Write(
      "p.csv",
      absl::StrCat(
          "customer_ref,timestamp,amount,currency,request_id,shop\n",  // 1
          ada, ",2024-03-01T12:00:00Z,19.99,usd,,\n",          // 2: any case
          ada, ",2024-03-02T12:00:00Z,12;50,,,\n",             // 3
          "\n",                                                // 4
          ada, ",2024-03-03,1,,,\n",                           // 5
          ada, ",2024-03-04T12:00:00Z,5,EUR,,\n",              // 6
          "nobody,2024-03-05T12:00:00Z,5,,,\n",                // 7
          ada, ",2024-03-06T13:00:00+01:00,-5.5,,order-8,\n",  // 8
          ",,,,,\n",                                           // 9
          "  \n"));  // 10: blank as well, as a spreadsheet saves them
  RunResult r = server_->Ctl({"customers", "import", "purchases", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "accepted"), 2) << r.out;
  EXPECT_EQ(Summary(r.out, "rejected"), 4) << r.out;
  EXPECT_EQ(Summary(r.out, "rows"), 6) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.err, file + ":1: ignoring the column shop, which this import does "
                    "not read"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":3: amount: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":5: timestamp: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":6: currency: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":7: customer_ref: ")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, ":2:")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, ":8:")) << r.err;
  EXPECT_EQ(Purchases(ada),
            (std::vector<std::string>{"2024-03-01T12:00:00Z 19.99",
                                      "2024-03-06T12:00:00Z -5.50"}));
}

// A field that is not UTF-8 (a name saved as Latin-1) is that row's reject:
// sent, it would have made the service drop the message holding it, and the
// rows after it, as if the import had ended there.
TEST_F(CustomerImportE2E, AFieldThatIsNotUtf8IsItsRowsRejectAndTheRestGoIn) {
  const std::string ada = CreateCustomer("Ada");
  const std::string file = server_->Write(
      "p.csv", absl::StrCat("customer_ref,timestamp,amount\n",             // 1
                            ada, ",2024-03-01T12:00:00Z,1\n",              // 2
                            "ext:crm:M\xfcller,2024-03-02T12:00:00Z,2\n",  // 3
                            ada, ",2024-03-03T12:00:00Z,3\n"));            // 4
  RunResult r = server_->Ctl({"customers", "import", "purchases", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "accepted"), 2) << r.out;
  EXPECT_EQ(Summary(r.out, "rejected"), 1) << r.out;
  EXPECT_TRUE(
      absl::StrContains(r.err, file + ":3: customer_ref: is not valid UTF-8"))
      << r.err;
  EXPECT_EQ(Purchases(ada),
            (std::vector<std::string>{"2024-03-01T12:00:00Z 1.00",
                                      "2024-03-03T12:00:00Z 3.00"}));
  // Again, for a program: every count, zeros included, and the rejects.
  RunResult again = server_->Ctl(
      {"customers", "import", "purchases", file, "--output", "json"});
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  const nlohmann::json j = nlohmann::json::parse(again.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << again.out;
  EXPECT_TRUE(absl::StartsWith(j.value("import_id", ""), "csv-")) << again.out;
  EXPECT_EQ(j.value("rows", -1), 3) << again.out;
  EXPECT_EQ(j.value("accepted", -1), 0) << again.out;
  EXPECT_EQ(j.value("duplicates", -1), 2) << again.out;
  EXPECT_EQ(j.value("created_customers", -1), 0) << again.out;
  EXPECT_EQ(j.value("rejected_rows", -1), 1) << again.out;
  ASSERT_EQ(j["rejected"].size(), 1u) << again.out;
  EXPECT_EQ(j["rejected"][0].value("row", 0), 3) << again.out;
  EXPECT_EQ(j["rejected"][0].value("field", ""), "customer_ref") << again.out;
}

TEST_F(CustomerImportE2E, RetriedImportStoresNothingTwice) {
  const std::string ada = CreateCustomer("Ada");
  std::string content = "customer_ref,timestamp,amount\n";
  for (int i = 0; i < 120; ++i) {
    absl::StrAppend(&content, ada, ",2024-01-01T00:00:", i % 60 < 10 ? "0" : "",
                    i % 60, "Z,", i, ".5\n");
  }
  const std::string file = server_->Write("p.csv", content);
  RunResult first = server_->Ctl(
      {"customers", "import", "purchases", file, "--batch-rows", "50"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_EQ(Summary(first.out, "accepted"), 120) << first.out;
  EXPECT_TRUE(absl::StrContains(first.out, "import id: csv-")) << first.out;
  // For programs, the same counts as CSV.
  RunResult again = server_->Ctl({"customers", "import", "purchases", file,
                                  "--batch-rows", "7", "--output", "csv"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  const std::vector<std::string> csv = Lines(again.out);
  ASSERT_EQ(csv.size(), 2u) << again.out;
  EXPECT_EQ(csv[0],
            "import_id,rows,accepted,duplicates,created_customers,rejected");
  EXPECT_TRUE(absl::StartsWith(csv[1], "csv-")) << csv[1];
  EXPECT_TRUE(absl::EndsWith(csv[1], ",120,0,120,0,0")) << csv[1];
  EXPECT_EQ(Purchases(ada).size(), 120u);

  // A named import id is its own import; its retry is also a no-op.
  RunResult named = server_->Ctl(
      {"customers", "import", "purchases", file, "--import-id", "n1"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(Summary(named.out, "accepted"), 120) << named.out;
  RunResult named_again = server_->Ctl(
      {"customers", "import", "purchases", file, "--import-id", "n1"});
  EXPECT_EQ(Summary(named_again.out, "duplicates"), 120) << named_again.out;
  EXPECT_EQ(Purchases(ada).size(), 240u);
}

// Rows go out on several calls under the one import id, each customer's rows
// on one call: the counts, the rejects by line and the retry come out as with
// one call, whatever the number of calls.
TEST_F(CustomerImportE2E, ManyCallsStoreAsOneAndRetryWithAnyNumber) {
  std::string content = "customer_ref,timestamp,amount\n";
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&content, "ext:shop:", i % 40, ",2024-01-01T00:00:0",
                    i % 10, "Z,", i % 97 == 5 ? "bad" : absl::StrCat(i), "\n");
  }
  const std::string file = server_->Write("p.csv", content);
  RunResult first = server_->Ctl({"customers", "import", "purchases", file,
                                  "--batch-rows", "9", "--streams", "5"});
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
  EXPECT_EQ(Summary(first.out, "rows"), 300) << first.out;
  EXPECT_EQ(Summary(first.out, "accepted"), 296) << first.out;
  EXPECT_EQ(Summary(first.out, "created customers"), 40) << first.out;
  EXPECT_EQ(Summary(first.out, "rejected"), 4) << first.out;
  // Rows 5, 102, 199 and 296 (file lines 7, 104, 201, 298), listed in order.
  const size_t a = first.err.find(file + ":7: amount: ");
  const size_t b = first.err.find(file + ":104: amount: ");
  const size_t c = first.err.find(file + ":298: amount: ");
  ASSERT_NE(a, std::string::npos) << first.err;
  ASSERT_NE(b, std::string::npos) << first.err;
  ASSERT_NE(c, std::string::npos) << first.err;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  // Each customer the import made names who made it.
  const std::vector<std::string> made = CustomerIds();
  ASSERT_EQ(made.size(), 40u);
  RunResult got =
      server_->Ctl({"customers", "get", made[0], "--output", "json"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_TRUE(absl::StrContains(
      got.out,
      absl::StrCat("\"created_by\": \"", testing::kPlatformAdmin, "\"")))
      << got.out;
  RunResult again = server_->Ctl(
      {"customers", "import", "purchases", file, "--streams", "1"});
  EXPECT_EQ(Summary(again.out, "accepted"), 0) << again.out;
  EXPECT_EQ(Summary(again.out, "duplicates"), 296) << again.out;
  EXPECT_EQ(Summary(again.out, "created customers"), 0) << again.out;
  RunResult bad = server_->Ctl(
      {"customers", "import", "purchases", file, "--streams", "0"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.err, "--streams")) << bad.err;
}

TEST_F(CustomerImportE2E,
       IdentityRefsCreateEachCustomerOnceAndMergedIdsResolve) {
  const std::string known = CreateCustomer("Known", "known@example.com");
  const std::string primary = CreateCustomer("Primary");
  const std::string duplicate = CreateCustomer("Duplicate");
  RunResult merged = server_->Ctl({"customers", "merge", primary, duplicate});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  const std::string file = server_->Write(
      "p.csv", absl::StrCat("customer_ref,timestamp,amount\n",
                            "email:new@example.com,2024-01-01T00:00:00Z,1\n",
                            "email:NEW@example.com,2024-01-02T00:00:00Z,2\n",
                            "ext:crm:42,2024-01-03T00:00:00Z,3\n",
                            "email:known@example.com,2024-01-04T00:00:00Z,4\n",
                            "ext:crm:42,2024-01-05T00:00:00Z,5\n", duplicate,
                            ",2024-01-06T00:00:00Z,6\n"));
  RunResult r = server_->Ctl(
      {"customers", "import", "purchases", file, "--batch-rows", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "accepted"), 6) << r.out;
  EXPECT_EQ(Summary(r.out, "created customers"), 2) << r.out;
  const std::string created = Identify("new@example.com");
  ASSERT_EQ(created.size(), 26u);
  EXPECT_EQ(Purchases(created),
            (std::vector<std::string>{"2024-01-01T00:00:00Z 1.00",
                                      "2024-01-02T00:00:00Z 2.00"}));
  EXPECT_EQ(Purchases(known),
            (std::vector<std::string>{"2024-01-04T00:00:00Z 4.00"}));
  EXPECT_EQ(Purchases(primary),
            (std::vector<std::string>{"2024-01-06T00:00:00Z 6.00"}));

  // Importing more rows for the same identities creates nobody new.
  const std::string more = server_->Write(
      "more.csv",
      "customer_ref,timestamp,amount\next:crm:42,2024-02-01T00:00:00Z,7\n"
      "email:new@example.com,2024-02-02T00:00:00Z,8\n");
  RunResult again = server_->Ctl({"customers", "import", "purchases", more});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Summary(again.out, "created customers"), 0) << again.out;
  EXPECT_EQ(Purchases(created).size(), 3u);
}

TEST_F(CustomerImportE2E,
       ConcurrentImportsOfOneFileStoreEveryRowAndCustomerOnce) {
  std::string content = "customer_ref,timestamp,amount\n";
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&content, "email:c", i % 5,
                    "@example.com,2024-01-01T00:00:00Z,", i, "\n");
  }
  const std::string file = server_->Write("p.csv", content);
  RunResult a, b;
  std::thread ta([&] {
    a = server_->Ctl(
        {"customers", "import", "purchases", file, "--batch-rows", "20"});
  });
  std::thread tb([&] {
    b = server_->Ctl(
        {"customers", "import", "purchases", file, "--batch-rows", "20"});
  });
  ta.join();
  tb.join();
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_EQ(Summary(a.out, "accepted") + Summary(b.out, "accepted"), 300)
      << a.out << b.out;
  EXPECT_EQ(Summary(a.out, "duplicates") + Summary(b.out, "duplicates"), 300)
      << a.out << b.out;
  EXPECT_EQ(
      Summary(a.out, "created customers") + Summary(b.out, "created customers"),
      5)
      << a.out << b.out;
  EXPECT_EQ(CustomerIds().size(), 5u);
  size_t stored = 0;
  for (const std::string& id : CustomerIds()) stored += Purchases(id).size();
  EXPECT_EQ(stored, 300u);
}

// A row's key is its line less the line breaks inside the rows before it, so
// that fixing a row split over two lines (joining them) moves no other row's
// key; rejects still name the line the row starts on.
TEST_F(CustomerImportE2E, JoiningARowSplitOverLinesMovesNoOtherRow) {
  const std::string ada = CreateCustomer("Ada");
  const std::string header = "customer_ref,timestamp,channel,cost,kind,note\n";
  const std::string split = server_->Write(
      "split.csv",
      absl::StrCat(header,  // 1
                   ada,
                   ",2024-03-01T12:00:00Z,fax,0.25,,\"two\nlines\"\n",  // 2-3
                   ada, ",2024-03-02T12:00:00Z,email,1,,\n",            // 4
                   ada, ",2024-03-03T12:00:00Z,telex,2,,\n"));          // 5
  RunResult first =
      server_->Ctl({"customers", "import", "interactions", split});
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
  EXPECT_EQ(Summary(first.out, "accepted"), 1) << first.out;
  EXPECT_TRUE(absl::StrContains(first.err, split + ":2: channel: "))
      << first.err;
  EXPECT_TRUE(absl::StrContains(first.err, split + ":5: channel: "))
      << first.err;
  const std::string marker = "import id: ";
  const size_t at = first.out.find(marker);
  ASSERT_NE(at, std::string::npos) << first.out;
  const std::string import_id = first.out.substr(
      at + marker.size(), first.out.find('\n', at) - at - marker.size());

  const std::string fixed = server_->Write(
      "fixed.csv",
      absl::StrCat(header,                                                // 1
                   ada, ",2024-03-01T12:00:00Z,email,0.25,,two lines\n",  // 2
                   ada, ",2024-03-02T12:00:00Z,email,1,,\n",              // 3
                   ada, ",2024-03-03T12:00:00Z,phone,2,,\n"));            // 4
  RunResult again = server_->Ctl(
      {"customers", "import", "interactions", fixed, "--import-id", import_id});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(Summary(again.out, "accepted"), 2) << again.out;
  EXPECT_EQ(Summary(again.out, "duplicates"), 1) << again.out;
  RunResult listed = server_->Ctl({"customers", "interactions", "list",
                                   "--customer", ada, "--output", "csv"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(Lines(listed.out).size(), 4u) << listed.out;  // header + 3
}

// A header's names match whatever their case and the spaces around them
// (an optional column left unmatched would be dropped); a column named twice
// is refused before anything is sent.
TEST_F(CustomerImportE2E, HeaderNamesMatchWhateverTheirCaseAndSpaces) {
  const std::string ada = CreateCustomer("Ada");
  const std::string file = server_->Write(
      "h.csv", absl::StrCat("Customer_Ref, Timestamp ,AMOUNT, Request_ID\n",
                            ada, ",2024-03-01T12:00:00Z,5,order-1\n", ada,
                            ",2024-03-02T12:00:00Z,6,order-1\n"));
  RunResult r = server_->Ctl({"customers", "import", "purchases", file});
  EXPECT_FALSE(absl::StrContains(r.err, "ignoring")) << r.err;
  // The request id column was read: the second row reuses the first's.
  EXPECT_EQ(Summary(r.out, "accepted"), 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":3: request_id: ")) << r.err;

  const std::string twice = server_->Write(
      "t.csv", absl::StrCat("customer_ref,timestamp,amount,Amount\n", ada,
                            ",2024-03-01T12:00:00Z,5,6\n"));
  RunResult refused = server_->Ctl({"customers", "import", "purchases", twice});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(
      refused.err, twice + ":1: the header names the column amount twice"))
      << refused.err;
  EXPECT_EQ(Purchases(ada).size(), 1u);
}

TEST_F(CustomerImportE2E, InteractionsImportWithRejectsAndRetry) {
  const std::string ada = CreateCustomer("Ada");
  const std::string file = server_->Write(
      "i.csv",
      absl::StrCat("customer_ref,timestamp,channel,cost,kind,note\n",  // 1
                   ada,
                   ",2024-03-01T12:00:00Z,email,0.25,newsletter,"
                   "\"two\nlines\"\n",                         // 2-3
                   ada, ",2024-03-02T12:00:00Z,fax,1,,\n",     // 4
                   ada, ",2024-03-03T12:00:00Z,phone,-1,,\n",  // 5
                   "email:ivy@example.com,2024-03-04T12:00:00Z,visit,0,,"
                   "\n"));  // 6
  RunResult r = server_->Ctl({"customers", "import", "interactions", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "accepted"), 2) << r.out;
  EXPECT_EQ(Summary(r.out, "created customers"), 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":4: channel: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":5: cost: ")) << r.err;

  RunResult listed = server_->Ctl({"customers", "interactions", "list",
                                   "--customer", ada, "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, "newsletter")) << listed.out;
  EXPECT_TRUE(absl::StrContains(listed.out, "two\\nlines")) << listed.out;

  RunResult again = server_->Ctl({"customers", "import", "interactions", file});
  EXPECT_EQ(Summary(again.out, "accepted"), 0) << again.out;
  EXPECT_EQ(Summary(again.out, "duplicates"), 2) << again.out;
}

// Rows with long cells: 5000 rows (the default rows per message) of 1000-
// byte notes are more than the services take in one message (4 MiB), so
// rapportctl sends them in messages cut by size too. A row far larger than
// any column takes is refused before sending, naming its column, and the
// others go in.
TEST_F(CustomerImportE2E, LongRowsGoInMessagesTheServiceTakes) {
  const std::string ada = CreateCustomer("Ada");
  const std::string note(1000, 'n');
  std::string csv = "customer_ref,timestamp,channel,cost,kind,note\n";
  for (int i = 0; i < 5000; ++i) {
    absl::StrAppend(
        &csv, ada, ",2024-03-01T12:", absl::Dec(i / 60 % 60, absl::kZeroPad2),
        ":", absl::Dec(i % 60, absl::kZeroPad2), ".",
        absl::Dec(i / 3600, absl::kZeroPad3), "Z,email,0,call,", note, "\n");
  }
  absl::StrAppend(&csv, ada, ",2024-03-02T12:00:00Z,email,0,call,",
                  std::string(300 << 10, 'x'), "\n");  // line 5002
  const std::string file = server_->Write("long.csv", csv);
  RunResult r = server_->Ctl({"customers", "import", "interactions", file});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "accepted"), 5000) << r.out << r.err;
  EXPECT_EQ(Summary(r.out, "rejected"), 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, file + ":5002: note: the row holds "))
      << r.err;
}

TEST_F(CustomerImportE2E,
       BrokenFileStopsBeforeAnythingIsSentAndRaggedRowsAreRejects) {
  const std::string ada = CreateCustomer("Ada");
  const std::string no_amount = server_->Write(
      "a.csv",
      absl::StrCat("customer_ref,timestamp\n", ada, ",2024-01-01T00:00:00Z\n"));
  RunResult r = server_->Ctl({"customers", "import", "purchases", no_amount});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, no_amount + ":1: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "amount")) << r.err;
  // Broken quoting late in the file: the good rows before it are not stored
  // either.
  const std::string unquoted =
      server_->Write("c.csv", absl::StrCat("customer_ref,timestamp,amount\n",
                                           ada, ",2024-01-01T00:00:00Z,1\n",
                                           ada, ",2024-01-02T00:00:00Z,\"2\n"));
  RunResult r3 = server_->Ctl({"customers", "import", "purchases", unquoted});
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r3.err, "line 3: unterminated quoted field"))
      << r3.err;
  EXPECT_TRUE(Purchases(ada).empty());
  // A row of the wrong width is a bad row, not a broken file: it is
  // rejected, naming its line, and the good rows go in.
  const std::string ragged = server_->Write(
      "b.csv", absl::StrCat("customer_ref,timestamp,amount\n", ada,
                            ",2024-01-01T00:00:00Z,1\n", ada,
                            ",2024-01-02T00:00:00Z,2,extra\n", ada,
                            ",2024-01-03T00:00:00Z\n"));
  RunResult r2 = server_->Ctl({"customers", "import", "purchases", ragged});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_EQ(Summary(r2.out, "accepted"), 1) << r2.out;
  EXPECT_EQ(Summary(r2.out, "rejected"), 2) << r2.out;
  EXPECT_TRUE(absl::StrContains(
      r2.err,
      ragged + ":3: expected 3 fields like the header, got 4: 1 past amount"))
      << r2.err;
  EXPECT_TRUE(absl::StrContains(
      r2.err,
      ragged + ":4: expected 3 fields like the header, got 2: no amount"))
      << r2.err;
  EXPECT_EQ(Purchases(ada).size(), 1u);
  RunResult usage = server_->Ctl({"customers", "import", "orders", no_amount});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

}  // namespace
}  // namespace rapport
