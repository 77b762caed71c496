// Identification, merging, erasure, interactions and consent through the real
// rapport-customer binary and rapportctl, on a real MariaDB.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/mariadb.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/server.h"

namespace rapport {
namespace {

using testing::BinaryDir;
using testing::Process;
using testing::RunResult;
using testing::TempDir;
using testing::TestMariaDb;

// rapport-customer (no scoring service) with British phone numbers.
class Server : public testing::Platform {
 public:
  Server()
      : Platform({.scoring = false,
                  .customer_args = {"--suppression_salt=e2e-salt",
                                    "--phone_region=GB"}}) {}
  // Runs a command that must succeed and returns its CSV rows (header first).
  std::vector<std::vector<std::string>> Rows(
      std::vector<std::string> args) const {
    return CsvCtl(std::move(args));
  }
  std::string CreateId(std::vector<std::string> args) const {
    args.insert(args.begin(), {"customers", "create"});
    auto rows = Rows(args);
    return rows.size() == 2 ? rows[1][0] : "";
  }
};

TEST(CustomerIdentityE2E,
     IdentifyCreatesOnceFindsAfterwardsAndRefusesAmbiguity) {
  Server server;
  auto first =
      server.Rows({"customers", "identify", "--email", "Ada@Example.com",
                   "--phone", "020 7946 0958", "--request-id", "r1"});
  ASSERT_EQ(first.size(), 2u);
  const std::string ada = first[1][0];
  EXPECT_EQ(first[1][3], "+442079460958");  // national number, region GB
  auto again =
      server.Rows({"customers", "identify", "--email", " ada@example.COM "});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1][0], ada);
  const std::string bob =
      server.CreateId({"--display-name", "Bob", "--external-id", "crm:7"});
  RunResult both = server.Ctl({"customers", "identify", "--email",
                               "ada@example.com", "--external-id", "crm:7"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.err.find("FAILED_PRECONDITION"), std::string::npos)
      << both.err;
  EXPECT_NE(both.err.find(ada), std::string::npos);
  EXPECT_NE(both.err.find(bob), std::string::npos);
  RunResult none = server.Ctl({"customers", "identify"});
  EXPECT_NE(none.err.find("INVALID_ARGUMENT: email"), std::string::npos)
      << none.err;
  RunResult taken = server.Ctl({"customers", "create", "--display-name", "X",
                                "--email", "ADA@example.com"});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_NE(taken.err.find("ALREADY_EXISTS"), std::string::npos);
  EXPECT_NE(taken.err.find(ada), std::string::npos) << taken.err;
}

// A create retried after the customer it made was merged answers with the
// customer that stayed, not the merged record.
TEST(CustomerIdentityE2E,
     ACreateRetriedAfterAMergeAnswersWithTheCustomerThatStayed) {
  Server server;
  const std::vector<std::string> create = {"--display-name", "Bo",
                                           "--request-id", "crm-create-7"};
  const std::string made = server.CreateId(create);
  const std::string kept = server.CreateId({"--display-name", "Bo Lund"});
  ASSERT_FALSE(made.empty());
  ASSERT_FALSE(kept.empty());
  ASSERT_EQ(server.Ctl({"customers", "merge", kept, made}).exit_code, 0);
  EXPECT_EQ(server.CreateId(create), kept);
}

TEST(CustomerIdentityE2E, DuplicatesAreFoundAndMergedWithEverythingTheyHad) {
  Server server;
  const std::string a =
      server.CreateId({"--display-name", "Ann Lee", "--email", "ann@gmail.com",
                       "--postal-code", "N1 9GU"});
  const std::string b =
      server.CreateId({"--display-name", "ann lee", "--email",
                       "a.nn+shop@gmail.com", "--phone", "+14155550100"});
  // --all follows the page tokens to the end; without it one page comes back.
  EXPECT_EQ(
      server.Rows({"customers", "list", "--page-size", "1", "--all"}).size(),
      3u);
  EXPECT_EQ(server.Rows({"customers", "list", "--page-size", "1"}).size(), 2u);
  // One page says on stderr how to get the next, and the token it names does.
  RunResult first =
      server.Ctl({"customers", "list", "--page-size", "1", "--output", "csv"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string marker = "--page-token ";
  const size_t at = first.err.find(marker);
  ASSERT_NE(at, std::string::npos) << first.err;
  std::string token = first.err.substr(at + marker.size());
  token = token.substr(0, token.find(','));
  auto second = server.Rows(
      {"customers", "list", "--page-size", "1", "--page-token", token});
  ASSERT_EQ(second.size(), 2u);
  EXPECT_NE(first.out, "");
  EXPECT_EQ(first.out.find(second[1][0]), std::string::npos)
      << "the second page repeats the first";
  auto groups = server.Rows({"customers", "duplicates"});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[1][0], "email");
  EXPECT_EQ(groups[1][1], "ann@gmail.com");
  EXPECT_EQ(groups[1][2], a + " " + b);

  ASSERT_EQ(server
                .Ctl({"purchases", "record", "--customer", b, "--amount", "30",
                      "--time", "2024-01-01T00:00:00Z"})
                .exit_code,
            0);
  ASSERT_EQ(
      server
          .Ctl({"customers", "interactions", "log", "--customer", b,
                "--channel", "phone", "--cost", "4.5", "--note", "called"})
          .exit_code,
      0);
  RunResult consent = server.Ctl({"customers", "consent", "set", "--customer",
                                  b, "--purpose", "marketing", "--channel",
                                  "email", "--grant", "--source", "web"});
  ASSERT_EQ(consent.exit_code, 0) << consent.err;
  // The capture time taken from the clock is shown, with how to repeat the
  // call without recording the consent twice.
  EXPECT_NE(consent.out.find(" at 20"), std::string::npos) << consent.out;
  EXPECT_NE(consent.err.find("give --time 20"), std::string::npos)
      << consent.err;
  // A withdrawal captured before that grant is recorded, and the answer
  // says that the grant still holds, not that consent was withdrawn.
  RunResult older =
      server.Ctl({"customers", "consent", "set", "--customer", b, "--purpose",
                  "marketing", "--channel", "email", "--withdraw", "--source",
                  "letter", "--time", "2020-01-01T00:00:00Z"});
  ASSERT_EQ(older.exit_code, 0) << older.err;
  EXPECT_TRUE(absl::StartsWith(older.out, "recorded a withdrawal of marketing"))
      << older.out;
  EXPECT_NE(older.out.find("the later choice holds: granted at 20"),
            std::string::npos)
      << older.out;

  RunResult dry = server.Ctl({"customers", "merge", a, b, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.err.find("would move 1 purchases, 1 interactions, 1 consents"),
            std::string::npos)
      << dry.err;
  EXPECT_EQ(server.Rows({"purchases", "list", "--customer", a}).size(),
            1u);  // header only

  RunResult merged = server.Ctl({"customers", "merge", a, b});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  // The audit names the merge's actor from the token, never from the request.
  std::vector<std::vector<std::string>> audit =
      server.Rows({"audit", "list", "--resource", "customers/" + a});
  ASSERT_GE(audit.size(), 2u);
  EXPECT_EQ(audit[1][1], testing::kPlatformAdmin);
  EXPECT_EQ(audit[1][2], "MergeCustomers");
  EXPECT_EQ(audit[1][6], "merged=" + b);
  EXPECT_EQ(server.Rows({"purchases", "list", "--customer", a}).size(), 2u);
  EXPECT_EQ(server.Rows({"customers", "interactions", "list", "--customer", a})
                .size(),
            2u);
  EXPECT_EQ(
      server.Rows({"customers", "consent", "list", "--customer", a}).size(),
      2u);
  RunResult get_b = server.Ctl({"customers", "get", b, "--output", "csv"});
  ASSERT_EQ(get_b.exit_code, 0);
  EXPECT_NE(get_b.err.find("was merged into " + a), std::string::npos)
      << get_b.err;
  EXPECT_NE(get_b.out.find(a + ",Ann Lee,ann@gmail.com,+14155550100"),
            std::string::npos)
      << get_b.out;
  // The merged customer is no longer listed, and no longer a duplicate.
  EXPECT_EQ(server.Rows({"customers", "list"}).size(), 2u);
  EXPECT_EQ(server.Rows({"customers", "duplicates"}).size(), 1u);
  // Its own email (the primary kept its own) still names the primary: to
  // identify, to an import, and in a create's refusal.
  auto found =
      server.Rows({"customers", "identify", "--email", "a.nn+shop@gmail.com"});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[1][0], a);
  EXPECT_EQ(found[1][2], "ann@gmail.com");
  const std::string file =
      server.File("p.csv",
                  "customer_ref,timestamp,amount\n"
                  "email:A.nn+shop@gmail.com,2024-02-01T00:00:00Z,12\n");
  RunResult imported = server.Ctl({"customers", "import", "purchases", file});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("created customers: 0"), std::string::npos)
      << imported.out;
  EXPECT_EQ(server.Rows({"purchases", "list", "--customer", a}).size(), 3u);
  EXPECT_EQ(server.Rows({"customers", "list"}).size(), 2u);
  RunResult taken = server.Ctl({"customers", "create", "--display-name", "X",
                                "--email", "a.nn+shop@gmail.com"});
  EXPECT_NE(
      taken.err.find("ALREADY_EXISTS: email is already used by customer " + a),
      std::string::npos)
      << taken.err;
  // The same merge again (a retry) answers as the first did; merging the
  // merged record into another is refused.
  RunResult twice = server.Ctl({"customers", "merge", a, b});
  EXPECT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_NE(twice.err.find("moved 1 purchases, 1 interactions, 1 consents"),
            std::string::npos)
      << twice.err;
  const std::string c = server.CreateId({"--display-name", "Cy"});
  RunResult elsewhere = server.Ctl({"customers", "merge", c, b});
  EXPECT_NE(elsewhere.err.find("FAILED_PRECONDITION"), std::string::npos)
      << elsewhere.err;
  RunResult self = server.Ctl({"customers", "merge", a, a});
  EXPECT_NE(self.err.find("INVALID_ARGUMENT: duplicate_ids[0]"),
            std::string::npos)
      << self.err;
}

TEST(CustomerIdentityE2E,
     EraseRemovesPersonalDataKeepsTotalsAndSuppressesTheIdentities) {
  Server server;
  const std::string id = server.CreateId(
      {"--display-name", "Ada Lovelace", "--email", "ada@example.com",
       "--phone", "020 7946 0001", "--external-id", "crm:1"});
  // A duplicate record of her, with an email and a phone of its own, merged
  // into hers: its identities find her, and they go with hers.
  const std::string duplicate =
      server.CreateId({"--display-name", "A. Lovelace", "--email",
                       "ada.l@example.com", "--phone", "020 7946 0002"});
  ASSERT_EQ(server.Ctl({"customers", "merge", id, duplicate}).exit_code, 0);
  ASSERT_EQ(server
                .Ctl({"purchases", "record", "--customer", id, "--amount",
                      "19.99", "--description", "tea for Ada"})
                .exit_code,
            0);
  ASSERT_EQ(server
                .Ctl({"customers", "interactions", "log", "--customer", id,
                      "--channel", "email", "--cost", "0.10", "--note",
                      "Ada asked about tea"})
                .exit_code,
            0);
  RunResult erased = server.Ctl({"customers", "erase", id, "--output", "json"});
  ASSERT_EQ(erased.exit_code, 0) << erased.err;
  EXPECT_EQ(erased.out, absl::StrCat("{\"erased\": \"", id, "\"}\n"));
  auto got = server.Rows({"customers", "get", id});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1][1], "(erased)");
  EXPECT_EQ(got[1][2], "");
  EXPECT_EQ(got[1][4], "");
  auto purchases = server.Rows({"purchases", "list", "--customer", id});
  ASSERT_EQ(purchases.size(), 2u);
  EXPECT_EQ(purchases[1][3], "19.99");
  EXPECT_EQ(purchases[1][5], "");  // the description could name the person
  auto interactions =
      server.Rows({"customers", "interactions", "list", "--customer", id});
  ASSERT_EQ(interactions.size(), 2u);
  EXPECT_EQ(interactions[1][5], "0.10");
  EXPECT_EQ(interactions[1][6], "");
  for (std::vector<std::string> again :
       {std::vector<std::string>{"customers", "create", "--display-name", "Ada",
                                 "--email", "ADA@example.com"},
        std::vector<std::string>{"customers", "identify", "--external-id",
                                 "crm:1"},
        std::vector<std::string>{"customers", "create", "--display-name", "Ada",
                                 "--email", "ada.l@example.com"},
        std::vector<std::string>{"customers", "create", "--display-name", "Ada",
                                 "--phone", "020 7946 0002"}}) {
    RunResult r = server.Ctl(again);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("erased"), std::string::npos) << r.err;
  }
  RunResult update =
      server.Ctl({"customers", "update", id, "--display-name", "Back"});
  EXPECT_NE(update.err.find("FAILED_PRECONDITION"), std::string::npos)
      << update.err;
}

TEST(CustomerIdentityE2E, EveryCallNamesTheBadFieldAndReportsUnknownCustomers) {
  Server server;
  const std::string unknown = "01jd8x4r2c6n7m9p0q1r2s3t4v";
  const std::vector<std::vector<std::string>> not_found = {
      {"customers", "get", unknown},
      {"customers", "update", unknown, "--display-name", "x"},
      {"customers", "delete", unknown},
      {"customers", "erase", unknown},
      {"customers", "merge", unknown, "01jd8x4r2c6n7m9p0q1r2s3t4w"},
      {"purchases", "record", "--customer", unknown, "--amount", "1"},
      {"purchases", "list", "--customer", unknown},
      {"customers", "interactions", "log", "--customer", unknown, "--channel",
       "email"},
      {"customers", "interactions", "list", "--customer", unknown},
      {"customers", "consent", "set", "--customer", unknown, "--purpose", "m",
       "--channel", "email", "--grant", "--source", "web"},
      {"customers", "consent", "list", "--customer", unknown},
  };
  for (const auto& args : not_found) {
    RunResult r = server.Ctl(args);
    EXPECT_EQ(r.exit_code, 1) << absl::StrJoin(args, " ");
    EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos)
        << absl::StrJoin(args, " ") << r.err;
  }
  // A delete that may find its customer gone (a retry) says so.
  RunResult allowed =
      server.Ctl({"customers", "delete", unknown, "--allow-missing"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_EQ(allowed.out,
            absl::StrCat("deleted customer ", unknown,
                         ", or there was none (--allow-missing)\n"));
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"customers", "get", "nope"}, "id"},
      {{"customers", "create", "--display-name", "x", "--phone", "+1 555"},
       "customer.phone"},
      {{"customers", "create", "--display-name", "x", "--email", "a@b"},
       "customer.email"},
      {{"customers", "list", "--page-size", "5", "--page-token", "zzz"},
       "page_token"},
      {{"customers", "merge", "nope", unknown}, "primary_id"},
      {{"customers", "interactions", "log", "--customer", "nope", "--channel",
        "email"},
       "customer_id"},
      {{"customers", "consent", "set", "--customer", unknown, "--purpose", "",
        "--channel", "email", "--grant", "--source", "web"},
       "consent.purpose"},
      {{"purchases", "list", "--customer", unknown, "--start",
        "2024-02-01T00:00:00Z", "--end", "2024-01-01T00:00:00Z"},
       "end_time"},
  };
  for (const auto& [args, field] : bad) {
    RunResult r = server.Ctl(args);
    EXPECT_EQ(r.exit_code, 1) << absl::StrJoin(args, " ");
    EXPECT_NE(r.err.find(absl::StrCat("INVALID_ARGUMENT: ", field)),
              std::string::npos)
        << absl::StrJoin(args, " ") << "\n"
        << r.err;
  }
}

}  // namespace
}  // namespace rapport
