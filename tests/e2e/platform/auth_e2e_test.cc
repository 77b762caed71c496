// Who may do what, through the real binaries: every RPC of every service
// needs a valid token (each is called without one, from the descriptors the
// binaries are built from), each refuses roles below its table's, and
// through rapportctl a reader reads, a writer records, an admin erases, and
// the audit log names the admin; forged and expired tokens are refused.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/auth/jwt.h"
#include "common/channel.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "services/customer/customer_service.h"
#include "services/financial_community/community_service.h"
#include "services/partner/partner_service.h"
#include "services/scoring/scoring_service.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/raw_call.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

using testing::Platform;
using testing::RunResult;
using testing::TestAuth;

using testing::CallRaw;

// Every method of the service with its full path.
std::vector<std::pair<std::string, std::string>> Methods(
    const std::string& service) {
  const auto* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service);
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; s != nullptr && i < s->method_count(); ++i) {
    out.emplace_back(s->method(i)->name(),
                     absl::StrCat("/", service, "/", s->method(i)->name()));
  }
  return out;
}

// The access model, written here from the design rather than read from the
// services' tables (which this test checks): scoring computes and stores
// nothing, so readers call all of it. In a counterpart service, readers
// get, list, find, summarise and export; admins delete, merge, erase and
// read the audit log; writers do everything else (create, update, identify,
// record, import, log, register, transition, request, refresh).
auth::Role ExpectedRole(const std::string& service, const std::string& method) {
  if (service == scoring::v1::ScoringService::service_full_name())
    return auth::Role::kReader;
  if (method == "ListAuditEvents") return auth::Role::kAdmin;
  for (const char* verb : {"Delete", "Merge", "Erase"}) {
    if (absl::StartsWith(method, verb)) return auth::Role::kAdmin;
  }
  for (const char* verb : {"Get", "List", "Find", "Summarize", "Export"}) {
    if (absl::StartsWith(method, verb)) return auth::Role::kReader;
  }
  return auth::Role::kWriter;
}

class AuthE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(platform_.Ctl({"health", "--wait", "20s"}).exit_code, 0)
        << platform_.logs();
  }
  std::string Create(const std::string& name) {
    return testing::CsvId(platform_
                              .Ctl({"customers", "create", "--display-name",
                                    name, "--output", "csv"})
                              .out);
  }
  static testing::PlatformOptions Options() {
    testing::PlatformOptions o;
    o.partner = true;
    o.community = true;
    return o;
  }
  Platform platform_{Options()};
};

TEST_F(AuthE2E, EveryRpcOfEveryServiceNeedsAValidToken) {
  struct Service {
    std::string address;
    std::string name;
    const MethodRoles* roles;
  };
  const std::vector<Service> services = {
      {platform_.customer().addr(),
       customer::v1::CustomerService::service_full_name(),
       &customer::CustomerMethodRoles()},
      {platform_.scoring().addr(),
       scoring::v1::ScoringService::service_full_name(),
       &scoring::ScoringMethodRoles()},
      {platform_.partner().addr(),
       partner::v1::PartnerService::service_full_name(),
       &partner::PartnerMethodRoles()},
      {platform_.community().addr(),
       community::v1::FinancialCommunityService::service_full_name(),
       &community::CommunityMethodRoles()}};
  for (const Service& service : services) {
    const auto methods = Methods(service.name);
    ASSERT_GT(methods.size(), 4u) << service.name;
    for (const auto& [name, path] : methods) {
      SCOPED_TRACE(path);
      grpc::Status none = CallRaw(service.address, path, "");
      EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << none.error_message();
      EXPECT_EQ(none.error_message(), "missing bearer token");
      grpc::Status garbage = CallRaw(service.address, path, "Bearer a.b.c");
      EXPECT_EQ(garbage.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      // Every role below the method's is refused, naming the role it needs.
      const auth::Role least = ExpectedRole(service.name, name);
      EXPECT_EQ(service.roles->Of(name), least);
      for (const auto& [below, role] :
           {std::pair(auth::Role::kReader, "reader"),
            std::pair(auth::Role::kWriter, "writer")}) {
        if (below >= least) continue;
        SCOPED_TRACE(role);
        grpc::Status refused =
            CallRaw(service.address, path, TestAuth::Get().Bearer(role));
        EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
        EXPECT_NE(refused.error_message().find(
                      absl::StrCat("needs the ", auth::RoleName(least))),
                  std::string::npos)
            << refused.error_message();
      }
      // With the role, the call gets past the guard (its empty request is
      // then refused, or served, by the method itself).
      const char* enough = least == auth::Role::kAdmin    ? "admin"
                           : least == auth::Role::kWriter ? "writer"
                                                          : "reader";
      grpc::Status allowed =
          CallRaw(service.address, path, TestAuth::Get().Bearer(enough));
      EXPECT_NE(allowed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      EXPECT_NE(allowed.error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << allowed.error_message();
    }
  }
  // Reflection needs a token of any role; health stays open for probes.
  const std::string reflection =
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  EXPECT_EQ(CallRaw(platform_.customer().addr(), reflection, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallRaw(platform_.customer().addr(), reflection,
                      TestAuth::Get().Bearer("reader"))
                  .ok());
  EXPECT_TRUE(CallRaw(platform_.customer().addr(),
                      "/grpc.reflection.v1.ServerReflection/"
                      "ServerReflectionInfo",
                      TestAuth::Get().Bearer("reader"))
                  .ok());
  RunResult health = platform_.CtlAs("reader", "nobody", {"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  testing::Env anonymous = platform_.CtlEnvAs("");
  RunResult open = testing::Run({testing::CtlPath(), "health"}, anonymous);
  EXPECT_EQ(open.exit_code, 0) << open.err;
}

TEST_F(AuthE2E, ReadersReadWritersRecordAdminsEraseAndTheAuditNamesThem) {
  const std::string ada = Create("Ada");
  const std::string bob = Create("Bob");
  ASSERT_FALSE(ada.empty());

  // A reader gets and lists, and is refused what changes anything.
  RunResult got = platform_.CtlAs("reader", "rita", {"customers", "get", ada});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  RunResult listed = platform_.CtlAs("reader", "rita",
                                     {"customers", "list", "--output", "csv"});
  EXPECT_EQ(testing::CsvRows(listed.out).size(), 3u) << listed.err;
  for (const std::vector<std::string>& refused :
       std::vector<std::vector<std::string>>{
           {"customers", "erase", ada},
           {"customers", "merge", ada, bob},
           {"customers", "delete", bob},
           {"purchases", "record", "--customer", ada, "--amount", "5"},
           {"audit", "list"}}) {
    RunResult r = platform_.CtlAs("reader", "rita", refused);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("PERMISSION_DENIED"), std::string::npos) << r.err;
  }
  // The request log names who read, as the audit log names who changed.
  EXPECT_NE(
      platform_.logs().find(R"("method":"/rapport.customer.v1.)"
                            R"(CustomerService/GetCustomer","code":"OK")"),
      std::string::npos);
  EXPECT_NE(platform_.logs().find(R"("caller":"rita")"), std::string::npos)
      << platform_.logs();
  // ...and nothing changed.
  EXPECT_EQ(testing::CsvRows(
                platform_.Ctl({"customers", "list", "--output", "csv"}).out)
                .size(),
            3u);
  RunResult ada_now = platform_.Ctl({"customers", "get", ada});
  EXPECT_NE(ada_now.out.find("Ada"), std::string::npos) << ada_now.out;

  // A writer records a purchase; the row names the writer.
  RunResult bought = platform_.CtlAs(
      "writer", "wanda",
      {"purchases", "record", "--customer", ada, "--amount", "19.99", "--time",
       "2024-03-01T12:00:00Z", "--output", "csv"});
  ASSERT_EQ(bought.exit_code, 0) << bought.err;
  RunResult purchases = platform_.Ctl(
      {"purchases", "list", "--customer", ada, "--output", "json"});
  EXPECT_NE(purchases.out.find("\"recorded_by\": \"wanda\""), std::string::npos)
      << purchases.out;
  // A writer's force needs an admin.
  RunResult forced =
      platform_.CtlAs("writer", "wanda",
                      {"customers", "interactions", "log", "--customer", ada,
                       "--channel", "visit", "--cost", "1", "--force"});
  EXPECT_NE(forced.err.find("with force needs the admin role"),
            std::string::npos)
      << forced.err;

  // An admin erases; the audit log shows the erase under the admin's
  // subject.
  RunResult erased =
      platform_.CtlAs("admin", "alice", {"customers", "erase", ada});
  ASSERT_EQ(erased.exit_code, 0) << erased.err;
  std::vector<std::vector<std::string>> audit =
      platform_.CsvCtl({"audit", "list", "--resource", "customers/" + ada});
  ASSERT_GE(audit.size(), 3u);  // header, erase, create
  EXPECT_EQ(audit[1][1], "alice");
  EXPECT_EQ(audit[1][2], "EraseCustomer");
  EXPECT_EQ(audit[1][5], "ok");
  EXPECT_EQ(audit.back()[2], "CreateCustomer");
  EXPECT_EQ(audit.back()[1], testing::kPlatformAdmin);
  std::vector<std::vector<std::string>> by_alice =
      platform_.CsvCtl({"audit", "list", "--actor", "alice"});
  ASSERT_EQ(by_alice.size(), 2u);
  EXPECT_EQ(by_alice[1][3], "customers/" + ada);
  // The purchase is not an audit event: its row says who recorded it.
  EXPECT_EQ(platform_.CsvCtl({"audit", "list", "--actor", "wanda"}).size(), 1u);
}

TEST_F(AuthE2E, ForgedExpiredAndForeignTokensAreRefused) {
  const std::string ada = Create("Ada");
  auto get_with = [&](const std::string& token) {
    return testing::Run({testing::CtlPath(), "customers", "get", ada},
                        platform_.CtlEnvAs(token));
  };
  // Signed by a key the deployment does not know.
  absl::StatusOr<auth::SigningKey> other = auth::SigningKey::Generate();
  ASSERT_TRUE(other.ok());
  const auth::TokenClaims claims{.subject = "mallory",
                                 .roles = {"admin"},
                                 .issuer = "rapport",
                                 .audience = "rapport"};
  RunResult foreign = get_with(*auth::MintToken(*other, claims, absl::Now()));
  EXPECT_NE(foreign.err.find("UNAUTHENTICATED"), std::string::npos)
      << foreign.err;
  // alg: none, claims that would pass.
  const std::string none = absl::StrCat(
      absl::WebSafeBase64Escape(R"({"alg":"none","typ":"JWT"})"), ".",
      absl::WebSafeBase64Escape(
          absl::StrCat(R"({"sub":"mallory","roles":["admin"],"iss":"rapport",)",
                       R"("aud":"rapport","exp":)",
                       absl::ToUnixSeconds(absl::Now()) + 600, "}")),
      ".");
  RunResult unsigned_token = get_with(none);
  EXPECT_NE(unsigned_token.err.find("algorithm none is not allowed"),
            std::string::npos)
      << unsigned_token.err;
  RunResult expired =
      get_with(TestAuth::Get().Token("admin", "late", -absl::Hours(1)));
  EXPECT_NE(expired.err.find("token expired"), std::string::npos)
      << expired.err;
  // Another deployment's audience.
  absl::StatusOr<auth::SigningKey> people =
      auth::SigningKey::Load(TestAuth::Get().people_key_file());
  auth::TokenClaims staging = claims;
  staging.audience = "rapport-staging";
  RunResult wrong_audience =
      get_with(*auth::MintToken(*people, staging, absl::Now()));
  EXPECT_NE(wrong_audience.err.find("wrong audience"), std::string::npos)
      << wrong_audience.err;
  // A token without a known role cannot be minted (a hand-signed one is
  // refused by the verifier: AuthTest.NoKnownRoleIsPermissionDenied).
  auth::TokenClaims roleless = claims;
  roleless.roles = {};
  EXPECT_FALSE(auth::MintToken(*people, roleless, absl::Now()).ok());
  roleless.roles = {"guest"};
  EXPECT_FALSE(auth::MintToken(*people, roleless, absl::Now()).ok());
  // None of them changed anything, and the log never shows a token.
  EXPECT_EQ(platform_.logs().find(none), std::string::npos);
}

// A domain service's own token (what it makes for its calls to scoring,
// with the service key) is taken by the scoring service and by no domain
// service: a stolen service key reads no customer, partner or member.
TEST_F(AuthE2E, AServicesOwnTokenIsTakenByTheScoringServiceOnly) {
  absl::StatusOr<auth::SigningKey> key =
      auth::SigningKey::Load(TestAuth::Get().service_key_file());
  ASSERT_TRUE(key.ok()) << key.status();
  const auth::TokenClaims claims{.subject = "service:customer",
                                 .roles = {"reader"},
                                 .issuer = "rapport",
                                 .audience = "rapport.scoring"};
  absl::StatusOr<std::string> token =
      auth::MintToken(*key, claims, absl::Now());
  ASSERT_TRUE(token.ok()) << token.status();
  const std::string bearer = absl::StrCat("Bearer ", *token);
  // What its thief would make of it: a token for the deployment's audience.
  auth::TokenClaims everywhere = claims;
  everywhere.audience = "rapport";
  absl::StatusOr<std::string> stolen_token =
      auth::MintToken(*key, everywhere, absl::Now());
  ASSERT_TRUE(stolen_token.ok()) << stolen_token.status();
  const std::string scoped_bearer = absl::StrCat("Bearer ", *stolen_token);
  // An empty request is refused for what it lacks, so the caller passed.
  grpc::Status scored =
      CallRaw(platform_.scoring().addr(),
              "/rapport.scoring.v1.ScoringService/ScoreEntity", bearer);
  EXPECT_EQ(scored.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << scored.error_message();
  for (const auto& [addr, method] :
       std::vector<std::pair<std::string, std::string>>{
           {platform_.customer().addr(),
            "/rapport.customer.v1.CustomerService/ListCustomers"},
           {platform_.partner().addr(),
            "/rapport.partner.v1.PartnerService/ListPartners"},
           {platform_.community().addr(),
            "/rapport.financial_community.v1.FinancialCommunityService/"
            "ListMembers"}}) {
    grpc::Status read = CallRaw(addr, method, bearer);
    EXPECT_EQ(read.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_NE(read.error_message().find("wrong audience"), std::string::npos)
        << read.error_message();
    // Nor does a token its thief makes for the deployment's audience, from
    // a key published as a service's own (keygen --subject).
    grpc::Status stolen = CallRaw(addr, method, scoped_bearer);
    EXPECT_EQ(stolen.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_NE(stolen.error_message().find("may not sign for this service"),
              std::string::npos)
        << stolen.error_message();
  }
}

// "service:" subjects are the services' own: a token that names one is
// taken only from that service's key, so that the people's key (or an
// identity provider letting a user pick a name) cannot take the refreshes'
// slots in the scoring service, nor write a service's name in the audit log.
TEST_F(AuthE2E, OnlyAServicesOwnKeySignsForAService) {
  absl::StatusOr<auth::SigningKey> people =
      auth::SigningKey::Load(TestAuth::Get().people_key_file());
  ASSERT_TRUE(people.ok()) << people.status();
  for (const char* audience : {"rapport.scoring", "rapport"}) {
    absl::StatusOr<std::string> forged =
        auth::MintToken(*people,
                        {.subject = "service:customer",
                         .roles = {"reader"},
                         .issuer = "rapport",
                         .audience = audience},
                        absl::Now());
    ASSERT_TRUE(forged.ok()) << forged.status();
    grpc::Status scored =
        CallRaw(platform_.scoring().addr(),
                "/rapport.scoring.v1.ScoringService/ScoreEntity",
                absl::StrCat("Bearer ", *forged));
    EXPECT_EQ(scored.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << audience;
    EXPECT_NE(scored.error_message().find("may not sign for a service"),
              std::string::npos)
        << scored.error_message();
  }
  RunResult minted = platform_.Ctl(
      {"auth", "token", "--role", "admin", "--subject", "service:customer"});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  grpc::Status listed =
      CallRaw(platform_.customer().addr(),
              "/rapport.customer.v1.CustomerService/ListCustomers",
              absl::StrCat("Bearer ", absl::StripAsciiWhitespace(minted.out)));
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(listed.error_message().find("may not sign for a service"),
            std::string::npos)
      << listed.error_message();
  // The service's own token still is (scoring takes it).
  grpc::Status own = CallRaw(platform_.scoring().addr(),
                             "/rapport.scoring.v1.ScoringService/ScoreEntity",
                             TestAuth::Get().ServiceBearer("customer"));
  EXPECT_EQ(own.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << own.error_message();
}

TEST_F(AuthE2E, RapportctlMintsTokensThatAnyClientCanUse) {
  RunResult minted = platform_.Ctl(
      {"auth", "token", "--role", "reader", "--subject", "script"});
  ASSERT_EQ(minted.exit_code, 0) << minted.err;
  const std::string token(absl::StripAsciiWhitespace(minted.out));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(token, '.')).size(), 3u);
  // The token works from any gRPC client, here a raw one.
  grpc::Status listed =
      CallRaw(platform_.customer().addr(),
              "/rapport.customer.v1.CustomerService/ListCustomers",
              absl::StrCat("Bearer ", token));
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  grpc::Status erase =
      CallRaw(platform_.customer().addr(),
              "/rapport.customer.v1.CustomerService/EraseCustomer",
              absl::StrCat("Bearer ", token));
  EXPECT_EQ(erase.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Without --key or RAPPORT_SIGNING_KEY_FILE, the key of the local
  // platform: under $RAPPORT_VAR when that is set, as deploy/local/run puts it
  // there; and the operator's token beside it likewise.
  testing::TempDir var;
  ASSERT_EQ(::mkdir(var.File("auth").c_str(), 0700), 0);
  testing::WriteFile(var.File("auth/signing-key.pem"),
                     testing::ReadFile(TestAuth::Get().people_key_file()));
  testing::Env env = platform_.CtlEnvAs("");
  env["RAPPORT_SIGNING_KEY_FILE"] = "";
  env["RAPPORT_VAR"] = var.path();
  RunResult local = testing::Run({testing::CtlPath(), "auth", "token", "--role",
                                  "reader", "--subject", "local"},
                                 env);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  testing::WriteFile(var.File("auth/operator.token"), local.out);
  env["RAPPORT_TOKEN_FILE"] = "";
  RunResult listed_locally = testing::Run(
      {testing::CtlPath(), "customers", "list", "--output", "csv"}, env);
  EXPECT_EQ(listed_locally.exit_code, 0) << listed_locally.err;
  // A token given empty (a script's unset variable) is a mistake, refused
  // before any call: never a call with that token instead.
  {
    RunResult flag = testing::Run(
        {testing::CtlPath(), "customers", "list", "--token", ""}, env);
    EXPECT_EQ(flag.exit_code, 2);
    EXPECT_NE(flag.err.find("--token: is empty"), std::string::npos)
        << flag.err;
    testing::Env unset_variable = env;
    unset_variable["RAPPORT_TOKEN"] = "";
    RunResult variable =
        testing::Run({testing::CtlPath(), "customers", "list"}, unset_variable);
    EXPECT_EQ(variable.exit_code, 2);
    EXPECT_NE(variable.err.find("RAPPORT_TOKEN: is set but empty"),
              std::string::npos)
        << variable.err;
  }
  // That token, picked up without being named, goes to this machine only:
  // to another address the command stops before it connects, and says why.
  for (const char* remote : {"192.0.2.1:50051", "127.0.0.1:1,192.0.2.1:2"}) {
    RunResult sent_away = testing::Run({testing::CtlPath(), "customers", "list",
                                        "--addr", remote, "--timeout", "1s"},
                                       env);
    EXPECT_EQ(sent_away.exit_code, 2) << remote;  // refused before any call
    EXPECT_NE(sent_away.err.find("is not this machine"), std::string::npos)
        << sent_away.err;
  }
  // A probe sends no token, so the local one does not stop it: it dials
  // (the list's bad entry ends it there, before anything is sent).
  RunResult probed_away = testing::Run(
      {testing::CtlPath(), "health", "--addr", "192.0.2.1:1,192.0.2.2:x"}, env);
  EXPECT_EQ(probed_away.err.find("is not this machine"), std::string::npos)
      << probed_away.err;
  EXPECT_NE(probed_away.err.find("\"192.0.2.2:x\" in a list of replicas"),
            std::string::npos)
      << probed_away.err;
  // Its addresses likewise, from the platform.env that deploy/local/run
  // writes there (a --base-port moves them off the defaults); the
  // environment still wins.
  ASSERT_EQ(::mkdir(var.File("run").c_str(), 0700), 0);
  testing::WriteFile(var.File("run/platform.env"),
                     absl::StrCat("RAPPORT_SCORING_ADDR=127.0.0.1:1\n",
                                  "RAPPORT_CUSTOMER_ADDR=",
                                  platform_.customer().addr(), "\n"));
  env["RAPPORT_CUSTOMER_ADDR"] = "";
  RunResult listed_at_local_address = testing::Run(
      {testing::CtlPath(), "customers", "list", "--output", "csv"}, env);
  EXPECT_EQ(listed_at_local_address.exit_code, 0)
      << listed_at_local_address.err;
  env["RAPPORT_CUSTOMER_ADDR"] = "127.0.0.1:1";
  EXPECT_EQ(
      testing::Run({testing::CtlPath(), "customers", "list"}, env).exit_code,
      1);
  // Named in RAPPORT_TOKEN_FILE, as deploy/local/run says to export it, it
  // is the same token, wherever rapportctl runs (no RAPPORT_VAR: the file
  // is known by the platform.env beside it): kept from other machines too.
  testing::Env named = env;
  named["RAPPORT_VAR"] = "";
  named["RAPPORT_TOKEN_FILE"] = var.File("auth/../auth/operator.token");
  RunResult named_away =
      testing::Run({testing::CtlPath(), "customers", "list", "--addr",
                    "192.0.2.1:50051", "--timeout", "1s"},
                   named);
  EXPECT_EQ(named_away.exit_code, 2);
  EXPECT_NE(named_away.err.find("is not this machine"), std::string::npos)
      << named_away.err;
  // Any other token goes to another machine over TLS only, unless plaintext
  // is allowed (a network that encrypts by itself), by flag or by the
  // variable the services read. (A list with a bad entry shows the check
  // passed without dialling anything.)
  testing::Env given = env;
  given["RAPPORT_VAR"] = "";
  given["RAPPORT_TOKEN"] = std::string(absl::StripAsciiWhitespace(local.out));
  const std::vector<std::string> away = {testing::CtlPath(), "customers",
                                         "list", "--addr",
                                         "192.0.2.1:1,192.0.2.2:x"};
  RunResult in_clear = testing::Run(away, given);
  EXPECT_EQ(in_clear.exit_code, 2);
  EXPECT_NE(in_clear.err.find("addr: 192.0.2.1:1,192.0.2.2:x is another "
                              "machine, and without TLS"),
            std::string::npos)
      << in_clear.err;
  std::vector<std::string> allowed = away;
  allowed.push_back("--allow-plaintext");
  for (const auto& [args, variable] :
       {std::pair{allowed, ""}, std::pair{away, "1"}}) {
    testing::Env e = given;
    e["RAPPORT_ALLOW_PLAINTEXT"] = variable;
    RunResult passed = testing::Run(args, e);
    EXPECT_EQ(passed.exit_code, 2);
    EXPECT_EQ(passed.err.find("without TLS"), std::string::npos) << passed.err;
    EXPECT_NE(passed.err.find("\"192.0.2.2:x\" in a list of replicas"),
              std::string::npos)
        << passed.err;
  }
  testing::Env unclear = given;
  unclear["RAPPORT_ALLOW_PLAINTEXT"] = "maybe";
  RunResult not_a_boolean = testing::Run(away, unclear);
  EXPECT_EQ(not_a_boolean.exit_code, 2);
  EXPECT_NE(not_a_boolean.err.find("RAPPORT_ALLOW_PLAINTEXT: \"maybe\""),
            std::string::npos)
      << not_a_boolean.err;
  // health speaks every output format; the table is the bare status that
  // probes read.
  EXPECT_EQ(platform_.Ctl({"health"}).out, "SERVING\n");
  EXPECT_EQ(platform_.Ctl({"health", "--output", "csv"}).out,
            "status\nSERVING\n");
  EXPECT_NE(platform_.Ctl({"health", "--output", "json"})
                .out.find("\"status\": \"SERVING\""),
            std::string::npos);
  // Bad requests for a token are usage errors.
  EXPECT_EQ(platform_.Ctl({"auth", "token", "--role", "root", "--subject", "x"})
                .exit_code,
            2);
  EXPECT_EQ(platform_.Ctl({"auth", "token", "--role", "reader"}).exit_code, 2);
}

}  // namespace
}  // namespace rapport
