// What every counterpart service's logic checks in a request and builds in
// an answer alike: request ids and what a retried request said, ids, amounts
// in the deployment's currency, etags, not-found errors and pages of
// records. Errors name the field.
//
//   RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
//   RAPPORT_ASSIGN_OR_RETURN(Decimal cost, ReadAmount(request.cost(), "cost",
//                                                     "USD", false));
//   store->Create(record, RequestFingerprint(request.member()), ...);
#ifndef RAPPORT_COMMON_REQUESTS_H_
#define RAPPORT_COMMON_REQUESTS_H_

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/decimal.h"
#include "common/paging.h"
#include "google/type/money.pb.h"

namespace rapport {

inline constexpr size_t kMaxRequestIdBytes = 128;

// The fingerprint of what a request said: its bytes in one order (map
// entries sorted), with `extra`; a retry under the same request id must say
// the same.
std::string RequestFingerprint(const google::protobuf::MessageLite& m,
                               absl::string_view extra = "");
// The fingerprint of the entity a create request makes (a Customer, a
// Partner, a Member): RequestFingerprint without the fields the API ignores
// there (output only: id, create_time, update_time, etag, value,
// created_by), so that a retry that sends back a record it read says the
// same.
std::string EntityFingerprint(const google::protobuf::Message& entity);
// `entity` without those fields.
void ClearOutputOnlyFields(google::protobuf::Message* entity);
// The same, with every amount of `m` that names no currency taken as in
// `currency`, as ReadAmount takes it: a retry that spells the deployment's
// currency out (or leaves it out) says the same.
std::string RequestFingerprintIn(const std::string& currency,
                                 const google::protobuf::Message& m,
                                 absl::string_view extra = "");

// An update mask that names at least one field, each of `updatable` (which
// the error lists, in its order); else INVALID_ARGUMENT naming update_mask.
absl::Status CheckUpdateMask(const google::protobuf::FieldMask& mask,
                             absl::Span<const absl::string_view> updatable);

// How far ahead of this server's clock a caller's may be.
inline constexpr int64_t kClockSkewUs = 5 * 60 * 1'000'000LL;
// INVALID_ARGUMENT naming `field` when `time_us`, the time something
// happened, is after `now_us` by more than kClockSkewUs.
absl::Status CheckNotFuture(int64_t time_us, int64_t now_us,
                            absl::string_view field);

// An optional request id: at most kMaxRequestIdBytes of text that neither
// begins nor ends with white space (it is a key).
absl::Status CheckRequestId(const std::string& request_id);
// What a required enum field holding `value` is told, naming the values
// `allowed` in words ("approved, rejected or won"): unset (0), "is required:
// ..."; a number the API does not define (`known` false), that number is
// not a known value; one it defines but this call does not take, "must be
// ...".
std::string EnumRefusal(int value, bool known, absl::string_view allowed);

// A request id used before for a request that said something else (`what`,
// e.g. "a member"): INVALID_ARGUMENT naming request_id, the client's mistake
// to fix, and never ALREADY_EXISTS, which a client could take for "done".
absl::Status RequestIdReused(absl::string_view what);
// A required id (26 characters of base32).
absl::Status CheckId(const std::string& id, absl::string_view field);

// An amount in `currency` (or in none given); negative ones refused unless
// `negative_ok`.
absl::StatusOr<Decimal> ReadAmount(const google::type::Money& money,
                                   absl::string_view field,
                                   const std::string& currency,
                                   bool negative_ok);
// `d` in `currency` (empty when it cannot be one: never for stored amounts).
google::type::Money MoneyIn(const Decimal& d, const std::string& currency);

// ABORTED when `given` (non-empty) is not the etag of `version`;
// INVALID_ARGUMENT naming `field` when it is no etag this service issues
// (not a version number), which no read and retry would mend.
absl::Status CheckEtag(const std::string& given, int64_t version,
                       absl::string_view what, const std::string& id,
                       absl::string_view field = "etag");
std::string EtagOf(int64_t version);

// NOT_FOUND: "<what> <id> does not exist".
absl::Status EntityNotFound(absl::string_view what, const std::string& id);

// What FindOrCreate found or made, and whether this request made it.
template <typename Entity>
struct Identified {
  Entity entity;
  bool created = false;
};

// How a counterpart's Identify<Entity> finds, reads and makes its entity.
template <typename Entity>
struct IdentifySteps {
  // The ids the request's identities name.
  std::function<absl::StatusOr<std::vector<std::string>>()> find;
  // One entity, as the answer shows it.
  std::function<absl::StatusOr<Entity>(const std::string&)> get;
  // Makes the entity the identities name (ALREADY_EXISTS when a concurrent
  // call made it first, or holds one of its identities).
  std::function<absl::StatusOr<Entity>()> create;
  // The id a create under the request's id gets (empty without one), and the
  // fingerprint of the create that this request makes (RequestFingerprint).
  std::string made_here;
  std::string fingerprint;
  // The fingerprint stored with `made_here`'s create; none when nothing was
  // made under the request id (or it was deleted since).
  std::function<absl::StatusOr<std::optional<std::string>>()> made_before;
  // Plural noun ("partners") and the request's subject ("a partner") in
  // errors; advice when the identities name several.
  absl::string_view nouns;
  absl::string_view what;
  absl::string_view advice;
};

// Identify-or-create, as each counterpart's Identify<Entity> does it.
//
// A request id names one identify. If a create under it made an entity,
// another request under the id is refused (RequestIdReused(what)), whatever
// its identities find now, and its retry answers with that entity, created,
// even if its identities have moved or been removed since; deleted since, it
// is identified (or made) anew.
//
// Otherwise `find` gives the ids the identities name; one is read with
// `get`; none, and `create` makes it. A create that loses a race looks
// again, three times at most. Several named: FAILED_PRECONDITION listing
// them, "the identities name 2 <nouns> (a, b); <advice>".
template <typename Entity>
absl::StatusOr<Identified<Entity>> FindOrCreate(
    const IdentifySteps<Entity>& steps) {
  if (!steps.made_here.empty()) {
    absl::StatusOr<std::optional<std::string>> made = steps.made_before();
    if (!made.ok()) return made.status();
    if (made->has_value()) {
      if (**made != steps.fingerprint) return RequestIdReused(steps.what);
      absl::StatusOr<Entity> first = steps.get(steps.made_here);
      if (first.ok()) return Identified<Entity>{*std::move(first), true};
      if (!absl::IsNotFound(first.status())) return first.status();
    }
  }
  absl::Status lost;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<std::vector<std::string>> found = steps.find();
    if (!found.ok()) return found.status();
    if (found->size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("the identities name ", found->size(), " ", steps.nouns,
                       " (", absl::StrJoin(*found, ", "), "); ", steps.advice));
    }
    if (found->size() == 1) {
      absl::StatusOr<Entity> entity = steps.get(found->front());
      if (!entity.ok()) return entity.status();
      return Identified<Entity>{
          *std::move(entity),
          !steps.made_here.empty() && found->front() == steps.made_here};
    }
    absl::StatusOr<Entity> created = steps.create();
    if (absl::IsAlreadyExists(created.status())) {
      lost = created.status();
      continue;
    }
    if (!created.ok()) return created.status();
    return Identified<Entity>{*std::move(created), true};
  }
  return lost;
}

// Where a page of a list in id order, or in value order (highest first),
// goes on: after this id, or after this value and id.
struct ListCursor {
  std::string id;
  std::optional<int> value_hundredths;
};
// The cursor that a page token's key (DecodePageToken) holds.
absl::StatusOr<ListCursor> ReadListCursor(const std::string& key,
                                          bool by_value);
// The key of the page token after `id` (of `value_hundredths`, by value).
std::string ListCursorKey(bool by_value, int value_hundredths,
                          const std::string& id);

// Adds `records` (read one more than `size` to know if there is more) to
// `response` through `add`, with the next page's token after the last id.
template <typename Record, typename Response, typename Add>
void AddPage(std::vector<Record>& records, int size, const std::string& filter,
             Response* response, Add add) {
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (Record& r : records) add(r);
  if (more) {
    response->set_next_page_token(EncodePageToken(records.back().id, filter));
  }
}

// AddPage for a list in time order: the next page's token carries the last
// item's (time_of(item), id).
template <typename Record, typename Response, typename TimeOf, typename Add>
void AddTimePage(std::vector<Record>& records, int size,
                 const std::string& filter, Response* response, TimeOf time_of,
                 Add add) {
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (Record& r : records) add(r);
  if (more) {
    response->set_next_page_token(
        EncodeTimeCursor(time_of(records.back()), records.back().id, filter));
  }
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_REQUESTS_H_
