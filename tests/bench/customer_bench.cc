// The customer service at volume, through its public gRPC API, against real
// binaries: bulk import, score refreshes, RecordPurchase and GetCustomer under
// concurrency, and the floor of a call that does no database work. Run by
// `tests/bench/run customer`, which starts MariaDB and the services and reads
// their peak memory; it can also target any running deployment, and run again
// on the data it left (--skip_import, --skip_refresh):
//
//   customer_bench --addr 127.0.0.1:50051 --purchases 10000000
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/timestamp.h"
#include "common/channel.h"
#include "common/proto_convert.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051", "the customer service");
ABSL_FLAG(std::string, token, "",
          "the bearer token of every call (a writer's: rapportctl auth token)");
ABSL_FLAG(int64_t, customers, 1'000'000, "customers to create by importing");
ABSL_FLAG(int64_t, purchases, 10'000'000, "purchases to import");
ABSL_FLAG(int, import_streams, 2, "concurrent import streams");
ABSL_FLAG(int, concurrency, 32,
          "concurrent callers for RecordPurchase and GetCustomer");
ABSL_FLAG(int, client_threads, 1,
          "threads driving the concurrent callers (through completion queues)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "how long each call benchmark runs");
ABSL_FLAG(bool, skip_import, false, "use the data already there");
ABSL_FLAG(std::vector<std::string>, calls,
          (std::vector<std::string>{"RecordPurchase", "GetCustomer", "floor"}),
          "which call benchmarks to run (empty: none)");
ABSL_FLAG(bool, skip_refresh, false, "use the scores already there");

namespace rapport {
namespace {

namespace v1 = ::rapport::customer::v1;
namespace cv1 = ::rapport::common::v1;
constexpr int64_t kAsOf = 1'719'792'000'000'000;  // 2024-07-01T00:00:00Z
constexpr int kRowsPerBatch = 5000;

// Adds the bench's token (--token) to a call.
void Authorize(grpc::ClientContext& context) {
  static const std::string* const kAuthorization =
      new std::string(absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token)));
  context.AddMetadata("authorization", *kAuthorization);
}

std::unique_ptr<v1::CustomerService::Stub> NewStub() {
  return v1::CustomerService::NewStub(
      *MakeChannel(absl::GetFlag(FLAGS_addr), {}));
}

void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "customer_bench: %s: %s\n", what.c_str(),
               s.error_message().c_str());
  std::exit(1);
}

// Imports every `streams`-th purchase of the synthetic population, from
// `stream_index` on. The customer of purchase i is i % customers, so the first
// `customers` purchases create them, and when `streams` divides `customers`
// each stream carries its own customers (as the files of two source systems
// would) instead of two streams racing to create the same ones.
void Import(int stream_index, int streams) {
  auto stub = NewStub();
  grpc::ClientContext context;
  Authorize(context);
  v1::ImportPurchasesResponse response;
  auto writer = stub->ImportPurchases(&context, &response);
  std::mt19937_64 rng(stream_index);
  const int64_t customers = absl::GetFlag(FLAGS_customers);
  v1::ImportPurchasesRequest request;
  request.set_import_id(absl::StrCat("bench-", stream_index));
  const int64_t purchases = absl::GetFlag(FLAGS_purchases);
  for (int64_t i = stream_index; i < purchases; i += streams) {
    v1::PurchaseRow* row = request.add_rows();
    row->set_row(i + 1);
    row->set_customer_ref(absl::StrCat("ext:bench:", i % customers));
    const int64_t t =
        kAsOf - static_cast<int64_t>(rng() % (3 * 365 * 86'400ll)) * 1'000'000;
    row->set_timestamp(FormatRfc3339Micros(t));
    row->set_amount(absl::StrFormat("%d.%02d", rng() % 500, rng() % 100));
    if (request.rows_size() == kRowsPerBatch) {
      if (!writer->Write(request)) break;
      request.Clear();
    }
  }
  if (request.rows_size() > 0) writer->Write(request);
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) Die("import", s);
  if (response.rejected_size() > 0) {
    std::fprintf(stderr, "customer_bench: %d rows rejected, first: %s\n",
                 response.rejected_size(),
                 response.rejected(0).message().c_str());
    std::exit(1);
  }
}

// One call in flight. The benchmark drives its callers through completion
// queues, a few threads for all of them, so that the load generator takes as
// little as it can of the cores it shares with the services.
struct Pending {
  virtual ~Pending() = default;
  absl::Time start;
  grpc::ClientContext context;
  grpc::Status status;
};

template <typename Response>
struct PendingCall : Pending {
  Response response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

using Stub = v1::CustomerService::Stub;

// Starts `method` on `stub` with `request`; its completion comes back on `cq`
// tagged with the returned call.
template <typename Request, typename Response>
std::unique_ptr<Pending> Start(
    Stub& stub,
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (Stub::*method)(
        grpc::ClientContext*, const Request&, grpc::CompletionQueue*),
    const Request& request, grpc::CompletionQueue& cq) {
  auto call = std::make_unique<PendingCall<Response>>();
  call->start = absl::Now();
  Authorize(call->context);
  call->reader = (stub.*method)(&call->context, request, &cq);
  call->reader->Finish(&call->response, &call->status, call.get());
  return call;
}

struct Latencies {
  std::vector<double> ms;
  int64_t errors = 0;
};

// Keeps --concurrency calls in flight for the configured duration, each made
// by `start(stub, cq, rng)` and counted right when its status code is
// `expected`; prints rate and percentiles.
template <typename StartCall>
void Hammer(const std::string& name, StartCall start,
            grpc::StatusCode expected = grpc::StatusCode::OK) {
  const std::vector<std::string> calls = absl::GetFlag(FLAGS_calls);
  if (std::find(calls.begin(), calls.end(), name) == calls.end()) {
    return;
  }
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int threads =
      std::max(1, std::min(absl::GetFlag(FLAGS_client_threads), concurrency));
  const absl::Time begin = absl::Now();
  const absl::Time end = begin + absl::GetFlag(FLAGS_duration);
  std::vector<Latencies> per_thread(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto stub = NewStub();
      grpc::CompletionQueue cq;
      std::mt19937_64 rng(1000 + t);
      const int callers =
          concurrency * (t + 1) / threads - concurrency * t / threads;
      for (int i = 0; i < callers; ++i) start(*stub, cq, rng).release();
      int in_flight = callers;
      void* tag;
      bool ok;
      while (in_flight > 0 && cq.Next(&tag, &ok)) {
        std::unique_ptr<Pending> done(static_cast<Pending*>(tag));
        const absl::Time now = absl::Now();
        per_thread[t].ms.push_back(
            absl::ToDoubleMilliseconds(now - done->start));
        if (!ok || done->status.error_code() != expected)
          ++per_thread[t].errors;
        if (now < end) {
          start(*stub, cq, rng).release();
        } else {
          --in_flight;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  std::vector<double> all;
  int64_t errors = 0;
  for (auto& l : per_thread) {
    all.insert(all.end(), l.ms.begin(), l.ms.end());
    errors += l.errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0 : all[static_cast<size_t>(p * (all.size() - 1))];
  };
  std::printf(
      "%-16s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  (%zu calls, %d "
      "callers, %lld errors)\n",
      name.c_str(), all.size() / seconds, pct(0.50), pct(0.99), all.size(),
      concurrency, static_cast<long long>(errors));
}

void Refresh(int window_days, bool with_clv = false) {
  auto stub = NewStub();
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_window_days(window_days);
  request.set_with_clv(with_clv);
  v1::RefreshScoresResponse started;
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  Authorize(context);
  grpc::Status s = stub->RefreshScores(&context, request, &started);
  if (!s.ok()) Die("refresh", s);
  for (;;) {
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext poll;
    Authorize(poll);
    v1::GetRefreshJobRequest get;
    get.set_id(started.job().id());
    v1::GetRefreshJobResponse job;
    s = stub->GetRefreshJob(&poll, get, &job);
    if (!s.ok()) Die("refresh job", s);
    if (job.job().state() == cv1::RefreshJob::STATE_RUNNING) continue;
    if (job.job().state() != cv1::RefreshJob::STATE_SUCCEEDED) {
      std::fprintf(stderr, "customer_bench: refresh failed: %s\n",
                   job.job().error().c_str());
      std::exit(1);
    }
    std::printf("%-16s %10.2f s  (%lld customers, window %d days)\n",
                with_clv ? "refresh with clv" : "refresh",
                absl::ToDoubleSeconds(absl::Now() - start),
                static_cast<long long>(job.job().total()), window_days);
    return;
  }
}

int Main() {
  // A misspelt call name would otherwise run nothing, silently.
  for (const std::string& name : absl::GetFlag(FLAGS_calls)) {
    if (name != "RecordPurchase" && name != "GetCustomer" && name != "floor") {
      std::fprintf(stderr,
                   "customer_bench: --calls: unknown call \"%s\" (want "
                   "RecordPurchase, GetCustomer, floor)\n",
                   name.c_str());
      return 2;
    }
  }
  const int64_t purchases = absl::GetFlag(FLAGS_purchases);
  if (!absl::GetFlag(FLAGS_skip_import)) {
    const int streams = absl::GetFlag(FLAGS_import_streams);
    const absl::Time start = absl::Now();
    std::vector<std::thread> importers;
    for (int i = 0; i < streams; ++i) {
      importers.emplace_back(Import, i, streams);
    }
    for (auto& t : importers) t.join();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf(
        "%-16s %10.0f rows/s  (%lld purchases, %lld customers created, %.1f s, "
        "%d streams)\n",
        "import", purchases / seconds, static_cast<long long>(purchases),
        static_cast<long long>(absl::GetFlag(FLAGS_customers)), seconds,
        streams);
  }
  // Ids of a sample of customers, for the call benchmarks.
  std::vector<std::string> ids;
  {
    auto stub = NewStub();
    v1::ListCustomersRequest list;
    list.set_page_size(1000);
    while (ids.size() < 20000) {
      grpc::ClientContext context;
      Authorize(context);
      v1::ListCustomersResponse page;
      grpc::Status s = stub->ListCustomers(&context, list, &page);
      if (!s.ok()) Die("list", s);
      for (const auto& c : page.customers()) ids.push_back(c.id());
      if (page.next_page_token().empty()) break;
      list.set_page_token(page.next_page_token());
    }
  }
  if (!absl::GetFlag(FLAGS_skip_refresh)) {
    Refresh(0);
    Refresh(365);
    Refresh(0, /*with_clv=*/true);
  }
  // Request ids unique to this run, so that a run on data left by an earlier
  // one records new purchases instead of answering retries.
  const std::string run = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  std::atomic<int64_t> next{0};
  Hammer("RecordPurchase",
         [&](Stub& stub, grpc::CompletionQueue& cq, std::mt19937_64& rng) {
           v1::RecordPurchaseRequest request;
           request.set_customer_id(ids[rng() % ids.size()]);
           request.set_request_id(absl::StrCat("bench-", run, "-", next++));
           *request.mutable_purchase()->mutable_purchase_time() =
               ToTimestamp(kAsOf - 1'000'000);
           request.mutable_purchase()->mutable_amount()->set_units(
               static_cast<int64_t>(rng() % 100));
           return Start(stub, &Stub::AsyncRecordPurchase, request, cq);
         });
  Hammer("GetCustomer",
         [&](Stub& stub, grpc::CompletionQueue& cq, std::mt19937_64& rng) {
           v1::GetCustomerRequest request;
           request.set_id(ids[rng() % ids.size()]);
           return Start(stub, &Stub::AsyncGetCustomer, request, cq);
         });
  // The floor under every call figure above: the same callers, calls that the
  // service refuses before any database work (a malformed id).
  Hammer(
      "floor",
      [&](Stub& stub, grpc::CompletionQueue& cq, std::mt19937_64&) {
        v1::GetCustomerRequest request;
        request.set_id("not-an-id");
        return Start(stub, &Stub::AsyncGetCustomer, request, cq);
      },
      grpc::StatusCode::INVALID_ARGUMENT);
  return 0;
}

}  // namespace
}  // namespace rapport

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As in the services (common/server.cc): no Mutex deadlock detection.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return rapport::Main();
}
