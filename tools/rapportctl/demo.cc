// rapportctl demo load [--cdnow FILE|none] [--seed N] [--customers N]: loads
// the demo population (demo_data.h) into an empty platform through the calls
// a person would make (creates one by one, files through `... import KIND`),
// refreshes the scores of the three counterparts and prints the overview.
// Without --cdnow it takes the public CDNOW log from ../shared/data/cdnow/
// beside the checkout it is run in or built in, when it is there, else
// generated customers; `--cdnow none` generates.
//
//   rapportctl demo load
//   (stderr) demo: 23,570 customers created (30.5 s)
//   (stderr) demo: 69,659 purchases imported (0.9 s)
//   ...
//   (stdout) the overview, as `rapportctl overview` prints it
//
// It refuses (FAILED_PRECONDITION) a platform where any of the three
// services holds data, and (PERMISSION_DENIED) a token without the admin
// role, before writing anything.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/base/csv.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterparts.h"
#include "tools/rapportctl/demo_data.h"
#include "tools/rapportctl/overview.h"

namespace rapport::ctl {
namespace {

namespace cv1 = ::rapport::common::v1;
namespace cuv1 = ::rapport::customer::v1;
namespace pv1 = ::rapport::partner::v1;
namespace fv1 = ::rapport::financial_community::v1;

constexpr char kUsage[] =
    "want: rapportctl demo load [--cdnow FILE|none] [--seed N] [--customers "
    "N] "
    "[--customer-addr A] [--partner-addr A] [--community-addr A]";

// Generated customers when --customers is not given (and there is no log).
constexpr int kDefaultCustomers = 2000;
// Calls in flight at once while creating entities one call each: with the
// 23,570 CDNOW customers, 16 took 16.6 s (4 took 35 s before creations
// stopped deadlocking each other in the customer store; a deadlock, ABORTED,
// is still retried).
constexpr size_t kCallers = 16;

// How long the demo waits for its three score refreshes (they take about a
// second on two cores).
constexpr absl::Duration kRefreshPatience = absl::Minutes(10);

// ---- saying what happens ----------------------------------------------------

// "23,570".
std::string Count(int64_t n) {
  const std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Since(absl::Time start) {
  return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(absl::Now() - start));
}

void Say(absl::string_view line) { std::cerr << "demo: " << line << "\n"; }

// ---- calls ------------------------------------------------------------------

struct Services {
  std::unique_ptr<cuv1::CustomerService::Stub> customers;
  std::unique_ptr<pv1::PartnerService::Stub> partners;
  std::unique_ptr<fv1::FinancialCommunityService::Stub> community;
};

// Stubs of the three services, at --customer-addr, --partner-addr and
// --community-addr, else where `rapportctl overview` looks for them.
absl::StatusOr<Services> Connect(const Context& ctx) {
  Services s;
  RAPPORT_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::Channel> customers,
      ctx.ServiceChannel(CustomersApi::kAddrFlag, CustomersApi::kAddrEnv,
                         CustomersApi::kAddrDefault));
  s.customers = CustomersApi::Service::NewStub(customers);
  RAPPORT_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::Channel> partners,
      ctx.ServiceChannel(PartnersApi::kAddrFlag, PartnersApi::kAddrEnv,
                         PartnersApi::kAddrDefault));
  s.partners = PartnersApi::Service::NewStub(partners);
  RAPPORT_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::Channel> community,
      ctx.ServiceChannel(CommunityApi::kAddrFlag, CommunityApi::kAddrEnv,
                         CommunityApi::kAddrDefault));
  s.community = CommunityApi::Service::NewStub(community);
  return s;
}

// What a call to `service` answered, as a status that names the service.
absl::Status CallStatus(absl::string_view service, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  const absl::Status status = FromGrpcStatus(s);
  return absl::Status(status.code(),
                      absl::StrCat(service, " service: ", status.message()));
}

// Calls `call` again while the service turns it away for now (busy,
// restarting, or ABORTED: a deadlock between concurrent creates, which the
// next try usually passes); every creation the demo makes carries a request
// id, so a repeat stores nothing twice, and state moves go through Move. The
// waits grow, with jitter, so that the callers that collided do not collide
// again.
absl::Status WithRetries(absl::string_view service,
                         const std::function<grpc::Status()>& call) {
  thread_local absl::BitGen jitter;
  absl::Duration wait = absl::Milliseconds(10);
  for (int attempt = 1;; ++attempt) {
    const grpc::Status s = call();
    const bool transient =
        s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
        s.error_code() == grpc::StatusCode::ABORTED;
    if (s.ok() || !transient || attempt == 12) return CallStatus(service, s);
    absl::SleepFor(wait * absl::Uniform(jitter, 0.5, 1.5));
    wait = std::min(wait * 2, absl::Seconds(1));
  }
}

// A state move for WithRetries. Moves carry no request id: when a retry is
// refused with FAILED_PRECONDITION, the earlier try whose answer was lost
// has made the move already, and that is taken as done.
std::function<grpc::Status()> Move(std::function<grpc::Status()> call) {
  return [call = std::move(call), tries = 0]() mutable {
    const grpc::Status s = call();
    if (++tries > 1 &&
        s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      return grpc::Status::OK;
    }
    return s;
  };
}

// Calls `call(i)` for every i below `n`, kCallers at a time; the first error
// stops the rest. Says how far it got every few seconds.
absl::Status ForEach(size_t n, absl::string_view noun,
                     const std::function<absl::Status(size_t)>& call) {
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status error;
  auto work = [&] {
    for (size_t i = next++; i < n && !failed; i = next++) {
      if (absl::Status s = call(i); !s.ok()) {
        absl::MutexLock lock(&mu);
        if (error.ok()) error = s;
        failed = true;
      }
      ++done;
    }
  };
  std::vector<std::thread> callers;
  for (size_t t = 0; t < std::min(n, kCallers); ++t) callers.emplace_back(work);
  const absl::Time start = absl::Now();
  absl::Time said = start;
  while (done < n && !failed) {
    absl::SleepFor(absl::Milliseconds(100));
    if (absl::Now() - said >= absl::Seconds(3)) {
      said = absl::Now();
      Say(absl::StrCat(noun, ": ", Count(static_cast<int64_t>(done.load())),
                       "/", Count(static_cast<int64_t>(n)), " (", Since(start),
                       ")"));
    }
  }
  for (std::thread& t : callers) t.join();
  absl::MutexLock lock(&mu);
  return error;
}

// ---- running the commands a person would type -------------------------------

// While it lives, what is written to std::cout and std::cerr goes to `into`.
class CapturedOutput {
 public:
  explicit CapturedOutput(std::ostream& into)
      : out_(std::cout.rdbuf(into.rdbuf())),
        err_(std::cerr.rdbuf(into.rdbuf())) {}
  ~CapturedOutput() {
    std::cout.rdbuf(out_);
    std::cerr.rdbuf(err_);
  }
  CapturedOutput(const CapturedOutput&) = delete;
  CapturedOutput& operator=(const CapturedOutput&) = delete;

 private:
  std::streambuf* out_;
  std::streambuf* err_;
};

// Runs `rapportctl WORDS...` in this process through `run` (RunCustomers,
// ...), on the service that the demo's --`addr_flag` names (else where the
// command looks by itself), with the demo's token, TLS files and --timeout.
// What the command prints is shown (on stderr) only when it fails: the
// demo's stdout is the overview alone.
absl::Status RunCommand(const Context& ctx, const char* addr_flag,
                        const std::vector<std::string>& words,
                        int (*run)(Context&)) {
  std::vector<std::string> argv = {"rapportctl"};
  argv.insert(argv.end(), words.begin(), words.end());
  if (std::optional<std::string> addr = ctx.args.Get(addr_flag)) {
    argv.insert(argv.end(), {"--addr", *addr});
  }
  for (const char* flag : {"tls-ca", "tls-cert", "tls-key", "timeout"}) {
    if (std::optional<std::string> v = ctx.args.Get(flag)) {
      argv.insert(argv.end(), {absl::StrCat("--", flag), *v});
    }
  }
  // Every switch that decides how to connect, as the demo was given it.
  if (ctx.args.Has("allow-plaintext")) argv.push_back("--allow-plaintext=true");
  std::vector<char*> pointers;
  for (std::string& a : argv) pointers.push_back(a.data());
  RAPPORT_ASSIGN_OR_RETURN(
      Args args,
      Args::Parse(static_cast<int>(pointers.size()), pointers.data(), {}));
  Context command{std::move(args)};
  command.timeout = ctx.timeout;
  command.token = ctx.token;
  command.token_is_local = ctx.token_is_local;
  std::ostringstream said;
  int code;
  {
    CapturedOutput capture(said);
    code = run(command);
  }
  if (code == kExitOk) return absl::OkStatus();
  std::cerr << said.str();
  return absl::AbortedError(absl::StrCat(
      "the demo stopped at `rapportctl ", absl::StrJoin(words, " "), "` (exit ",
      code, "); what it loaded before stays loaded"));
}

// A directory of its own under $TMPDIR for the files the demo imports,
// removed with them.
class ScratchDir {
 public:
  static absl::StatusOr<std::unique_ptr<ScratchDir>> Create() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "rapport-demo-XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot make a directory like ", pattern));
    }
    return std::unique_ptr<ScratchDir>(new ScratchDir(std::move(pattern)));
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Writes `rows` as the file `name` in the directory; returns its path.
  absl::StatusOr<std::string> Write(absl::string_view name,
                                    const demo::CsvRows& rows) const {
    const std::string path = absl::StrCat(path_, "/", name);
    std::ofstream file(path, std::ios::binary);
    CsvWriter csv(&file);
    csv.WriteRow(rows.header);
    for (const std::vector<std::string>& row : rows.rows) csv.WriteRow(row);
    file.close();
    if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
    return path;
  }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// `rapportctl <counterpart> import KIND FILE` of `rows`, under an import id
// of the demo's.
absl::Status Import(const Context& ctx, const ScratchDir& dir,
                    const char* addr_flag, int (*run)(Context&),
                    const std::string& counterpart, const std::string& kind,
                    const demo::CsvRows& rows, int streams) {
  const absl::Time start = absl::Now();
  RAPPORT_ASSIGN_OR_RETURN(
      std::string path,
      dir.Write(absl::StrCat(counterpart, "-", kind, ".csv"), rows));
  RAPPORT_RETURN_IF_ERROR(
      RunCommand(ctx, addr_flag,
                 {counterpart, "import", kind, path, "--import-id",
                  absl::StrCat("demo-", counterpart, "-", kind), "--streams",
                  absl::StrCat(streams)},
                 run));
  Say(absl::StrCat(Count(static_cast<int64_t>(rows.rows.size())), " ", kind,
                   " imported (", Since(start), ")"));
  return absl::OkStatus();
}

absl::StatusOr<google::type::Money> AsMoney(const Decimal& amount,
                                            absl::string_view field) {
  return ToMoney(amount, "", field);  // the deployment's currency
}

// ---- the three counterparts -------------------------------------------------

// FAILED_PRECONDITION naming each service that holds data already.
absl::Status CheckEmpty(const Context& ctx, Services& s) {
  std::vector<std::string> holding;
  {
    cuv1::ListCustomersRequest request;
    request.set_page_size(1);
    cuv1::ListCustomersResponse response;
    RAPPORT_RETURN_IF_ERROR(CallStatus(
        "customer",
        s.customers->ListCustomers(ctx.NewCall().get(), request, &response)));
    if (response.customers_size() > 0) {
      holding.push_back("the customer service already holds customers");
    }
  }
  {
    pv1::ListPartnersRequest request;
    request.set_page_size(1);
    pv1::ListPartnersResponse response;
    RAPPORT_RETURN_IF_ERROR(CallStatus(
        "partner",
        s.partners->ListPartners(ctx.NewCall().get(), request, &response)));
    if (response.partners_size() > 0) {
      holding.push_back("the partner service already holds partners");
    }
  }
  {
    fv1::ListMembersRequest request;
    request.set_page_size(1);
    fv1::ListMembersResponse response;
    RAPPORT_RETURN_IF_ERROR(CallStatus(
        "financial-community",
        s.community->ListMembers(ctx.NewCall().get(), request, &response)));
    if (response.members_size() > 0) {
      holding.push_back(
          "the financial-community service already holds members");
    }
  }
  {
    // Programs too: the demo's own (by name, which is unique) would clash.
    pv1::ListProgramsRequest request;
    request.set_page_size(1);
    pv1::ListProgramsResponse response;
    RAPPORT_RETURN_IF_ERROR(CallStatus(
        "partner",
        s.partners->ListPrograms(ctx.NewCall().get(), request, &response)));
    if (response.programs_size() > 0) {
      holding.push_back("the partner service already holds programs");
    }
  }
  if (holding.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the demo loads into an empty platform; ", absl::StrJoin(holding, "; ")));
}

// The demo requests, claims and decides its funds as one caller, which takes
// force: an admin's. Asked to approve, with force, a fund request that does
// not exist, an admin is told NOT_FOUND and anyone else PERMISSION_DENIED,
// and nothing is written either way.
absl::Status CheckMayForce(const Context& ctx, Services& s) {
  pv1::TransitionFundRequestRequest request;
  request.set_id(std::string(26, '0'));
  request.set_state(pv1::FUND_REQUEST_STATE_APPROVED);
  request.set_force(true);
  pv1::TransitionFundRequestResponse response;
  const absl::Status probe =
      CallStatus("partner", s.partners->TransitionFundRequest(
                                ctx.NewCall().get(), request, &response));
  if (absl::IsPermissionDenied(probe)) {
    return absl::PermissionDeniedError(
        "the demo decides the funds it requests itself, which takes force: "
        "give it an admin's token (deploy/local/run writes one)");
  }
  if (probe.ok() || absl::IsNotFound(probe)) return absl::OkStatus();
  return probe;
}

absl::Status LoadCustomers(const Context& ctx, Services& s,
                           const ScratchDir& dir,
                           const demo::CustomerPopulation& p) {
  const absl::Time start = absl::Now();
  RAPPORT_RETURN_IF_ERROR(
      ForEach(p.customers.size(), "customers", [&](size_t i) {
        const demo::Customer& c = p.customers[i];
        cuv1::CreateCustomerRequest request;
        cuv1::Customer* customer = request.mutable_customer();
        customer->set_display_name(c.display_name);
        customer->set_email(c.email);
        cuv1::ExternalId* id = customer->add_external_ids();
        id->set_source(c.external_source);
        id->set_id(c.external_id);
        request.set_request_id(
            absl::StrCat("demo-", c.external_source, "-", c.external_id));
        cuv1::CreateCustomerResponse response;
        return WithRetries("customer", [&] {
          return s.customers->CreateCustomer(ctx.NewCall().get(), request,
                                             &response);
        });
      }));
  Say(absl::StrCat(Count(static_cast<int64_t>(p.customers.size())),
                   " customers created (", Since(start), ")"));
  RAPPORT_RETURN_IF_ERROR(Import(ctx, dir, CustomersApi::kAddrFlag,
                                 RunCustomers, "customers", "purchases",
                                 p.purchases, 4));
  return Import(ctx, dir, CustomersApi::kAddrFlag, RunCustomers, "customers",
                "interactions", p.interactions, 4);
}

// Moves a fund request through each state up to the one it ends in.
absl::Status MoveFund(const Context& ctx, pv1::PartnerService::Stub& stub,
                      const std::string& id, const demo::Fund& fund) {
  std::vector<pv1::FundRequestState> steps;
  switch (fund.state) {
    case pv1::FUND_REQUEST_STATE_REJECTED:
      steps = {pv1::FUND_REQUEST_STATE_REJECTED};
      break;
    case pv1::FUND_REQUEST_STATE_APPROVED:
      steps = {pv1::FUND_REQUEST_STATE_APPROVED};
      break;
    case pv1::FUND_REQUEST_STATE_CLAIMED:
    case pv1::FUND_REQUEST_STATE_CLAIM_REJECTED:
    case pv1::FUND_REQUEST_STATE_PAID:
      steps = {pv1::FUND_REQUEST_STATE_APPROVED,
               pv1::FUND_REQUEST_STATE_CLAIMED};
      if (fund.state != pv1::FUND_REQUEST_STATE_CLAIMED) {
        steps.push_back(fund.state);
      }
      break;
    default:
      break;
  }
  for (pv1::FundRequestState to : steps) {
    pv1::TransitionFundRequestRequest request;
    request.set_id(id);
    request.set_state(to);
    if (to == pv1::FUND_REQUEST_STATE_CLAIMED) {
      RAPPORT_ASSIGN_OR_RETURN(*request.mutable_claimed_amount(),
                               AsMoney(fund.claimed, "claimed_amount"));
      *request.mutable_time() = ToTimestamp(fund.claim_us);
    }
    if (to == pv1::FUND_REQUEST_STATE_PAID) {
      *request.mutable_time() = ToTimestamp(fund.paid_us);
    }
    // One caller requests, claims and decides every fund of the demo: its
    // own decisions, which take force (an admin's, audited).
    request.set_force(to == pv1::FUND_REQUEST_STATE_APPROVED ||
                      to == pv1::FUND_REQUEST_STATE_PAID);
    pv1::TransitionFundRequestResponse response;
    RAPPORT_RETURN_IF_ERROR(WithRetries("partner", Move([&] {
                                          return stub.TransitionFundRequest(
                                              ctx.NewCall().get(), request,
                                              &response);
                                        })));
  }
  return absl::OkStatus();
}

absl::Status LoadPartners(const Context& ctx, Services& s,
                          const ScratchDir& dir,
                          const demo::PartnerPopulation& p) {
  const absl::Time start = absl::Now();
  std::vector<std::string> ids(p.partners.size());
  // A suspended or ended partner enters no agreement and asks for no funds:
  // those are made while it was active, and it is suspended or ended last.
  auto later = [&](const demo::Partner& d) {
    return d.lifecycle == pv1::LIFECYCLE_SUSPENDED ||
           d.lifecycle == pv1::LIFECYCLE_ENDED;
  };
  RAPPORT_RETURN_IF_ERROR(ForEach(p.partners.size(), "partners", [&](size_t i) {
    const demo::Partner& d = p.partners[i];
    pv1::CreatePartnerRequest request;
    pv1::Partner* partner = request.mutable_partner();
    partner->set_display_name(d.display_name);
    partner->set_kind(d.kind);
    partner->set_lifecycle(later(d) ? pv1::LIFECYCLE_ACTIVE : d.lifecycle);
    partner->set_region(d.region);
    *partner->add_contacts() = d.contact;
    cv1::ExternalId* id = partner->add_external_ids();
    id->set_source(demo::kDemoSource);
    id->set_id(d.external_id);
    request.set_request_id(absl::StrCat("demo-partner-", d.external_id));
    pv1::CreatePartnerResponse response;
    RAPPORT_RETURN_IF_ERROR(WithRetries("partner", [&] {
      return s.partners->CreatePartner(ctx.NewCall().get(), request, &response);
    }));
    ids[i] = response.partner().id();
    return absl::OkStatus();
  }));

  std::vector<std::string> programs;
  for (const demo::Program& d : p.programs) {
    pv1::CreateProgramRequest request;
    request.mutable_program()->set_name(d.name);
    for (const demo::ProgramTerm& t : d.terms) {
      pv1::ProgramTerms* terms = request.mutable_program()->add_terms();
      terms->set_tier(t.tier);
      terms->set_commission_percent(t.commission_percent);
    }
    request.set_request_id(absl::StrCat("demo-program-", d.name));
    pv1::CreateProgramResponse response;
    RAPPORT_RETURN_IF_ERROR(WithRetries("partner", [&] {
      return s.partners->CreateProgram(ctx.NewCall().get(), request, &response);
    }));
    programs.push_back(response.program().id());
  }
  RAPPORT_RETURN_IF_ERROR(
      ForEach(p.agreements.size(), "agreements", [&](size_t i) {
        const demo::Agreement& d = p.agreements[i];
        pv1::CreateAgreementRequest request;
        pv1::Agreement* agreement = request.mutable_agreement();
        agreement->set_partner_id(ids[d.partner]);
        agreement->set_program_id(programs[d.program]);
        *agreement->mutable_start_time() = ToTimestamp(d.start_us);
        request.set_request_id(
            absl::StrCat("demo-agreement-", p.partners[d.partner].external_id));
        pv1::CreateAgreementResponse created;
        RAPPORT_RETURN_IF_ERROR(WithRetries("partner", [&] {
          return s.partners->CreateAgreement(ctx.NewCall().get(), request,
                                             &created);
        }));
        if (d.state == pv1::AGREEMENT_STATE_DRAFT) return absl::OkStatus();
        pv1::TransitionAgreementRequest move;
        move.set_id(created.agreement().id());
        move.set_state(d.state);
        pv1::TransitionAgreementResponse moved;
        return WithRetries("partner", Move([&] {
                             return s.partners->TransitionAgreement(
                                 ctx.NewCall().get(), move, &moved);
                           }));
      }));
  Say(absl::StrCat(Count(static_cast<int64_t>(p.partners.size())),
                   " partners, ", p.programs.size(), " programs, ",
                   Count(static_cast<int64_t>(p.agreements.size())),
                   " agreements created (", Since(start), ")"));

  // One stream: registrations claim accounts in the file's order, so each
  // conflict made on purpose names the registration meant to be first.
  RAPPORT_RETURN_IF_ERROR(Import(ctx, dir, PartnersApi::kAddrFlag, RunPartners,
                                 "partners", "deals", p.deals, 1));
  RAPPORT_RETURN_IF_ERROR(Import(ctx, dir, PartnersApi::kAddrFlag, RunPartners,
                                 "partners", "orders", p.orders, 2));
  RAPPORT_RETURN_IF_ERROR(Import(ctx, dir, PartnersApi::kAddrFlag, RunPartners,
                                 "partners", "interactions", p.interactions,
                                 2));

  const absl::Time funds_start = absl::Now();
  RAPPORT_RETURN_IF_ERROR(ForEach(p.funds.size(), "funds", [&](size_t i) {
    const demo::Fund& d = p.funds[i];
    pv1::RequestFundsRequest request;
    pv1::FundRequest* fund = request.mutable_fund_request();
    fund->set_partner_id(ids[d.partner]);
    fund->set_activity(d.activity);
    RAPPORT_ASSIGN_OR_RETURN(*fund->mutable_requested_amount(),
                             AsMoney(d.requested, "requested_amount"));
    request.set_request_id(absl::StrCat("demo-fund-", i + 1));
    pv1::RequestFundsResponse response;
    RAPPORT_RETURN_IF_ERROR(WithRetries("partner", [&] {
      return s.partners->RequestFunds(ctx.NewCall().get(), request, &response);
    }));
    return MoveFund(ctx, *s.partners, response.fund_request().id(), d);
  }));
  RAPPORT_RETURN_IF_ERROR(ForEach(p.partners.size(), "partners", [&](size_t i) {
    const demo::Partner& d = p.partners[i];
    if (!later(d)) return absl::OkStatus();
    pv1::UpdatePartnerRequest request;
    request.mutable_partner()->set_id(ids[i]);
    request.mutable_partner()->set_lifecycle(d.lifecycle);
    request.mutable_update_mask()->add_paths("lifecycle");
    pv1::UpdatePartnerResponse response;
    return WithRetries("partner", [&] {
      return s.partners->UpdatePartner(ctx.NewCall().get(), request, &response);
    });
  }));
  Say(absl::StrCat(p.funds.size(), " fund requests (", p.conflicts,
                   " deals in conflict) (", Since(funds_start), ")"));
  return absl::OkStatus();
}

absl::Status LoadCommunity(const Context& ctx, Services& s,
                           const ScratchDir& dir,
                           const demo::CommunityPopulation& p) {
  const absl::Time start = absl::Now();
  RAPPORT_RETURN_IF_ERROR(ForEach(p.members.size(), "members", [&](size_t i) {
    const demo::Member& d = p.members[i];
    fv1::CreateMemberRequest request;
    fv1::Member* member = request.mutable_member();
    member->set_display_name(d.display_name);
    member->set_kind(d.kind);
    member->set_type(d.type);
    member->set_organisation(d.organisation);
    *member->add_contacts() = d.contact;
    cv1::ExternalId* id = member->add_external_ids();
    id->set_source(demo::kDemoSource);
    id->set_id(d.external_id);
    request.set_request_id(absl::StrCat("demo-member-", d.external_id));
    fv1::CreateMemberResponse response;
    return WithRetries("financial-community", [&] {
      return s.community->CreateMember(ctx.NewCall().get(), request, &response);
    });
  }));
  Say(absl::StrCat(Count(static_cast<int64_t>(p.members.size())),
                   " members of the financial community created (",
                   Since(start), ")"));
  for (const auto& [kind, rows] :
       {std::pair<std::string, const demo::CsvRows*>{"holdings", &p.holdings},
        {"engagements", &p.engagements},
        {"coverage", &p.coverage}}) {
    RAPPORT_RETURN_IF_ERROR(Import(ctx, dir, CommunityApi::kAddrFlag,
                                   RunCommunity, "community", kind, *rows, 2));
  }
  return absl::OkStatus();
}

// ---- scores -----------------------------------------------------------------

// A refresh job running on one service, and how to ask after it.
struct Refresh {
  std::string noun;  // "customers"
  cv1::RefreshJob job;
  std::function<grpc::Status(const std::string& id, cv1::RefreshJob* job)> get;
};

// Starts the refresh of every entity of a service as of `as_of_us` (all
// their history, 5 bins: the defaults of `refresh-scores`).
template <typename Request, typename Response, typename GetRequest,
          typename GetResponse, typename Stub>
absl::StatusOr<Refresh> StartRefresh(const Context& ctx, Stub& stub,
                                     const char* service, std::string noun,
                                     int64_t as_of_us,
                                     const std::string& run_id) {
  Request request;
  *request.mutable_as_of() = ToTimestamp(as_of_us);
  // Retried while the service is away for a moment; the request id (this
  // run's: a platform wiped and loaded again keeps its old jobs) makes a
  // retry whose first try started the job answer with that job.
  request.set_request_id(absl::StrCat("demo-refresh-", noun, "-", run_id));
  Response response;
  RAPPORT_RETURN_IF_ERROR(WithRetries(service, [&] {
    response.Clear();
    return stub.RefreshScores(ctx.NewCall().get(), request, &response);
  }));
  return Refresh{std::move(noun), response.job(),
                 [&ctx, &stub](const std::string& id, cv1::RefreshJob* job) {
                   GetRequest get;
                   get.set_id(id);
                   GetResponse got;
                   grpc::Status s =
                       stub.GetRefreshJob(ctx.NewCall().get(), get, &got);
                   if (s.ok()) *job = got.job();
                   return s;
                 }};
}

// Polls the jobs (as `refresh-scores` does) until every one has ended; an
// error when one failed.
absl::Status WaitFor(std::vector<Refresh>& refreshes) {
  const absl::Time start = absl::Now();
  absl::Time said = start;
  for (;;) {
    if (absl::Now() - start > kRefreshPatience) {
      return absl::DeadlineExceededError(
          absl::StrCat("the score refreshes did not end within ",
                       absl::FormatDuration(kRefreshPatience),
                       "; see rapportctl <counterpart> refresh-job ID"));
    }
    bool running = false;
    for (Refresh& r : refreshes) {
      if (r.job.state() != cv1::RefreshJob::STATE_RUNNING) continue;
      // The job runs on while a replica restarts under the poll: asked
      // again (within kRefreshPatience) rather than given up.
      const grpc::Status got = r.get(r.job.id(), &r.job);
      if (got.error_code() == grpc::StatusCode::UNAVAILABLE ||
          got.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        running = true;
        continue;
      }
      RAPPORT_RETURN_IF_ERROR(CallStatus(r.noun, got));
      if (r.job.state() == cv1::RefreshJob::STATE_FAILED) {
        return absl::InternalError(absl::StrCat("the refresh ", r.job.id(),
                                                " of the ", r.noun,
                                                " failed: ", r.job.error()));
      }
      running = running || r.job.state() == cv1::RefreshJob::STATE_RUNNING;
    }
    if (!running) return absl::OkStatus();
    if (absl::Now() - said >= absl::Seconds(3)) {
      said = absl::Now();
      std::vector<std::string> parts;
      for (const Refresh& r : refreshes) {
        parts.push_back(absl::StrCat(r.noun, " ", Count(r.job.done()), "/",
                                     Count(r.job.total())));
      }
      Say(absl::StrCat("refreshing scores: ", absl::StrJoin(parts, ", "), " (",
                       Since(start), ")"));
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
}

absl::Status RefreshAll(const Context& ctx, Services& s,
                        int64_t customers_as_of_us, int64_t as_of_us) {
  const absl::Time start = absl::Now();
  const std::string run_id = absl::StrCat(
      absl::ToUnixMicros(start), "-", absl::Uniform<uint32_t>(absl::BitGen()));
  std::vector<Refresh> refreshes;
  RAPPORT_ASSIGN_OR_RETURN(
      Refresh customers,
      (StartRefresh<cuv1::RefreshScoresRequest, cuv1::RefreshScoresResponse,
                    cuv1::GetRefreshJobRequest, cuv1::GetRefreshJobResponse>(
          ctx, *s.customers, "customer", "customers", customers_as_of_us,
          run_id)));
  refreshes.push_back(std::move(customers));
  RAPPORT_ASSIGN_OR_RETURN(
      Refresh partners,
      (StartRefresh<pv1::RefreshScoresRequest, pv1::RefreshScoresResponse,
                    pv1::GetRefreshJobRequest, pv1::GetRefreshJobResponse>(
          ctx, *s.partners, "partner", "partners", as_of_us, run_id)));
  refreshes.push_back(std::move(partners));
  RAPPORT_ASSIGN_OR_RETURN(
      Refresh members,
      (StartRefresh<fv1::RefreshScoresRequest, fv1::RefreshScoresResponse,
                    fv1::GetRefreshJobRequest, fv1::GetRefreshJobResponse>(
          ctx, *s.community, "financial-community", "members", as_of_us,
          run_id)));
  refreshes.push_back(std::move(members));
  RAPPORT_RETURN_IF_ERROR(WaitFor(refreshes));
  Say(absl::StrCat("scores refreshed: customers as of ",
                   FormatRfc3339Micros(customers_as_of_us),
                   ", partners and members as of ",
                   FormatRfc3339Micros(as_of_us), " (", Since(start), ")"));
  return absl::OkStatus();
}

// ---- the command ------------------------------------------------------------

struct Options {
  std::optional<std::string> cdnow;
  uint64_t seed = 1;
  std::optional<int> customers;
};

// The public CDNOW log beside the checkout of the working directory, or of
// the build that holds this rapportctl.
std::optional<std::string> FindCdnow() {
  std::vector<std::filesystem::path> bases;
  std::error_code error;
  std::filesystem::path cwd = std::filesystem::current_path(error);
  if (!error) bases.push_back(cwd);
  std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) bases.push_back(exe.parent_path());
  return demo::FindCdnowLog(bases);
}

absl::StatusOr<Options> ReadOptions(const Args& args) {
  std::set<std::string> known = {"cdnow", "seed", "customers"};
  known.insert(std::begin(kCounterpartAddrFlags),
               std::end(kCounterpartAddrFlags));
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  known.erase("addr");  // three services: the flags above say where
  RAPPORT_RETURN_IF_ERROR(args.CheckKnown(known));
  if (args.positional().size() != 2 || args.positional()[1] != "load") {
    return absl::InvalidArgumentError(kUsage);
  }
  Options options;
  options.cdnow = args.Get("cdnow");
  if (!options.cdnow.has_value()) {
    options.cdnow = FindCdnow();
  } else if (*options.cdnow == "none") {
    options.cdnow.reset();
  }
  RAPPORT_ASSIGN_OR_RETURN(int seed, IntFlag(args, "seed", 1));
  if (seed < 0) return absl::InvalidArgumentError("--seed: must be 0 or more");
  options.seed = static_cast<uint64_t>(seed);
  if (args.Has("customers")) {
    RAPPORT_ASSIGN_OR_RETURN(int n, IntFlag(args, "customers", 0));
    if (n < 1 || n > 1'000'000) {
      return absl::InvalidArgumentError(
          "--customers: want a number from 1 to 1000000");
    }
    options.customers = n;
  }
  return options;
}

// The customers: the log's, when there is one, else generated.
absl::StatusOr<demo::CustomerPopulation> Customers(const Options& options,
                                                   int64_t now_us) {
  if (!options.cdnow) {
    return demo::GenerateCustomers(
        options.seed, options.customers.value_or(kDefaultCustomers), now_us);
  }
  std::ifstream file(*options.cdnow, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("--cdnow: cannot read ", *options.cdnow));
  }
  RAPPORT_ASSIGN_OR_RETURN(std::vector<demo::CdnowPurchase> log,
                           demo::ParseCdnow(text.str(), *options.cdnow));
  return demo::CustomersFromCdnow(
      log, options.seed, static_cast<size_t>(options.customers.value_or(0)));
}

}  // namespace

int RunDemo(Context& ctx) {
  absl::StatusOr<Options> options = ReadOptions(ctx.args);
  if (!options.ok()) return UsageError(options.status());
  const absl::Time start = absl::Now();
  // Dates are drawn back from today's midnight (UTC), so that the same seed
  // gives the same population all day.
  const int64_t now_us = absl::ToUnixMicros(absl::FromCivil(
      absl::ToCivilDay(start, absl::UTCTimeZone()), absl::UTCTimeZone()));
  // The log is read first: a bad file stops the demo before any call.
  absl::StatusOr<demo::CustomerPopulation> customers =
      Customers(*options, now_us);
  if (!customers.ok()) return ReportError(customers.status());

  absl::StatusOr<Services> services = Connect(ctx);
  if (!services.ok()) return UsageError(services.status());
  if (absl::Status admin = CheckMayForce(ctx, *services); !admin.ok()) {
    return ReportError(admin);
  }
  if (absl::Status empty = CheckEmpty(ctx, *services); !empty.ok()) {
    return ReportError(empty);
  }
  absl::StatusOr<std::unique_ptr<ScratchDir>> dir = ScratchDir::Create();
  if (!dir.ok()) return ReportError(dir.status());

  Say(absl::StrCat(
      "loading ", Count(static_cast<int64_t>(customers->customers.size())),
      " customers and ",
      Count(static_cast<int64_t>(customers->purchases.rows.size())),
      " purchases (", options->cdnow ? "the CDNOW log" : "generated",
      "), partners and a financial community; seed ", options->seed));
  const demo::PartnerPopulation partners =
      demo::GeneratePartners(options->seed, now_us);
  const demo::CommunityPopulation community =
      demo::GenerateCommunity(options->seed, now_us);
  if (absl::Status s = LoadCustomers(ctx, *services, **dir, *customers);
      !s.ok()) {
    return ReportError(s);
  }
  if (absl::Status s = LoadPartners(ctx, *services, **dir, partners); !s.ok()) {
    return ReportError(s);
  }
  if (absl::Status s = LoadCommunity(ctx, *services, **dir, community);
      !s.ok()) {
    return ReportError(s);
  }
  if (absl::Status s = RefreshAll(ctx, *services, customers->as_of_us, now_us);
      !s.ok()) {
    return ReportError(s);
  }
  Say(absl::StrCat("loaded in ", Since(start)));
  overview::Print(ctx.format, overview::Gather(ctx), std::cout);
  return kExitOk;
}

}  // namespace rapport::ctl
