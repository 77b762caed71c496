#include "common/differentiation/score_messages.h"

#include "common/base/status_macros.h"
#include "common/proto_convert.h"

namespace rapport::differentiation {

namespace sv1 = ::rapport::scoring::v1;

absl::Status SetFacts(const EntityFacts& f, sv1::EntityFacts* out) {
  out->set_entity_id(f.entity_id);
  out->set_frequency(f.frequency);
  RAPPORT_ASSIGN_OR_RETURN(*out->mutable_monetary(),
                           ToMoney(f.monetary, "", "monetary"));
  if (f.last_event_us.has_value())
    *out->mutable_last_event_time() = ToTimestamp(*f.last_event_us);
  RAPPORT_ASSIGN_OR_RETURN(*out->mutable_cost_to_serve(),
                           ToMoney(f.cost_to_serve, "", "cost_to_serve"));
  return absl::OkStatus();
}

absl::StatusOr<StoredValue> FromEntityScore(const sv1::EntityScore& s,
                                            const std::string& model_id,
                                            int64_t score_time_us) {
  StoredValue v;
  v.entity_id = s.entity_id();
  v.model_id = model_id;
  if (s.has_recency_days()) v.recency_days = s.recency_days();
  v.frequency = s.frequency();
  RAPPORT_ASSIGN_OR_RETURN(v.monetary,
                           FromMoney(s.monetary(), "score.monetary"));
  v.r = s.r();
  v.f = s.f();
  v.m = s.m();
  v.segment = s.segment();
  v.value_hundredths = s.value_hundredths();
  RAPPORT_ASSIGN_OR_RETURN(v.cost_to_serve,
                           FromMoney(s.cost_to_serve(), "score.cost_to_serve"));
  RAPPORT_ASSIGN_OR_RETURN(v.profit, FromMoney(s.profit(), "score.profit"));
  v.tier = s.tier();
  v.score_time_us = score_time_us;
  return v;
}

}  // namespace rapport::differentiation
