#include "services/scoring/engine/facts.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/base/timestamp.h"
#include "gtest/gtest.h"

namespace rapport::scoring {
namespace {

constexpr int64_t kDay = kMicrosPerDay;

Decimal D(const char* s) { return *Decimal::Parse(s); }

int64_t AsOf() { return *ParseRfc3339Micros("2024-03-01T12:00:00Z"); }

FactsTable Compute(const FactsOptions& o, std::vector<absl::string_view> known,
                   std::vector<ActivityEvent> events,
                   std::vector<CostEvent> costs = {}) {
  absl::StatusOr<FactsTable> t = ComputeFacts(o, known, events, costs);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : FactsTable{};
}

void ExpectSameTable(const FactsTable& a, const FactsTable& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.id_bytes, b.id_bytes);
  EXPECT_EQ(a.id_offsets, b.id_offsets);
  EXPECT_EQ(a.frequency, b.frequency);
  EXPECT_EQ(a.monetary, b.monetary);
  EXPECT_EQ(a.last_event_micros, b.last_event_micros);
  EXPECT_EQ(a.cost_to_serve, b.cost_to_serve);
}

TEST(Facts, WindowIncludesAsOfAndExcludesTheLowerEdge) {
  const int64_t as_of = AsOf();
  FactsOptions o{as_of, 30};
  FactsTable t = Compute(o, {},
                         {{"at_as_of", as_of, D("1.00")},
                          {"at_edge", as_of - 30 * kDay, D("5.00")},
                          {"after_edge", as_of - 30 * kDay + 1, D("2.00")},
                          {"future", as_of + 1, D("9.00")}});
  ASSERT_EQ(t.size(), 4u);
  // Sorted by bytes: after_edge, at_as_of, at_edge, future.
  EXPECT_EQ(t.id(0), "after_edge");
  EXPECT_EQ(t.frequency[0], 1);
  EXPECT_EQ(*t.recency_days(0), 29);
  EXPECT_EQ(t.id(1), "at_as_of");
  EXPECT_EQ(t.frequency[1], 1);
  EXPECT_EQ(*t.recency_days(1), 0);
  EXPECT_EQ(t.id(2), "at_edge");
  EXPECT_EQ(t.frequency[2], 0);  // known, but a prospect
  EXPECT_FALSE(t.recency_days(2).has_value());
  EXPECT_EQ(t.monetary[2], Decimal());
  EXPECT_EQ(t.id(3), "future");
  EXPECT_EQ(t.frequency[3], 0);
  // Without a window the edge event counts, the future one still does not.
  FactsTable all = Compute({as_of, std::nullopt}, {},
                           {{"at_edge", as_of - 30 * kDay, D("5.00")},
                            {"old", as_of - 3650 * kDay, D("1")},
                            {"future", as_of + 1, D("9.00")}});
  EXPECT_EQ(all.frequency, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(*all.recency_days(0), 30);
}

TEST(Facts, CountsIdenticalRowsRefundsAndZeroAmounts) {
  const int64_t as_of = AsOf();
  FactsTable t = Compute({as_of, std::nullopt}, {},
                         {{"c", as_of - kDay, D("10.00")},
                          {"c", as_of - kDay, D("10.00")},
                          {"c", as_of - 3 * kDay, D("-25.50")},
                          {"c", as_of - 2 * kDay + 5, D("0")}});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.frequency[0], 4);
  EXPECT_EQ(t.monetary[0].ToString(), "-5.50");
  EXPECT_EQ(t.last_event_micros[0], as_of - kDay);
  EXPECT_EQ(*t.recency_days(0), 1);
}

TEST(Facts, RecencyFloorsPartialDays) {
  const int64_t as_of = AsOf();
  FactsTable t = Compute(
      {as_of, std::nullopt}, {},
      {{"a", as_of - kDay + 1, D("1")}, {"b", as_of - 2 * kDay - 1, D("1")}});
  EXPECT_EQ(*t.recency_days(0), 0);
  EXPECT_EQ(*t.recency_days(1), 2);
}

TEST(Facts, CostsFollowTheWindowAndMakeKnownEntities) {
  const int64_t as_of = AsOf();
  FactsTable t =
      Compute({as_of, 10}, {"known_only"}, {{"buyer", as_of - kDay, D("3.00")}},
              {{"buyer", as_of - kDay, D("1.25")},
               {"buyer", as_of - 10 * kDay, D("100")},
               {"cost_only", as_of, D("0.50")},
               {"cost_only", as_of + 1, D("7")}});
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.id(0), "buyer");
  EXPECT_EQ(t.cost_to_serve[0].ToString(), "1.25");
  EXPECT_EQ(t.id(1), "cost_only");
  EXPECT_EQ(t.frequency[1], 0);
  EXPECT_EQ(t.cost_to_serve[1].ToString(), "0.50");
  EXPECT_EQ(t.id(2), "known_only");
  EXPECT_EQ(t.cost_to_serve[2], Decimal());
}

TEST(Facts, IdsAreOpaqueBytesSortedByBytes) {
  const int64_t as_of = AsOf();
  std::vector<std::string> ids = {"b",
                                  "B",
                                  "a ",
                                  "a",
                                  "\xc3\xa9",
                                  "z",
                                  "A",
                                  " a",
                                  "ab",
                                  std::string("a\0b", 3),
                                  "a-very-long-identifier-beyond-inline"};
  std::vector<ActivityEvent> events;
  for (const std::string& id : ids) events.push_back({id, as_of, D("1")});
  FactsTable t = Compute({as_of, std::nullopt}, {}, events);
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end(),
            [](const std::string& x, const std::string& y) {
              return absl::string_view(x) < absl::string_view(y);
            });
  ASSERT_EQ(t.size(), ids.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t.id(i), sorted[i]);
  EXPECT_EQ(t.id(t.size() - 1), "\xc3\xa9");  // bytes, not signed chars
}

TEST(Facts, ValidationNamesTheFieldAndRow) {
  const int64_t as_of = AsOf();
  EXPECT_EQ(FactsAccumulator::Create({as_of, 0}).status().message(),
            "window_days: must be at least 1 when set, got 0");
  absl::StatusOr<FactsAccumulator> acc = FactsAccumulator::Create({as_of, 7});
  ASSERT_TRUE(acc.ok());
  std::vector<ActivityEvent> events = {{"a", as_of, D("1")},
                                       {"", as_of, D("1")}};
  absl::Status s = acc->AddEvents(events);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "events[1].entity_id: empty");
  EXPECT_EQ(acc->entity_count(), 0u);  // all or nothing
  std::vector<CostEvent> costs = {{"a", as_of, D("-0.01")}};
  s = acc->AddCosts(costs);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("costs[0].cost"), absl::string_view::npos) << s;
  std::vector<absl::string_view> known = {"x", ""};
  s = acc->AddKnownEntities(known);
  EXPECT_TRUE(absl::StartsWith(s.message(), "entity_ids[1]")) << s;
  std::vector<PartialFacts> partial = {{"a", 2, D("1"), std::nullopt, D("0")}};
  s = acc->AddPartialFacts(partial);
  EXPECT_TRUE(absl::StartsWith(s.message(), "facts[0].last_event_time")) << s;
  std::vector<ActivityEvent> huge = {
      {"a", as_of, Decimal::FromRawNanos(static_cast<Int128>(1) << 100)}};
  EXPECT_NE(acc->AddEvents(huge).message().find("events[0].amount"),
            absl::string_view::npos);
}

// A straightforward reference implementation of SCORING.md 1-2.
FactsTable Reference(const FactsOptions& o,
                     const std::vector<ActivityEvent>& events,
                     const std::vector<CostEvent>& costs) {
  std::map<std::string, EntityFacts> m;
  auto in = [&](int64_t t) {
    return t <= o.as_of_micros &&
           (!o.window_days || t > o.as_of_micros - *o.window_days * kDay);
  };
  for (const ActivityEvent& e : events) {
    EntityFacts& f = m[std::string(e.entity_id)];
    if (!in(e.time_micros)) continue;
    f.frequency++;
    f.monetary += e.amount;
    f.last_event_micros =
        std::max(f.last_event_micros.value_or(INT64_MIN), e.time_micros);
  }
  for (const CostEvent& c : costs) {
    EntityFacts& f = m[std::string(c.entity_id)];
    if (in(c.time_micros)) f.cost_to_serve += c.cost;
  }
  FactsTable t;
  t.as_of_micros = o.as_of_micros;
  t.window_days = o.window_days;
  for (auto& [id, f] : m) {
    f.entity_id = id;
    t.Append(f);
  }
  return t;
}

struct RandomData {
  std::vector<std::string> ids;
  std::vector<ActivityEvent> events;
  std::vector<CostEvent> costs;
};

RandomData MakeRandom(uint64_t seed, size_t entities, size_t events,
                      int64_t as_of) {
  std::mt19937_64 rng(seed);
  RandomData d;
  for (size_t i = 0; i < entities; ++i) {
    std::string id = "e" + std::to_string(rng() % 1000000000);
    if (i % 7 == 0) id += "-with-a-long-suffix-" + std::to_string(i);
    d.ids.push_back(id);
  }
  for (size_t i = 0; i < events; ++i) {
    const std::string& id = d.ids[rng() % entities];
    const int64_t t =
        as_of - static_cast<int64_t>(rng() % (400 * kDay)) + 5 * kDay;
    d.events.push_back(
        {id, t,
         Decimal::FromCents(static_cast<int64_t>(rng() % 20000) - 2000)});
    if (i % 3 == 0) {
      d.costs.push_back(
          {d.ids[rng() % entities], t,
           Decimal::FromCents(static_cast<int64_t>(rng() % 500))});
    }
  }
  return d;
}

TEST(Facts, LargeRandomPopulationMatchesReferenceInAnyOrderAndBatching) {
  const int64_t as_of = AsOf();
  RandomData d = MakeRandom(42, 20000, 200000, as_of);
  for (std::optional<int64_t> window :
       {std::optional<int64_t>(), std::optional<int64_t>(90)}) {
    FactsOptions o{as_of, window};
    FactsTable ref = Reference(o, d.events, d.costs);
    FactsTable once = Compute(o, {}, d.events, d.costs);
    ExpectSameTable(once, ref);

    // Shuffled, in uneven batches, part of it pre-aggregated.
    std::mt19937_64 rng(7);
    std::vector<ActivityEvent> ev = d.events;
    std::vector<CostEvent> co = d.costs;
    std::shuffle(ev.begin(), ev.end(), rng);
    std::shuffle(co.begin(), co.end(), rng);
    absl::StatusOr<FactsAccumulator> acc = FactsAccumulator::Create(o);
    ASSERT_TRUE(acc.ok());
    size_t pos = 0;
    int batch = 0;
    while (pos < ev.size()) {
      const size_t n =
          std::min(ev.size() - pos, static_cast<size_t>(1 + rng() % 90000));
      absl::Span<const ActivityEvent> part(ev.data() + pos, n);
      if (batch++ % 2 == 0) {
        ASSERT_TRUE(acc->AddEvents(part).ok());
      } else {
        // Pre-aggregate this batch elsewhere and send partial facts.
        FactsTable sub = Compute(
            o, {}, std::vector<ActivityEvent>(part.begin(), part.end()));
        std::vector<PartialFacts> partial;
        for (size_t i = 0; i < sub.size(); ++i) {
          PartialFacts f{sub.id(i), sub.frequency[i], sub.monetary[i],
                         std::nullopt, sub.cost_to_serve[i]};
          if (sub.frequency[i] > 0)
            f.last_event_micros = sub.last_event_micros[i];
          partial.push_back(f);
        }
        ASSERT_TRUE(acc->AddPartialFacts(partial).ok());
      }
      pos += n;
    }
    ASSERT_TRUE(acc->AddCosts(co).ok());
    absl::StatusOr<FactsTable> batched = std::move(*acc).Finish();
    ASSERT_TRUE(batched.ok());
    ExpectSameTable(*batched, ref);
  }
}

}  // namespace
}  // namespace rapport::scoring
