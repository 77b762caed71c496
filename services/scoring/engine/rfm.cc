#include "services/scoring/engine/rfm.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"

namespace rapport::scoring {
namespace {

constexpr size_t kParallelThreshold = 1 << 15;

// Runs a and b, in two threads when `n` is large.
template <typename A, typename B>
void RunBoth(size_t n, A&& a, B&& b) {
  if (n < kParallelThreshold) {
    a();
    b();
    return;
  }
  std::thread other(std::forward<B>(b));
  a();
  other.join();
}

// Positions ceil(j N / k) - 1 for j = 1..k-1, ascending.
std::vector<size_t> ThresholdPositions(size_t n, size_t parts, size_t k_from,
                                       size_t k_to) {
  std::vector<size_t> pos;
  for (size_t j = k_from; j <= k_to; ++j)
    pos.push_back((j * n + parts - 1) / parts - 1);
  return pos;
}

// Places the order statistics at every position of `pos` (sorted ascending,
// all inside [lo, hi)) as std::nth_element would, in O(n log |pos|).
template <typename T>
void SelectAll(std::vector<T>& v, size_t lo, size_t hi,
               const std::vector<size_t>& pos, size_t plo, size_t phi) {
  if (plo >= phi || lo >= hi) return;
  const size_t p = pos[(plo + phi) / 2];
  std::nth_element(v.begin() + lo, v.begin() + p, v.begin() + hi);
  const size_t left_end =
      std::lower_bound(pos.begin() + plo, pos.begin() + phi, p) - pos.begin();
  const size_t right_begin =
      std::upper_bound(pos.begin() + plo, pos.begin() + phi, p) - pos.begin();
  SelectAll(v, lo, p, pos, plo, left_end);
  SelectAll(v, p + 1, hi, pos, right_begin, phi);
}

// Thresholds u_j = sorted[ceil(j N / k) - 1], j = 1..k-1; reorders `v`.
template <typename T>
std::vector<T> Thresholds(std::vector<T>& v, int bins) {
  std::vector<T> out;
  if (v.empty()) return out;
  std::vector<size_t> pos = ThresholdPositions(v.size(), bins, 1, bins - 1);
  SelectAll(v, 0, v.size(), pos, 0, pos.size());
  for (size_t p : pos) out.push_back(v[p]);
  return out;
}

template <typename T>
inline int ScoreAgainst(const T& v, const std::vector<T>& thresholds) {
  int s = 1;
  for (const T& u : thresholds) s += v > u ? 1 : 0;
  return s;
}

Tier TierOf(Decimal profit, const std::optional<Decimal>& gold_above,
            const std::optional<Decimal>& platinum_above) {
  if (profit.is_negative()) return Tier::kLead;
  if (!platinum_above || !gold_above) return Tier::kIron;
  if (profit > *platinum_above) return Tier::kPlatinum;
  if (profit > *gold_above) return Tier::kGold;
  return Tier::kIron;
}

absl::Status ValidatePolicy(const ContactPolicy& p, absl::string_view name) {
  if (p.channels.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tier_policies.", name, ".channels: must not be empty"));
  }
  uint32_t seen = 0;
  for (Channel c : p.channels) {
    const uint32_t bit = 1u << static_cast<int>(c);
    if (static_cast<int>(c) > static_cast<int>(Channel::kEvent)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tier_policies.", name, ".channels: unknown channel"));
    }
    if (seen & bit) {
      return absl::InvalidArgumentError(
          absl::StrCat("tier_policies.", name, ".channels: repeated channel ",
                       ChannelName(c)));
    }
    seen |= bit;
  }
  if (p.service_level.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tier_policies.", name, ".service_level: must not be empty"));
  }
  if (p.cost_ceiling.is_negative()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tier_policies.", name, ".cost_ceiling: must not be negative"));
  }
  return absl::OkStatus();
}

}  // namespace

SegmentMap SegmentMap::Default() {
  absl::StatusOr<SegmentMap> map = Create({
      {"Champions", 5, 5, 4, 5},
      {"Loyal Customers", 3, 4, 4, 5},
      {"Potential Loyalists", 4, 5, 2, 3},
      {"New Customers", 5, 5, 1, 1},
      {"Promising", 4, 4, 1, 1},
      {"Need Attention", 3, 3, 3, 3},
      {"About to Sleep", 3, 3, 1, 2},
      {"Cannot Lose Them", 1, 2, 5, 5},
      {"At Risk", 1, 2, 3, 4},
      {"Hibernating", 1, 2, 1, 2},
  });
  return *std::move(map);  // the default table covers every cell
}

absl::StatusOr<SegmentMap> SegmentMap::Create(std::vector<SegmentRule> rules) {
  SegmentMap map;
  map.cell_.fill(kProspect);
  for (size_t i = 0; i < rules.size(); ++i) {
    const SegmentRule& rule = rules[i];
    if (rule.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("segments[", i, "].name: must not be empty"));
    }
    auto in = [](int v) { return v >= 1 && v <= 5; };
    if (!in(rule.r_min) || !in(rule.r_max) || !in(rule.f_min) ||
        !in(rule.f_max) || rule.r_min > rule.r_max || rule.f_min > rule.f_max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "segments[", i, "]: R and F ranges must be within 1..5"));
    }
    auto it = std::find(map.names_.begin(), map.names_.end(), rule.name);
    const size_t index = it - map.names_.begin();
    if (it == map.names_.end()) {
      if (map.names_.size() >= 64) {
        return absl::InvalidArgumentError("segments: at most 64 names");
      }
      map.names_.push_back(rule.name);
    }
    for (int r = rule.r_min; r <= rule.r_max; ++r) {
      for (int f = rule.f_min; f <= rule.f_max; ++f) {
        uint8_t& cell = map.cell_[(r - 1) * 5 + (f - 1)];
        if (cell == kProspect) cell = static_cast<uint8_t>(index);
      }
    }
  }
  for (int c = 0; c < 25; ++c) {
    if (map.cell_[c] == kProspect) {
      return absl::InvalidArgumentError(absl::StrCat(
          "segments: no rule matches R=", c / 5 + 1, " F=", c % 5 + 1));
    }
  }
  return map;
}

uint8_t SegmentMap::Lookup(int r, int f, int bins) const {
  const int r5 = 1 + 5 * (r - 1) / bins;
  const int f5 = 1 + 5 * (f - 1) / bins;
  return cell_[(r5 - 1) * 5 + (f5 - 1)];
}

absl::string_view SegmentMap::name(uint8_t index) const {
  return index == kProspect ? kProspectSegment
                            : absl::string_view(names_[index]);
}

const char* TierName(Tier tier) {
  switch (tier) {
    case Tier::kLead:
      return "Lead";
    case Tier::kIron:
      return "Iron";
    case Tier::kGold:
      return "Gold";
    case Tier::kPlatinum:
      return "Platinum";
  }
  return "Unknown";
}

const char* ChannelName(Channel channel) {
  switch (channel) {
    case Channel::kEmail:
      return "email";
    case Channel::kPhone:
      return "phone";
    case Channel::kSms:
      return "sms";
    case Channel::kVisit:
      return "visit";
    case Channel::kWeb:
      return "web";
    case Channel::kMail:
      return "mail";
    case Channel::kEvent:
      return "event";
  }
  return "unknown";
}

absl::StatusOr<Channel> ParseChannel(absl::string_view name) {
  for (int c = 0; c <= static_cast<int>(Channel::kEvent); ++c) {
    if (name == ChannelName(static_cast<Channel>(c))) {
      return static_cast<Channel>(c);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "channel: unknown \"", name,
      "\" (expected email, phone, sms, visit, web, mail or event)"));
}

TierPolicies TierPolicies::Default() {
  TierPolicies p;
  p.platinum = {
      {Channel::kEmail, Channel::kPhone, Channel::kSms, Channel::kVisit,
       Channel::kWeb, Channel::kMail, Channel::kEvent},
      "dedicated",
      Decimal::FromUnits(500)};
  p.gold = {{Channel::kEmail, Channel::kPhone, Channel::kSms, Channel::kWeb,
             Channel::kMail, Channel::kEvent},
            "priority",
            Decimal::FromUnits(100)};
  p.iron = {{Channel::kEmail, Channel::kSms, Channel::kWeb, Channel::kMail},
            "standard",
            Decimal::FromUnits(20)};
  p.lead = {{Channel::kEmail, Channel::kWeb, Channel::kMail},
            "self-service",
            Decimal::FromUnits(2)};
  return p;
}

const ContactPolicy& TierPolicies::For(Tier tier) const {
  switch (tier) {
    case Tier::kLead:
      return lead;
    case Tier::kIron:
      return iron;
    case Tier::kGold:
      return gold;
    case Tier::kPlatinum:
      return platinum;
  }
  return iron;
}

absl::Status ValidateScoringOptions(const ScoringOptions& options) {
  if (options.bins < 2 || options.bins > 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("bins: must be in 2..10, got ", options.bins));
  }
  const ValueWeights& w = options.weights;
  if (w.r > 1'000'000 || w.f > 1'000'000 || w.m > 1'000'000) {
    return absl::InvalidArgumentError("weights: each must be at most 1000000");
  }
  if (w.r + w.f + w.m == 0) {
    return absl::InvalidArgumentError("weights: must not all be zero");
  }
  RAPPORT_RETURN_IF_ERROR(ValidatePolicy(options.tier_policies.lead, "lead"));
  RAPPORT_RETURN_IF_ERROR(ValidatePolicy(options.tier_policies.iron, "iron"));
  RAPPORT_RETURN_IF_ERROR(ValidatePolicy(options.tier_policies.gold, "gold"));
  RAPPORT_RETURN_IF_ERROR(
      ValidatePolicy(options.tier_policies.platinum, "platinum"));
  return absl::OkStatus();
}

uint16_t ValueCents(int r, int f, int m, int bins, const ValueWeights& w) {
  const uint64_t s = uint64_t{w.r} * (r - 1) + uint64_t{w.f} * (f - 1) +
                     uint64_t{w.m} * (m - 1);
  const uint64_t d = (uint64_t{w.r} + w.f + w.m) * (bins - 1);
  return static_cast<uint16_t>((20000 * s + d) / (2 * d));
}

absl::string_view PopulationScores::segment_name(size_t i) const {
  return segment[i] == SegmentMap::kProspect
             ? kProspectSegment
             : absl::string_view(segment_names[segment[i]]);
}

absl::StatusOr<PopulationScores> ScorePopulation(
    const FactsTable& facts, const ScoringOptions& options) {
  RAPPORT_RETURN_IF_ERROR(ValidateScoringOptions(options));
  const size_t n = facts.size();
  const int k = options.bins;
  const int64_t as_of = facts.as_of_micros;
  PopulationScores out;
  ScoreModel& model = out.model;
  model.bins = k;
  model.as_of_micros = as_of;
  out.segment_names = options.segments.names();

  // Thresholds: recency and frequency in one thread, monetary and profit in
  // the other.
  RunBoth(
      n,
      [&] {
        std::vector<int64_t> v;
        v.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          if (facts.frequency[i] > 0) {
            v.push_back(-FloorDays(as_of - facts.last_event_micros[i]));
          }
        }
        model.scored_population = static_cast<int64_t>(v.size());
        model.recency_thresholds = Thresholds(v, k);
        v.clear();
        for (size_t i = 0; i < n; ++i) {
          if (facts.frequency[i] > 0) v.push_back(facts.frequency[i]);
        }
        model.frequency_thresholds = Thresholds(v, k);
      },
      [&] {
        std::vector<Decimal> v;
        v.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          if (facts.frequency[i] > 0) v.push_back(facts.monetary[i]);
        }
        model.monetary_thresholds = Thresholds(v, k);
        v.clear();
        for (size_t i = 0; i < n; ++i) {
          Decimal profit = facts.monetary[i] - facts.cost_to_serve[i];
          if (!profit.is_negative()) v.push_back(profit);
        }
        model.profitable_population = static_cast<int64_t>(v.size());
        if (!v.empty()) {
          std::vector<size_t> pos = {(7 * v.size() + 9) / 10 - 1,
                                     (9 * v.size() + 9) / 10 - 1};
          SelectAll(v, 0, v.size(), pos, 0, pos.size());
          model.gold_above = v[pos[0]];
          model.platinum_above = v[pos[1]];
        }
      });

  out.r.resize(n);
  out.f.resize(n);
  out.m.resize(n);
  out.segment.resize(n);
  out.value_cents.resize(n);
  out.tier.resize(n);
  const SegmentMap& segments = options.segments;
  auto score_range = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      out.tier[i] = TierOf(facts.monetary[i] - facts.cost_to_serve[i],
                           model.gold_above, model.platinum_above);
      if (facts.frequency[i] == 0) {
        out.r[i] = out.f[i] = out.m[i] = 0;
        out.segment[i] = SegmentMap::kProspect;
        out.value_cents[i] = 0;
        continue;
      }
      const int r =
          ScoreAgainst<int64_t>(-FloorDays(as_of - facts.last_event_micros[i]),
                                model.recency_thresholds);
      const int f =
          ScoreAgainst<int64_t>(facts.frequency[i], model.frequency_thresholds);
      const int m =
          ScoreAgainst<Decimal>(facts.monetary[i], model.monetary_thresholds);
      out.r[i] = static_cast<uint8_t>(r);
      out.f[i] = static_cast<uint8_t>(f);
      out.m[i] = static_cast<uint8_t>(m);
      out.segment[i] = segments.Lookup(r, f, k);
      out.value_cents[i] = ValueCents(r, f, m, k, options.weights);
    }
  };
  RunBoth(
      n, [&] { score_range(0, n / 2); }, [&] { score_range(n / 2, n); });
  return out;
}

absl::StatusOr<EntityScore> ScoreEntity(const ScoreModel& model,
                                        const EntityFacts& facts,
                                        int64_t as_of_micros,
                                        const ScoringOptions& options) {
  RAPPORT_RETURN_IF_ERROR(ValidateScoringOptions(options));
  if (model.bins != options.bins) {
    return absl::InvalidArgumentError(
        absl::StrCat("bins: model was built with ", model.bins, " bins, not ",
                     options.bins));
  }
  const size_t want = model.scored_population > 0 ? model.bins - 1 : 0;
  if (model.recency_thresholds.size() != want ||
      model.frequency_thresholds.size() != want ||
      model.monetary_thresholds.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: expected ", want, " thresholds per metric"));
  }
  if (model.gold_above.has_value() != model.platinum_above.has_value()) {
    return absl::InvalidArgumentError(
        "model: gold_above and platinum_above must both be set or both empty");
  }
  if (facts.frequency < 0) {
    return absl::InvalidArgumentError("frequency: must not be negative");
  }
  if (facts.frequency > 0 && !facts.last_event_micros) {
    return absl::InvalidArgumentError(
        "last_event_time: required when frequency > 0");
  }
  if (facts.cost_to_serve.is_negative()) {
    return absl::InvalidArgumentError("cost_to_serve: must not be negative");
  }
  EntityScore s;
  s.profit = facts.monetary - facts.cost_to_serve;
  s.tier = TierOf(s.profit, model.gold_above, model.platinum_above);
  if (facts.frequency == 0) {
    s.segment = std::string(kProspectSegment);
    return s;
  }
  s.recency_days = FloorDays(as_of_micros - *facts.last_event_micros);
  s.r = ScoreAgainst<int64_t>(-*s.recency_days, model.recency_thresholds);
  s.f = ScoreAgainst<int64_t>(facts.frequency, model.frequency_thresholds);
  s.m = ScoreAgainst<Decimal>(facts.monetary, model.monetary_thresholds);
  s.segment = std::string(
      options.segments.name(options.segments.Lookup(s.r, s.f, model.bins)));
  s.value = Decimal::FromCents(
      ValueCents(s.r, s.f, s.m, model.bins, options.weights));
  return s;
}

std::vector<int> RankScores(const std::vector<Int128>& values, int bins) {
  std::vector<Int128> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> out;
  out.reserve(values.size());
  const Int128 n = static_cast<Int128>(values.size());
  for (const Int128& v : values) {
    const Int128 less =
        std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
    out.push_back(static_cast<int>(1 + bins * less / n));
  }
  return out;
}

}  // namespace rapport::scoring
