#include "common/differentiation/score_messages.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/proto_convert.h"
#include "common/status.h"

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

namespace {

absl::StatusOr<StoredValue> ReadEntityScore(const sv1::EntityScore& s,
                                            const std::string& model_id,
                                            int64_t score_time_us) {
  // Within what the value tables hold (r, f and m are scores of 1 to 10
  // bins, 0 for a Prospect; the value is 0.00 to 100.00).
  for (const auto& [name, score] : {std::pair<const char*, int32_t>{"r", s.r()},
                                    {"f", s.f()},
                                    {"m", s.m()}}) {
    if (score < 0 || score > 10) {
      return absl::OutOfRangeError(
          absl::StrCat("score.", name, " is ", score, ", not 0 to 10"));
    }
  }
  if (s.value_hundredths() < 0 || s.value_hundredths() > 10000) {
    return absl::OutOfRangeError(absl::StrCat("score.value_hundredths is ",
                                              s.value_hundredths(),
                                              ", not 0 to 10000"));
  }
  if (s.segment().size() > 64) {
    return absl::OutOfRangeError("score.segment is longer than 64 bytes");
  }
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

}  // namespace

absl::StatusOr<StoredValue> FromEntityScore(const sv1::EntityScore& s,
                                            const std::string& model_id,
                                            int64_t score_time_us) {
  absl::StatusOr<StoredValue> v = ReadEntityScore(s, model_id, score_time_us);
  if (v.ok()) return v;
  // The scoring service's answer, not the caller's request: what is wrong
  // with it is for the operator's log (a replica of another version), and
  // the caller learns only that the service failed.
  return MarkInternal(absl::InternalError(
      absl::StrCat("the scoring service's score of ", s.entity_id(),
                   " cannot be stored: ", v.status().message())));
}

}  // namespace rapport::differentiation
