// Crashes through the real binaries, under load:
//   - a kill -9 of the customer service loses no acknowledged write, and
//     retries with the same request ids after the restart store nothing twice;
//   - a kill -9 of MariaDB makes calls UNAVAILABLE, and the service recovers
//     by itself once the database is back, with every acknowledged write;
//   - a scoring replica killed during a refresh fails that refresh cleanly or
//     lets it finish on the other replica, never publishing half a set, while
//     the other replica keeps serving;
//   - a customer replica killed during a refresh leaves a job that the next
//     refresh finds ended within seconds, not after its heartbeat goes stale;
//   - a replica told to stop before it serves (waiting for its database)
//     stops at once;
//   - a customer replica killed during an import leaves its stream's rows
//     to the other replica, each stored once.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tests/support/mariadb.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

namespace v1 = ::rapport::customer::v1;
using testing::AuthorizedContext;
using testing::Platform;
using testing::PlatformOptions;
using testing::RunResult;
using testing::TestMariaDb;

std::unique_ptr<v1::CustomerService::Stub> Stub(const std::string& address) {
  return v1::CustomerService::NewStub(*MakeChannel(address, {}));
}

std::string CreateCustomer(v1::CustomerService::Stub& stub,
                           const std::string& name) {
  AuthorizedContext context("writer");
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name(name);
  v1::CreateCustomerResponse response;
  grpc::Status s = stub.CreateCustomer(&context, request, &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return response.customer().id();
}

// One RecordPurchase the test made: what it asked, and what it was told.
struct Write {
  std::string request_id;
  std::string customer_id;
  int64_t seconds = 0;
  int64_t units = 0;
  bool acknowledged = false;
  std::string purchase_id;
};

grpc::Status Record(v1::CustomerService::Stub& stub, const Write& w,
                    std::string* purchase_id) {
  AuthorizedContext context("writer");
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::RecordPurchaseRequest request;
  request.set_customer_id(w.customer_id);
  request.set_request_id(w.request_id);
  v1::Purchase* p = request.mutable_purchase();
  p->mutable_purchase_time()->set_seconds(w.seconds);
  p->mutable_amount()->set_currency_code("USD");
  p->mutable_amount()->set_units(w.units);
  v1::RecordPurchaseResponse response;
  grpc::Status s = stub.RecordPurchase(&context, request, &response);
  if (s.ok()) *purchase_id = response.purchase().id();
  return s;
}

// Every purchase id stored for the customers, through ListPurchases.
std::multiset<std::string> StoredPurchases(
    v1::CustomerService::Stub& stub, const std::vector<std::string>& ids) {
  std::multiset<std::string> out;
  for (const std::string& id : ids) {
    std::string token;
    do {
      AuthorizedContext context("reader");
      v1::ListPurchasesRequest request;
      request.set_customer_id(id);
      request.set_page_size(1000);
      request.set_page_token(token);
      v1::ListPurchasesResponse response;
      grpc::Status s = stub.ListPurchases(&context, request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) return out;
      for (const v1::Purchase& p : response.purchases()) out.insert(p.id());
      token = response.next_page_token();
    } while (!token.empty());
  }
  return out;
}

// Writers that record purchases as fast as the service takes them, each
// under a request id of its own, until stopped; they note every answer.
class Load {
 public:
  Load(std::string address, std::vector<std::string> customers, int writers)
      : address_(std::move(address)), customers_(std::move(customers)) {
    for (int t = 0; t < writers; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int64_t acknowledged() const { return acknowledged_.load(); }
  int64_t failed() const { return failed_.load(); }
  std::vector<Write> writes() {
    absl::MutexLock lock(&mu_);
    return writes_;
  }

 private:
  void Run(int t) {
    auto stub = Stub(address_);
    for (int i = 0; !stop_; ++i) {
      Write w;
      w.request_id = absl::StrCat("load-", t, "-", i);
      w.customer_id = customers_[(t + i) % customers_.size()];
      w.seconds = 1700000000 + t * 100000 + i;
      w.units = 1 + (i % 97);
      grpc::Status s = Record(*stub, w, &w.purchase_id);
      w.acknowledged = s.ok();
      if (s.ok()) {
        ++acknowledged_;
      } else {
        ++failed_;
        // Only the outage's codes: nothing else may come of a crash.
        EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                    s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                    s.error_code() == grpc::StatusCode::CANCELLED)
            << s.error_code() << " " << s.error_message();
        absl::SleepFor(absl::Milliseconds(20));
      }
      absl::MutexLock lock(&mu_);
      writes_.push_back(std::move(w));
    }
  }

  const std::string address_;
  const std::vector<std::string> customers_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acknowledged_{0};
  std::atomic<int64_t> failed_{0};
  absl::Mutex mu_;
  std::vector<Write> writes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

void WaitForAcknowledged(const Load& load, int64_t n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (load.acknowledged() < n && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(load.acknowledged(), n);
}

// Bytes received and not yet read on the established TCP connections of
// the server listening at `addr` ("127.0.0.1:PORT"), from /proc/net/tcp: a
// stopped server's pending calls.
int64_t UnreadBytesAt(const std::string& addr) {
  const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
  int64_t unread = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    for (const std::string& line : testing::Lines(testing::ReadFile(table))) {
      // sl local_address rem_address st tx_queue:rx_queue ...
      std::vector<std::string> f =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (f.size() < 5 || f[3] != "01") continue;  // established only
      const size_t colon = f[1].rfind(':');
      if (colon == std::string::npos ||
          std::stoi(f[1].substr(colon + 1), nullptr, 16) != port) {
        continue;
      }
      unread += std::stoll(f[4].substr(f[4].find(':') + 1), nullptr, 16);
    }
  }
  return unread;
}

// Purchases of two customers, for a refresh with something to score.
void ImportTwoBuyers(const Platform& platform) {
  ASSERT_EQ(platform
                .Ctl({"customers", "import", "purchases",
                      platform.File("p.csv",
                                    "customer_ref,timestamp,amount\n"
                                    "ext:shop:1,2024-03-01T12:00:00Z,10\n"
                                    "ext:shop:2,2024-04-01T12:00:00Z,20\n")})
                .exit_code,
            0)
      << platform.logs();
}

// Whether a call reaches the stopped server at `addr` within 30 s: its
// bytes wait there unread.
bool CallWaitsAt(const std::string& addr) {
  for (int i = 0; i < 3000; ++i) {
    if (UnreadBytesAt(addr) > 0) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

void Kill(testing::Process& process) {
  ASSERT_EQ(::kill(process.pid(), SIGKILL), 0);
  EXPECT_EQ(process.Wait(), 128 + SIGKILL);
}

TEST(CrashE2E,
     KilledCustomerServiceLosesNoAcknowledgedWriteAndRetriesStoreNothingTwice) {
  Platform platform;
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  std::vector<std::string> customers;
  {
    auto stub = Stub(platform.customer().addr());
    for (int i = 0; i < 8; ++i) {
      customers.push_back(CreateCustomer(*stub, absl::StrCat("c", i)));
    }
  }
  Load load(platform.customer().addr(), customers, 8);
  WaitForAcknowledged(load, 200);
  Kill(platform.customer().process());  // mid-load: calls are in flight
  // Calls fail while the service is down: stop once one has.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (load.failed() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  load.Stop();
  std::vector<Write> writes = load.writes();
  const int64_t acknowledged = load.acknowledged();
  ASSERT_GT(static_cast<int64_t>(writes.size()), acknowledged)
      << "no call failed: the kill came after the load";

  platform.RestartCustomer();
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  auto stub = Stub(platform.customer().addr());
  // Every acknowledged write is there, once.
  std::multiset<std::string> stored = StoredPurchases(*stub, customers);
  for (const Write& w : writes) {
    if (w.acknowledged) {
      EXPECT_EQ(stored.count(w.purchase_id), 1u) << w.request_id;
    }
  }
  EXPECT_GE(static_cast<int64_t>(stored.size()), acknowledged);
  // A client retries everything it was not told about, and, not knowing
  // better, what it was told about too: nothing is stored twice, and an
  // acknowledged write answers with its purchase.
  for (const Write& w : writes) {
    std::string id;
    grpc::Status s = Record(*stub, w, &id);
    ASSERT_TRUE(s.ok()) << w.request_id << ": " << s.error_message();
    if (w.acknowledged) {
      EXPECT_EQ(id, w.purchase_id) << w.request_id;
    }
  }
  stored = StoredPurchases(*stub, customers);
  EXPECT_EQ(stored.size(), writes.size());
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()).size(),
            writes.size());
}

TEST(CrashE2E, KilledDatabaseGivesUnavailableAndTheServiceRecoversByItself) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  PlatformOptions options;
  options.customer_database = db->CreateDatabase();
  options.partner = true;
  options.partner_database = db->CreateDatabase();
  options.community = true;
  options.community_database = db->CreateDatabase();
  Platform platform(options);
  for (const std::string& addr :
       {platform.customer().addr(), platform.partner().addr(),
        platform.community().addr()}) {
    ASSERT_EQ(
        platform.Ctl({"health", "--wait", "20s", "--addr", addr}).exit_code, 0)
        << platform.logs();
  }
  const pid_t partner_pid = platform.partner().process().pid();
  const pid_t community_pid = platform.community().process().pid();
  std::vector<std::string> customers;
  auto stub = Stub(platform.customer().addr());
  for (int i = 0; i < 4; ++i) {
    customers.push_back(CreateCustomer(*stub, absl::StrCat("c", i)));
  }
  const pid_t pid = platform.customer().process().pid();
  Load load(platform.customer().addr(), customers, 4);
  WaitForAcknowledged(load, 100);
  db->Kill();
  // Calls during the outage are UNAVAILABLE (the load checks every answer),
  // and health says NOT_SERVING.
  RunResult health = platform.Ctl({"health"});
  for (int i = 0; i < 100 && health.exit_code != 3; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    health = platform.Ctl({"health"});
  }
  EXPECT_EQ(health.exit_code, 3) << health.out << health.err;
  {
    AuthorizedContext context("reader");
    v1::GetCustomerRequest request;
    request.set_id(customers[0]);
    v1::GetCustomerResponse response;
    grpc::Status s = stub->GetCustomer(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << s.error_message();
    // Nothing of the database's internals reaches the client.
    EXPECT_FALSE(absl::StrContains(s.error_message(), "127.0.0.1"))
        << s.error_message();
    // A write likewise (whether or not one of the load's met the outage).
    std::string purchase_id;
    grpc::Status written = Record(
        *stub, {"outage-write", customers[0], 1700000000, 7}, &purchase_id);
    EXPECT_EQ(written.error_code(), grpc::StatusCode::UNAVAILABLE)
        << written.error_message();
  }
  // The partner and financial-community services likewise: UNAVAILABLE,
  // with nothing of the database in the message.
  for (const std::vector<std::string>& call :
       std::vector<std::vector<std::string>>{{"partners", "list"},
                                             {"community", "list"}}) {
    RunResult r = platform.Ctl(call);
    EXPECT_NE(r.exit_code, 0) << call[0];
    EXPECT_TRUE(absl::StrContains(r.err, "UNAVAILABLE")) << r.err;
    EXPECT_FALSE(absl::StrContains(r.err, "127.0.0.1")) << r.err;
  }
  load.Stop();
  const std::vector<Write> writes = load.writes();

  db->Start();
  RunResult back = platform.Ctl({"health", "--wait", "30s"});
  EXPECT_EQ(back.exit_code, 0) << back.out << back.err;
  // The other services come back by themselves too, never restarted.
  for (const std::string& addr :
       {platform.partner().addr(), platform.community().addr()}) {
    RunResult up = platform.Ctl({"health", "--wait", "30s", "--addr", addr});
    EXPECT_EQ(up.exit_code, 0) << addr << up.out << up.err;
  }
  EXPECT_EQ(platform.partner().process().pid(), partner_pid);
  EXPECT_EQ(platform.community().process().pid(), community_pid);
  RunResult partners = platform.Ctl({"partners", "list"});
  EXPECT_EQ(partners.exit_code, 0) << partners.err;
  RunResult members = platform.Ctl({"community", "list"});
  EXPECT_EQ(members.exit_code, 0) << members.err;
  EXPECT_EQ(platform.customer().process().pid(), pid);
  EXPECT_TRUE(platform.customer().process().running());  // never restarted
  // Every write the service acknowledged before the kill is on disk.
  std::multiset<std::string> stored = StoredPurchases(*stub, customers);
  for (const Write& w : writes) {
    if (w.acknowledged) {
      EXPECT_EQ(stored.count(w.purchase_id), 1u) << w.request_id;
    }
  }
  Write again = writes.back();
  std::string id;
  grpc::Status s = Record(*stub, again, &id);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// The exported scores, as rapportctl writes them (header first).
std::string Export(const Platform& platform) {
  const std::string out = platform.Path("export.csv");
  RunResult r = platform.Ctl({"customers", "export", "scores", "--out", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return testing::ReadFile(out);
}

// Each exported customer's recency_days, by entity_id.
std::map<std::string, int64_t> RecencyOf(const std::string& csv) {
  std::map<std::string, int64_t> out;
  const std::vector<std::string> lines = testing::Lines(csv);
  if (lines.empty()) return out;
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  const auto id = std::find(header.begin(), header.end(), "entity_id");
  const auto days = std::find(header.begin(), header.end(), "recency_days");
  EXPECT_TRUE(id != header.end() && days != header.end()) << lines[0];
  if (id == header.end() || days == header.end()) return out;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> row = absl::StrSplit(lines[i], ',');
    int64_t n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(row.at(days - header.begin()), &n))
        << lines[i];
    out[row.at(id - header.begin())] = n;
  }
  return out;
}

TEST(CrashE2E,
     ScoringReplicaKilledDuringARefreshNeverLeavesHalfPublishedScores) {
  PlatformOptions options;
  options.scoring_replicas = 2;
  Platform platform(options);
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  // 3000 customers with 4 purchases each, by import (unknown external ids
  // create their customers).
  std::string csv = "customer_ref,timestamp,amount\n";
  for (int c = 0; c < 3000; ++c) {
    for (int p = 0; p < 4; ++p) {
      absl::StrAppend(&csv, "ext:shop:", c, ",2024-0", 1 + (c + p) % 9, "-",
                      10 + p, "T12:00:00Z,", 1 + (c * 7 + p) % 300, ".50\n");
    }
  }
  RunResult imported = platform.Ctl(
      {"customers", "import", "purchases", platform.File("p.csv", csv)});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  const std::vector<std::string> as_of = {"--as-of", "2024-12-31T00:00:00Z"};
  std::vector<std::string> first = {"customers", "refresh-scores"};
  first.insert(first.end(), as_of.begin(), as_of.end());
  ASSERT_EQ(platform.Ctl(first).exit_code, 0) << platform.logs();
  const std::string published = Export(platform);
  ASSERT_GT(testing::Lines(published).size(), 3000u);

  // A refresh with CLV (two calls to scoring, round-robin: one of them goes
  // to each replica) while replica 0 is stopped (SIGSTOP): once a call waits
  // unread in replica 0's socket, the job is running and talking to it, and
  // replica 0 is killed. Replica 1 runs throughout.
  const int victim = 0;
  const int survivor = 1;
  ASSERT_EQ(::kill(platform.scoring(victim).process().pid(), SIGSTOP), 0);
  RunResult started =
      platform.Ctl({"customers", "refresh-scores", "--with-clv", "--no-wait",
                    "--as-of", "2025-06-30T00:00:00Z", "--output", "csv"});
  const std::string job = testing::CsvId(started.out);
  std::string error;  // the job's, once it failed
  auto state_of_job = [&] {
    std::vector<std::vector<std::string>> shown =
        platform.CsvCtl({"customers", "refresh-job", job});
    std::string state = "(unreadable)";
    for (size_t c = 0; shown.size() == 2 && c < shown[0].size(); ++c) {
      if (shown[0][c] == "state") state = shown[1][c];
      if (shown[0][c] == "error") error = shown[1][c];
    }
    return state;
  };
  const bool waiting =
      started.exit_code == 0 && CallWaitsAt(platform.scoring(victim).addr());
  const std::string at_kill = waiting ? state_of_job() : "";
  Kill(platform.scoring(victim).process());
  ASSERT_EQ(started.exit_code, 0) << started.err;
  ASSERT_TRUE(waiting) << "no call of the refresh reached replica 0";
  ASSERT_EQ(at_kill, "RUNNING");

  // The job ends either way, and says how.
  std::string state;
  for (int i = 0; i < 600 && state != "SUCCEEDED" && state != "FAILED"; ++i) {
    state = state_of_job();
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string after = Export(platform);
  std::cout << "the refresh, its scoring replica killed: " << state << " "
            << error << "\n";
  if (state == "FAILED") {
    // Nothing of it was published: the earlier set stands, whole.
    EXPECT_EQ(after, published);
  } else {
    ASSERT_EQ(state, "SUCCEEDED") << platform.logs();
    // All of it was published: every customer, valued as of the new time
    // (181 days later: each one's recency is 181 days more, none left as
    // it was).
    EXPECT_EQ(testing::Lines(after).size(), testing::Lines(published).size());
    const std::map<std::string, int64_t> before_days = RecencyOf(published);
    const std::map<std::string, int64_t> after_days = RecencyOf(after);
    ASSERT_EQ(after_days.size(), before_days.size());
    ASSERT_EQ(after_days.size(), 3000u);
    for (const auto& [id, days] : before_days) {
      auto it = after_days.find(id);
      ASSERT_NE(it, after_days.end()) << id;
      EXPECT_EQ(it->second, days + 181) << id;
    }
  }
  // The other replica keeps serving: a refresh now succeeds through it.
  EXPECT_EQ(
      platform.Ctl({"health", "--addr", platform.scoring(survivor).addr()})
          .exit_code,
      0);
  RunResult again = platform.Ctl(first);
  EXPECT_EQ(again.exit_code, 0) << again.err << platform.logs();
  EXPECT_EQ(Export(platform), published);
}

// The replica running a refresh dies (kill -9) while the job waits on the
// scoring service: its connection to the database goes with it, and with it
// its hold on the job, so a new refresh is taken once the heartbeat is 10 s
// old (gone_after), not 30 s (stale_after), and the dead job reads FAILED,
// saying why.
TEST(CrashE2E, ARefreshWhoseReplicaDiedStopsBlockingWithinSeconds) {
  Platform platform;
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  ASSERT_NO_FATAL_FAILURE(ImportTwoBuyers(platform));
  // The job runs, its call waiting unread in the stopped scoring service.
  ASSERT_EQ(::kill(platform.scoring().process().pid(), SIGSTOP), 0);
  const std::vector<std::string> refresh = {
      "customers", "refresh-scores",       "--no-wait",
      "--as-of",   "2024-12-31T00:00:00Z", "--output",
      "csv"};
  RunResult started = platform.Ctl(refresh);
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string job = testing::CsvId(started.out);
  ASSERT_TRUE(CallWaitsAt(platform.scoring().addr()))
      << "the refresh never called the scoring service";
  Kill(platform.customer().process());
  const absl::Time killed = absl::Now();
  ASSERT_EQ(::kill(platform.scoring().process().pid(), SIGCONT), 0);
  platform.RestartCustomer();
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();

  // A new refresh is refused while the dead job may still be alive, then
  // taken.
  RunResult again;
  for (int i = 0; i < 120; ++i) {
    again = platform.Ctl(refresh);
    if (again.exit_code == 0) break;
    EXPECT_TRUE(absl::StrContains(again.err, "is running")) << again.err;
    absl::SleepFor(absl::Milliseconds(250));
  }
  const absl::Duration blocked = absl::Now() - killed;
  ASSERT_EQ(again.exit_code, 0) << again.err << platform.logs();
  std::cout << "a new refresh was taken " << blocked
            << " after the replica running the last one was killed\n";
  EXPECT_LT(blocked, absl::Seconds(25));
  RunResult dead = platform.Ctl({"customers", "refresh-job", job});
  ASSERT_EQ(dead.exit_code, 0) << dead.err;
  EXPECT_TRUE(absl::StrContains(dead.out, "FAILED")) << dead.out;
  EXPECT_TRUE(absl::StrContains(dead.out, "its heartbeat stopped")) << dead.out;
  // The replica that ended it counts it failed (the dead one's counts went
  // with it), so that an alert on failed refreshes sees it.
  EXPECT_EQ(
      testing::SumOf(testing::FetchMetrics(platform.customer().metrics_addr()),
                     "rapport_refresh_jobs_total", {"outcome=\"failed\""}),
      1);
}

// A replica told to stop (a rollout, a scale-down) while its refresh runs
// lets the refresh finish within its grace period instead of failing it: the
// refresh's call waits in the stopped scoring service while the replica
// stops, and once scoring goes on the job ends SUCCEEDED and the replica
// exits by itself.
TEST(CrashE2E, AReplicaToldToStopFinishesItsRefreshFirst) {
  PlatformOptions options;
  options.customer_replicas = 2;
  Platform platform(options);
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  ASSERT_NO_FATAL_FAILURE(ImportTwoBuyers(platform));
  ASSERT_EQ(::kill(platform.scoring().process().pid(), SIGSTOP), 0);
  // Followed by rapportctl, which keeps asking through the stop of the
  // replica running it (a call the stopping server ends, then a closed
  // port: the other replica answers) until the job ends.
  const std::string out = platform.File("refresh.out", "");
  testing::Env both = platform.CtlEnv();
  both["RAPPORT_CUSTOMER_ADDR"] = absl::StrCat(platform.customer(0).addr(), ",",
                                               platform.customer(1).addr());
  testing::Process follower = testing::Process::Start(
      {testing::CtlPath(), "customers", "refresh-scores", "--as-of",
       "2024-12-31T00:00:00Z", "--output", "csv", "--timeout", "60s"},
      both, out);
  ASSERT_TRUE(CallWaitsAt(platform.scoring().addr()))
      << "the refresh never called the scoring service";
  int runs = -1;
  for (int r = 0; r < 2; ++r) {
    if (testing::SumOf(
            testing::FetchMetrics(platform.customer(r).metrics_addr()),
            "rapport_refresh_jobs_running") == 1) {
      runs = r;
    }
  }
  ASSERT_NE(runs, -1) << platform.logs();
  testing::ServerProcess& runner = platform.customer(runs);
  ASSERT_EQ(::kill(runner.process().pid(), SIGTERM), 0);
  absl::SleepFor(absl::Seconds(1));
  // It has no call left to drain, and waits for its refresh all the same.
  EXPECT_TRUE(runner.process().running());
  ASSERT_EQ(::kill(platform.scoring().process().pid(), SIGCONT), 0);
  EXPECT_EQ(runner.process().Stop(absl::Seconds(4)), 0);
  EXPECT_TRUE(
      absl::StrContains(runner.log(), "the refreshes under way finished"))
      << runner.log();
  for (int i = 0; i < 300 && follower.running(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(follower.Stop(absl::Seconds(1)), 0) << testing::ReadFile(out);
  EXPECT_TRUE(absl::StrContains(testing::ReadFile(out), "SUCCEEDED"))
      << testing::ReadFile(out);
}

// Reads "<key>: N" from rapportctl's summary line (-1 when it is not there).
int64_t Count(const std::string& said, const std::string& key) {
  const size_t at = said.find(key + ": ");
  int64_t n = -1;
  if (at == std::string::npos) return n;
  const std::string rest = said.substr(at + key.size() + 2);
  if (!absl::SimpleAtoi(rest.substr(0, rest.find_first_of(" \n")), &n)) n = -1;
  return n;
}

// A replica that dies while an import's stream is on it does not fail the
// import: once the file is read, that stream's rows go again to the other
// replica, the rows the dead one stored count as duplicates, and every row is
// stored once.
TEST(CrashE2E, AnImportWhoseReplicaDiesSendsThatStreamsRowsToAnother) {
  PlatformOptions options;
  options.customer_replicas = 2;
  Platform platform(options);
  const auto serving = [&] {
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(platform
                    .Ctl({"health", "--wait", "20s", "--addr",
                          platform.customer(r).addr()})
                    .exit_code,
                0)
          << platform.logs();
    }
  };
  ASSERT_NO_FATAL_FAILURE(serving());
  // 100,000 purchases of 10,000 customers in messages of 250 rows: a stream
  // carries half of them, or all, long enough to be cut short.
  constexpr int kRows = 100000;
  const auto stored_by = [&](int r) {
    return testing::SumOf(
        testing::FetchMetrics(platform.customer(r).metrics_addr()),
        "rapport_import_rows_total", {"outcome=\"accepted\""});
  };
  // Imports on `streams` streams over both replicas, and kills a replica
  // once it has stored some rows: the second, or with one stream the one
  // that has it (every stream of the import is then lost at once). With
  // `notes`, interactions with 300-byte notes: 35 MB, more than gRPC buffers
  // ahead of the service, so the kill comes while the file is still read.
  const auto import_killing_one = [&](int streams, const std::string& name,
                                      bool notes) {
    std::string csv = notes ? "customer_ref,timestamp,channel,cost,kind,note\n"
                            : "customer_ref,timestamp,amount\n";
    const std::string note(300, 'n');
    for (int i = 0; i < kRows; ++i) {
      absl::StrAppend(&csv, "ext:", name, ":", i % 10000, ",2024-01-",
                      10 + i % 18, "T08:00:00Z,");
      if (notes) {
        absl::StrAppend(&csv, "email,", 1 + i % 5, ",call,", note, "\n");
      } else {
        absl::StrAppend(&csv, 1 + i % 50, "\n");
      }
    }
    const std::string file = platform.File(name + ".csv", csv);
    testing::Env both = platform.CtlEnv();
    both["RAPPORT_CUSTOMER_ADDR"] = absl::StrCat(
        platform.customer(0).addr(), ",", platform.customer(1).addr());
    const std::string out = platform.File(name + ".out", "");
    const double before[2] = {stored_by(0), stored_by(1)};
    testing::Process import = testing::Process::Start(
        {testing::CtlPath(), "customers", "import",
         notes ? "interactions" : "purchases", file, "--streams",
         absl::StrCat(streams), "--batch-rows", "250", "--import-id", name},
        both, out);
    int victim = -1;
    for (int i = 0; i < 3000 && victim < 0 && import.running(); ++i) {
      for (int r = streams == 1 ? 0 : 1; r < 2 && victim < 0; ++r) {
        if (stored_by(r) > before[r]) victim = r;
      }
      if (victim < 0) absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_GE(victim, 0) << testing::ReadFile(out);
    Kill(platform.customer(victim).process());
    for (int i = 0; i < 1200 && import.running(); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_EQ(import.Stop(absl::Seconds(1)), 0) << testing::ReadFile(out);
    const std::string said = testing::ReadFile(out);
    EXPECT_TRUE(absl::StrContains(said, "sending its rows again")) << said;
    EXPECT_EQ(Count(said, "rows"), kRows) << said;
    EXPECT_EQ(Count(said, "accepted") + Count(said, "duplicates"), kRows)
        << said;
    EXPECT_GT(Count(said, "duplicates"), 0) << said;
    EXPECT_EQ(Count(said, "rejected"), 0) << said;

    // The same import again, through the replica left, finds every row
    // stored.
    testing::Env one = platform.CtlEnv();
    one["RAPPORT_CUSTOMER_ADDR"] = platform.customer(1 - victim).addr();
    RunResult again = testing::Run(
        {testing::CtlPath(), "customers", "import",
         notes ? "interactions" : "purchases", file, "--import-id", name},
        one);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(Count(again.out, "accepted"), 0) << again.out;
    EXPECT_EQ(Count(again.out, "duplicates"), kRows) << again.out;
    platform.RestartCustomer(victim);
  };
  ASSERT_NO_FATAL_FAILURE(import_killing_one(2, "lost2", false));
  ASSERT_NO_FATAL_FAILURE(serving());
  // One stream (as partner deals have by default): the first pass is left
  // with no stream before the end of the file, and still counts (and keys)
  // every row of it.
  ASSERT_NO_FATAL_FAILURE(import_killing_one(1, "lost1", true));
}

// A loopback port that nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), size), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A replica stopped while it still waits for its database (or migrates) has
// no calls to drain: it exits at once on SIGTERM, instead of holding the
// signal until it serves and being killed when the grace period ends (exit
// code 137 here).
TEST(CrashE2E, AReplicaStoppedBeforeItServesExitsAtOnce) {
  const std::string uri =
      absl::StrCat("mysql://root@127.0.0.1:", ClosedPort(), "/nowhere");
  testing::TempDir dir;
  struct Replica {
    std::string name;
    testing::Process process;
  };
  std::vector<Replica> replicas;
  for (const auto& [name, binary] :
       std::vector<std::pair<std::string, std::string>>{
           {"customer", "customer/rapport-customer"},
           {"partner", "partner/rapport-partner"},
           {"financial-community",
            "financial_community/rapport-financial-community"}}) {
    std::vector<std::string> argv = {
        testing::BinaryDir() + "/services/" + binary,
        "--listen=127.0.0.1:0",
        "--metrics_listen=127.0.0.1:0",
        "--mysql_uri=" + uri,
        "--scoring_addr=127.0.0.1:1",
        "--db_wait=300s",
        "--jwks_file=" + testing::TestAuth::Get().jwks_file(),
        "--service_key_file=" +
            testing::TestAuth::Get().service_key_file(name)};
    if (name == "customer") argv.push_back("--suppression_salt=e2e");
    replicas.push_back(
        {name, testing::Process::Start(argv, {}, dir.File(name + ".log"))});
  }
  for (Replica& r : replicas) {
    const std::string log = dir.File(r.name + ".log");
    for (int i = 0; i < 300 && !absl::StrContains(testing::ReadFile(log),
                                                  "waiting for the database");
         ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(
        absl::StrContains(testing::ReadFile(log), "waiting for the database"))
        << r.name << ": " << testing::ReadFile(log);
    EXPECT_EQ(r.process.Stop(absl::Seconds(20)), 0)
        << r.name << ": " << testing::ReadFile(log);
    EXPECT_TRUE(
        absl::StrContains(testing::ReadFile(log), "stopped before serving"))
        << r.name << ": " << testing::ReadFile(log);
  }
}

}  // namespace
}  // namespace rapport
