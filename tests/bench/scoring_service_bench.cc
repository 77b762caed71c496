// Service-level benchmark: a population of N entities' facts streamed to a real
// rapport-scoring over loopback gRPC, scored, and streamed back.
//
//   build/ci/tests/bench/scoring_service_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "common/proto_convert.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "tests/support/mariadb.h"
#include "tests/support/process.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

namespace v1 = ::rapport::scoring::v1;

// The server lives for the whole benchmark binary.
testing::ServerProcess& TheServer() {
  static auto* server = new testing::ServerProcess(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--log_requests=false"});
  return *server;
}

// Batches of facts for n entities, built once per size.
std::vector<v1::ScorePopulationRequest> Population(int64_t n) {
  std::mt19937_64 rng(42);
  const int64_t as_of = 1'700'000'000'000'000;
  std::vector<v1::ScorePopulationRequest> batches;
  constexpr int kBatch = 10000;
  for (int64_t i = 0; i < n; ++i) {
    if (i % kBatch == 0) {
      batches.emplace_back();
      if (i == 0) {
        batches.back().mutable_config()->mutable_as_of()->set_seconds(
            as_of / 1'000'000);
      }
    }
    v1::EntityFacts* f = batches.back().add_facts();
    f->set_entity_id(absl::StrCat("customer-", i));
    f->set_frequency(1 + static_cast<int64_t>(rng() % 30));
    f->mutable_monetary()->set_units(static_cast<int64_t>(rng() % 5000));
    f->mutable_monetary()->set_nanos(static_cast<int32_t>(rng() % 100) *
                                     10'000'000);
    *f->mutable_last_event_time() = ToTimestamp(
        as_of - static_cast<int64_t>(rng() % (3 * 365)) * 86'400'000'000);
  }
  return batches;
}

void BM_ScorePopulationOverLoopback(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<v1::ScorePopulationRequest> batches = Population(n);
  auto stub = v1::ScoringService::NewStub(*MakeChannel(TheServer().addr(), {}));
  for (auto _ : state) {
    testing::AuthorizedContext context("reader");
    auto stream = stub->ScorePopulation(&context);
    for (const auto& b : batches) stream->Write(b);
    stream->WritesDone();
    v1::ScorePopulationResponse response;
    int64_t received = 0;
    while (stream->Read(&response)) received += response.scores_size();
    grpc::Status status = stream->Finish();
    if (!status.ok() || received != n) {
      state.SkipWithError(
          absl::StrCat("failed: ", status.error_message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["entities"] = static_cast<double>(n);
}
BENCHMARK(BM_ScorePopulationOverLoopback)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace rapport

BENCHMARK_MAIN();
