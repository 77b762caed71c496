// RFM scores, segments, value and profitability tiers (SCORING.md 3-6).
//
// ScorePopulation ranks a whole FactsTable and returns per-entity scores plus
// the model (thresholds) that produced them; ScoreEntity scores one entity
// later against a stored model in O(k), agreeing with the batch for every
// member of the population:
//
//   RAPPORT_ASSIGN_OR_RETURN(FactsTable facts, acc.Finish());
//   RAPPORT_ASSIGN_OR_RETURN(PopulationScores scores,
//                            ScorePopulation(facts, ScoringOptions{}));
//   scores.segment_name(i);          // "Champions"
//   scores.value_cents[i];           // 8333 means 83.33
//   TierName(scores.tier[i]);        // "Gold"
//   // later, one entity with new facts:
//   RAPPORT_ASSIGN_OR_RETURN(EntityScore one,
//       ScoreEntity(scores.model, row, as_of, ScoringOptions{}));
//
// Rules. Over the N entities with at least one counted event and a metric v
// (frequency, monetary, and -recency_days), L = #{v' < v} and
// score = 1 + floor(k L / N). The model keeps, per metric, the thresholds
// u_j = sorted[ceil(j N / k) - 1] (j = 1..k-1) and score(v) = 1 + #{j : v >
// u_j}. Prospects (no counted event) get 0 scores, segment "Prospect", value 0.
// Tiers: Lead if profit = monetary - cost_to_serve < 0; among the M entities
// with profit >= 0, q = L / M (strictly-less count over profit): Platinum if
// 10 L >= 9 M, Gold if 10 L >= 7 M, else Iron. The model stores the profit
// cut points gold_above = sorted[ceil(7M/10) - 1] and
// platinum_above = sorted[ceil(9M/10) - 1] of the non-negative profits, so a
// single entity is Platinum iff profit > platinum_above, Gold iff
// profit > gold_above, which is exactly the rule above for every member of
// the population. With M = 0 there are no cut points and a single entity with
// profit >= 0 is Iron.
//
// Memory: the scores take 8 bytes per entity; ranking uses temporary copies
// of the metric being ranked (at most 16 bytes per entity at a time per
// thread). Work is split across two threads.

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_RFM_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_RFM_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "services/scoring/engine/facts.h"

namespace rapport::scoring {

inline constexpr absl::string_view kProspectSegment = "Prospect";

// One segment rule: R and F (on the 1..5 scale) in the given inclusive
// ranges. Rules are tried in order; the first match wins.
struct SegmentRule {
  std::string name;
  int r_min = 1, r_max = 5, f_min = 1, f_max = 5;
};

// The R,F -> segment map, compiled to a 5x5 table.
class SegmentMap {
 public:
  static constexpr uint8_t kProspect = 255;  // segment index of prospects

  // The map of SCORING.md section 4 (Champions ... Hibernating).
  static SegmentMap Default();
  // InvalidArgument if a rule has an empty name or a range outside 1..5, or
  // if some R,F cell is matched by no rule.
  static absl::StatusOr<SegmentMap> Create(std::vector<SegmentRule> rules);

  // Segment index for R, F scores on the 1..k scale (k = bins).
  uint8_t Lookup(int r, int f, int bins) const;
  // Name of a segment index; "Prospect" for kProspect.
  absl::string_view name(uint8_t index) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::array<uint8_t, 25> cell_{};  // [(r-1)*5 + (f-1)]
};

enum class Tier : uint8_t { kLead = 0, kIron = 1, kGold = 2, kPlatinum = 3 };
const char* TierName(Tier tier);  // "Lead", "Iron", "Gold", "Platinum"

enum class Channel : uint8_t {
  kEmail,
  kPhone,
  kSms,
  kVisit,
  kWeb,
  kMail,
  kEvent
};
const char* ChannelName(Channel channel);  // "email", "phone", ...
// Parses "email", "phone", "sms", "visit", "web", "mail", "event".
absl::StatusOr<Channel> ParseChannel(absl::string_view name);

// How an entity of a tier may be contacted.
struct ContactPolicy {
  std::vector<Channel> channels;  // allowed channels, non-empty, no repeats
  std::string service_level;      // e.g. "dedicated", "self-service"
  Decimal cost_ceiling;           // most that one interaction may cost, >= 0
};

// Contact policy per tier. Defaults:
//   Platinum: all channels, "dedicated", 500.00
//   Gold: email phone sms web mail event, "priority", 100.00
//   Iron: email sms web mail, "standard", 20.00
//   Lead: email web mail, "self-service", 2.00
struct TierPolicies {
  ContactPolicy lead, iron, gold, platinum;
  static TierPolicies Default();
  const ContactPolicy& For(Tier tier) const;
};

// Relative weights of R, F, M in the value (default equal).
struct ValueWeights {
  uint32_t r = 1, f = 1, m = 1;
};

struct ScoringOptions {
  int bins = 5;  // k, 2..10
  SegmentMap segments = SegmentMap::Default();
  ValueWeights weights;
  TierPolicies tier_policies = TierPolicies::Default();
};

// InvalidArgument naming the field: `bins: must be in 2..10, got 11`,
// `weights: ...`, `tier_policies.gold.channels: ...`.
absl::Status ValidateScoringOptions(const ScoringOptions& options);

// What a batch run learned; enough to score one entity later.
struct ScoreModel {
  int bins = 5;
  int64_t as_of_micros = 0;
  int64_t scored_population = 0;  // N
  // k-1 thresholds each (empty when N == 0). Recency thresholds are on
  // v = -recency_days.
  std::vector<int64_t> recency_thresholds;
  std::vector<int64_t> frequency_thresholds;
  std::vector<Decimal> monetary_thresholds;
  int64_t profitable_population = 0;      // M, entities with profit >= 0
  std::optional<Decimal> gold_above;      // empty when M == 0
  std::optional<Decimal> platinum_above;  // empty when M == 0
};

// Scores of a population, in the FactsTable's order.
struct PopulationScores {
  ScoreModel model;
  std::vector<uint8_t> r, f, m;       // 0 for prospects, else 1..k
  std::vector<uint8_t> segment;       // index into segment_names
  std::vector<uint16_t> value_cents;  // value * 100, 0..10000
  std::vector<Tier> tier;
  std::vector<std::string> segment_names;  // copied from the SegmentMap

  size_t size() const { return r.size(); }
  absl::string_view segment_name(size_t i) const;
  Decimal value(size_t i) const { return Decimal::FromCents(value_cents[i]); }
};

absl::StatusOr<PopulationScores> ScorePopulation(const FactsTable& facts,
                                                 const ScoringOptions& options);

// One entity scored against a stored model.
struct EntityScore {
  int r = 0, f = 0, m = 0;
  std::optional<int64_t> recency_days;
  std::string segment;
  Decimal value;  // 2 decimals
  Tier tier = Tier::kIron;
  Decimal profit;
};

// `facts` must be computed with the same window rule; recency is taken at
// `as_of_micros`. InvalidArgument if the model's bins differ from the
// options' or the model is malformed.
absl::StatusOr<EntityScore> ScoreEntity(const ScoreModel& model,
                                        const EntityFacts& facts,
                                        int64_t as_of_micros,
                                        const ScoringOptions& options);

// The rank rule itself, for tests and small inputs: 1 + floor(k L / N) for
// each value (O(N log N)).
std::vector<int> RankScores(const std::vector<Int128>& values, int bins);

// Value in cents for scores on the 1..k scale, exact, half away from zero.
uint16_t ValueCents(int r, int f, int m, int bins, const ValueWeights& w);

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_RFM_H_
