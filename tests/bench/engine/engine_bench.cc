// Benchmarks of the scoring engine. Run:
//   build/engine/tests/bench/engine/engine_bench --benchmark_min_time=1
// Targets (2-core machine): facts + scores for 1M entities from 10M events
// < 0.5 s; scores alone for 10M entities < 1 s; BG/NBD + Gamma-Gamma fit on
// 1M customers < 2 s and on CDNOW-size data < 50 ms; predictions + CLV for 1M
// customers < 2 s.

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "benchmark/benchmark.h"
#include "common/base/timestamp.h"
#include "services/scoring/engine/bgnbd.h"
#include "services/scoring/engine/facts.h"
#include "services/scoring/engine/gamma_gamma.h"
#include "services/scoring/engine/rfm.h"

namespace rapport::scoring {
namespace {

constexpr int64_t kAsOf = 1'700'000'000LL * 1'000'000;

struct EventData {
  std::vector<std::string> ids;
  std::vector<ActivityEvent> events;
};

// `entities` ids like "cust-0001234", `events` purchases over two years.
const EventData& Events(size_t entities, size_t events) {
  static EventData* data = nullptr;
  if (data != nullptr && data->ids.size() == entities &&
      data->events.size() == events) {
    return *data;
  }
  delete data;
  data = new EventData;
  std::mt19937_64 rng(1);
  data->ids.reserve(entities);
  for (size_t i = 0; i < entities; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "cust-%07zu", i);
    data->ids.emplace_back(buf);
  }
  data->events.reserve(events);
  for (size_t i = 0; i < events; ++i) {
    const std::string& id = data->ids[rng() % entities];
    const int64_t t =
        kAsOf - static_cast<int64_t>(rng() % (730 * kMicrosPerDay));
    data->events.push_back(
        {id, t,
         Decimal::FromCents(static_cast<int64_t>(rng() % 50000) - 1000)});
  }
  return *data;
}

void BM_FactsAndScores(benchmark::State& state) {
  const EventData& d = Events(state.range(0), state.range(1));
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<FactsAccumulator> acc =
        FactsAccumulator::Create({kAsOf, std::nullopt});
    if (!acc.ok() || !acc->AddEvents(d.events).ok()) state.SkipWithError("add");
    absl::StatusOr<FactsTable> facts = std::move(*acc).Finish();
    absl::StatusOr<PopulationScores> scores =
        ScorePopulation(*facts, ScoringOptions{});
    if (!scores.ok()) state.SkipWithError("score");
    benchmark::DoNotOptimize(scores->value_cents.data());
    bytes = facts->id_bytes.size() + facts->id_offsets.size() * 8 +
            facts->size() * (8 + 16 + 8 + 16) + scores->size() * 7;
  }
  state.counters["entities"] = static_cast<double>(state.range(0));
  state.counters["result_bytes_per_entity"] =
      static_cast<double>(bytes) / static_cast<double>(state.range(0));
}
BENCHMARK(BM_FactsAndScores)
    ->Args({1'000'000, 10'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

// The straightforward version: one thread, a hash map of strings, then a
// full sort per metric and a binary search per entity.
void BM_BaselineHashMapAndSort(benchmark::State& state) {
  const EventData& d = Events(state.range(0), state.range(1));
  for (auto _ : state) {
    struct F {
      int64_t frequency = 0;
      Int128 monetary = 0;
      int64_t last = INT64_MIN;
    };
    absl::flat_hash_map<std::string, F> map;
    for (const ActivityEvent& e : d.events) {
      if (e.time_micros > kAsOf) continue;
      F& f = map[std::string(e.entity_id)];
      ++f.frequency;
      f.monetary += e.amount.raw_nanos();
      f.last = std::max(f.last, e.time_micros);
    }
    std::vector<std::pair<std::string, F>> rows(map.begin(), map.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const size_t n = rows.size();
    std::vector<int64_t> rec(n), fr(n);
    std::vector<Int128> mon(n);
    for (size_t i = 0; i < n; ++i) {
      rec[i] = -FloorDays(kAsOf - rows[i].second.last);
      fr[i] = rows[i].second.frequency;
      mon[i] = rows[i].second.monetary;
    }
    auto sorted_rec = rec, sorted_fr = fr;
    auto sorted_mon = mon;
    std::sort(sorted_rec.begin(), sorted_rec.end());
    std::sort(sorted_fr.begin(), sorted_fr.end());
    std::sort(sorted_mon.begin(), sorted_mon.end());
    std::vector<uint8_t> r(n), f(n), m(n);
    for (size_t i = 0; i < n; ++i) {
      auto score = [&](const auto& sorted, auto v) {
        const size_t less =
            std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
        return static_cast<uint8_t>(1 + 5 * less / n);
      };
      r[i] = score(sorted_rec, rec[i]);
      f[i] = score(sorted_fr, fr[i]);
      m[i] = score(sorted_mon, mon[i]);
    }
    benchmark::DoNotOptimize(r.data());
    benchmark::DoNotOptimize(f.data());
    benchmark::DoNotOptimize(m.data());
  }
}
BENCHMARK(BM_BaselineHashMapAndSort)
    ->Args({1'000'000, 10'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// A FactsTable of n entities built directly (no events).
FactsTable SyntheticFacts(size_t n) {
  std::mt19937_64 rng(3);
  FactsTable t;
  t.as_of_micros = kAsOf;
  t.id_offsets.resize(n + 1);
  for (size_t i = 0; i <= n; ++i) t.id_offsets[i] = 0;  // ids unused here
  t.frequency.resize(n);
  t.monetary.resize(n);
  t.last_event_micros.resize(n);
  t.cost_to_serve.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const bool prospect = rng() % 10 == 0;
    t.frequency[i] = prospect ? 0 : 1 + static_cast<int64_t>(rng() % 40);
    t.monetary[i] =
        prospect ? Decimal()
                 : Decimal::FromCents(static_cast<int64_t>(rng() % 1000000));
    t.last_event_micros[i] =
        prospect ? FactsTable::kNoEvent
                 : kAsOf - static_cast<int64_t>(rng() % (730 * kMicrosPerDay));
    t.cost_to_serve[i] =
        Decimal::FromCents(static_cast<int64_t>(rng() % 20000));
  }
  return t;
}

void BM_ScoresOnly(benchmark::State& state) {
  const FactsTable t = SyntheticFacts(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<PopulationScores> s = ScorePopulation(t, ScoringOptions{});
    if (!s.ok()) state.SkipWithError("score");
    benchmark::DoNotOptimize(s->r.data());
  }
  state.counters["facts_bytes_per_entity"] = 8 + 8 + 16 + 8 + 16;
  state.counters["score_bytes_per_entity"] = 7;
  state.counters["peak_temp_bytes_per_entity"] = 8 + 16;  // one copy per thread
}
BENCHMARK(BM_ScoresOnly)
    ->Arg(10'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// Day-granular BG/NBD + Gamma-Gamma customers, as BuildSummaries makes them.
std::vector<CustomerSummary> SimulateCustomers(size_t n, double days_per_unit,
                                               uint64_t seed) {
  std::mt19937_64 rng(seed);
  const BgNbdParams bg{0.25, 4.4 * 7 / days_per_unit, 0.8, 2.4};
  std::gamma_distribution<double> lambda_dist(bg.r, 1.0 / bg.alpha);
  std::gamma_distribution<double> ga(bg.a, 1.0), gb(bg.b, 1.0);
  std::gamma_distribution<double> nu_dist(3.7, 1.0 / 15.4);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<CustomerSummary> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const double lambda = lambda_dist(rng) + 1e-12;
    const double a = ga(rng), b = gb(rng);
    const double p = a / (a + b);
    const int64_t t_days = 190 + static_cast<int64_t>(rng() % 84);
    CustomerSummary c;
    c.T = static_cast<double>(t_days) / days_per_unit;
    double t = 0;
    int64_t last_day = 0;
    while (true) {
      t += std::exponential_distribution<double>(lambda)(rng);
      if (t > c.T) break;
      const int64_t day = static_cast<int64_t>(t * days_per_unit);
      if (day != last_day) {
        ++c.x;
        last_day = day;
      }
      if (unif(rng) < p) break;
    }
    c.t_x = static_cast<double>(last_day) / days_per_unit;
    if (c.x > 0) {
      const double nu = nu_dist(rng);
      std::gamma_distribution<double> spend(6.25, 1.0 / nu);
      double total = 0;
      for (int64_t k = 0; k < c.x; ++k)
        total += std::round(spend(rng) * 100) / 100;
      c.avg_repeat_spend = total / static_cast<double>(c.x);
    }
    out.push_back(c);
  }
  return out;
}

void BM_FitBgNbdAndGammaGamma(benchmark::State& state) {
  const std::vector<CustomerSummary> data =
      SimulateCustomers(state.range(0), 7.0, 5);
  BgNbdFit bg;
  GammaGammaFit gg;
  for (auto _ : state) {
    absl::StatusOr<BgNbdFit> b = FitBgNbd(data);
    absl::StatusOr<GammaGammaFit> g = FitGammaGamma(data);
    if (!b.ok() || !g.ok()) state.SkipWithError("fit");
    bg = *b;
    gg = *g;
  }
  state.counters["bg_distinct_rows"] = static_cast<double>(bg.distinct_rows);
  state.counters["bg_evals"] = bg.evaluations;
  state.counters["gg_evals"] = gg.evaluations;
  state.counters["r"] = bg.params.r;
  state.counters["p"] = gg.params.p;
}
BENCHMARK(BM_FitBgNbdAndGammaGamma)
    ->Arg(2'357)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_PredictAndClv(benchmark::State& state) {
  const std::vector<CustomerSummary> data =
      SimulateCustomers(state.range(0), 1.0, 9);
  const BgNbdParams bg{0.25, 4.4, 0.8, 2.4};
  const GammaGammaParams gg{6.25, 3.74, 15.44};
  ClvOptions o{static_cast<int>(state.range(1)), 0.01, TimeUnit::kDay, 30};
  for (auto _ : state) {
    absl::StatusOr<std::vector<CustomerPrediction>> p =
        PredictCustomers(bg, gg, data, o);
    if (!p.ok()) state.SkipWithError("predict");
    benchmark::DoNotOptimize(p->data());
  }
}
BENCHMARK(BM_PredictAndClv)
    ->Args({1'000'000, 12})
    ->Args({1'000'000, 120})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace rapport::scoring

BENCHMARK_MAIN();
