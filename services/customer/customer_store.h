// The customer service's storage interface: what the logic needs from a
// database, in plain structs. MysqlCustomerStore is the real one; unit tests
// use a fake of their own.
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/audit/audit.h"
#include "common/base/decimal.h"

namespace rapport::customer {

// What a write answers when its customer was merged after the caller
// resolved its id (ABORTED, marked so): the caller resolves the id again and
// writes once more, to the customer that stayed.
inline absl::Status MergedMeanwhile(absl::string_view id,
                                    absl::string_view into) {
  absl::Status s = absl::AbortedError(absl::StrCat(
      "customer ", id, " was merged into ", into, " just now; retry"));
  s.SetPayload("rapport.customer.merged", absl::Cord(into));
  return s;
}
inline bool IsMergedMeanwhile(const absl::Status& s) {
  return absl::IsAborted(s) &&
         s.GetPayload("rapport.customer.merged").has_value();
}

struct ExternalIdRecord {
  std::string source;
  std::string id;
  friend bool operator==(const ExternalIdRecord&,
                         const ExternalIdRecord&) = default;
};

struct CustomerRecord {
  std::string id;
  std::string display_name;
  std::string email;  // as given; may be empty
  std::string phone;  // E.164; may be empty
  std::string postal_code;
  std::vector<ExternalIdRecord> external_ids;
  std::map<std::string, std::string> attributes;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 1;
  bool erased = false;
  std::string merged_into;  // output only: set when merged into another
  std::string created_by;   // the subject of the token that created it
  friend bool operator==(const CustomerRecord&,
                         const CustomerRecord&) = default;
};

// Which customers ListCustomers returns, and in what order.
struct CustomerFilter {
  std::string segment;  // empty: any
  int tier = 0;         // rapport.customer.v1.Tier; 0: any
  std::optional<int> min_value_hundredths;
  std::optional<int> max_value_hundredths;
  bool by_value_desc = false;  // else by id
  bool needs_scores() const {
    return !segment.empty() || tier != 0 || min_value_hundredths ||
           max_value_hundredths || by_value_desc;
  }
};

struct PurchaseRecord {
  std::string id;
  std::string customer_id;
  int64_t purchase_time_us = 0;
  Decimal amount;
  std::string currency;
  std::string description;
  // Who recorded it: the subject of the caller's token.
  std::string recorded_by;
  int64_t create_time_us = 0;
};

// Identifies a write for idempotency: a retry with the same id and the same
// content hash gets the first result; the same id with another hash is refused.
struct RequestKey {
  std::string id;    // empty: not idempotent
  std::string hash;  // digest of the request's content
};

// A purchase or interaction written under a request id has the id
// KeyedId(scope, request id), so that a retry makes the same id and the
// primary key finds (and refuses) it: no index of request ids is kept.
inline constexpr char kPurchaseRequestScope[] = "purchase";
inline constexpr char kInteractionRequestScope[] = "interaction";

// The current consents one customer may hold, a purpose on a channel each:
// ListConsents answers them in one message, and a merge stays within it.
inline constexpr int kMaxConsents = 256;

struct InteractionRecord {
  std::string id;
  std::string customer_id;
  int channel = 0;  // rapport.customer.v1.Channel
  std::string kind;
  int64_t interaction_time_us = 0;
  Decimal cost;
  std::string note;
  // Who logged it: the subject of the caller's token.
  std::string recorded_by;
  int64_t create_time_us = 0;
};

struct ConsentRecord {
  std::string purpose;
  int channel = 0;  // rapport.customer.v1.Channel
  bool granted = false;
  int64_t capture_time_us = 0;
  std::string source;
};

// The identities an IdentifyCustomer call or an import row names.
struct IdentityQuery {
  std::string email;  // normalised; empty: none
  std::string phone;  // E.164; empty: none
  std::vector<ExternalIdRecord> external_ids;
};

struct MergeResult {
  CustomerRecord primary;  // after the merge
  int64_t moved_purchases = 0;
  int64_t moved_interactions = 0;
  int64_t moved_consents = 0;
  int64_t moved_identities = 0;
};

struct DuplicateGroupRecord {
  std::string reason;  // "email", "phone", "external_id", "name_postal_code"
  std::string key;
  std::vector<std::string> customer_ids;  // oldest first
};

// Where a page of duplicate groups ends: reason + "|" + key, then "\x1f" and
// the group's oldest id (keys hold no control characters). Two groups may
// share a key, and the id tells them apart.
inline std::string DuplicatesPageKey(const DuplicateGroupRecord& group) {
  return absl::StrCat(group.reason, "|", group.key, "\x1f",
                      group.customer_ids.front());
}
// Whether `group` comes after the page that `after` ends (a key alone, as
// earlier versions made it, ends after every group of that key).
inline bool DuplicatesAfter(const DuplicateGroupRecord& group,
                            absl::string_view after) {
  const size_t split = after.rfind('\x1f');
  const absl::string_view key = after.substr(0, split);
  const absl::string_view id = split == absl::string_view::npos
                                   ? absl::string_view("\xff")
                                   : after.substr(split + 1);
  const std::string own = absl::StrCat(group.reason, "|", group.key);
  return std::make_pair(absl::string_view(own),
                        absl::string_view(group.customer_ids.front())) >
         std::make_pair(key, id);
}

class CustomerStore {
 public:
  virtual ~CustomerStore() = default;

  // What a change naming an erased customer's (suppressed) identity is told.
  static constexpr char kSuppressedIdentity[] =
      "an identity given belongs to a customer who was erased and is "
      "suppressed; it cannot be used again";
  // The request hash an erasure leaves on the customer's purchases and
  // interactions: the hash of a row's content (its customer's email or
  // phone among it) could be matched against guesses. A request id that
  // finds it is told the customer was erased (kErasedRequest).
  static constexpr char kErasedHash[] = "erased";
  static constexpr char kErasedRequest[] =
      "what this request recorded belongs to a customer who has since been "
      "erased";

  // Inserts the customer, and `event` in the same transaction. ALREADY_EXISTS
  // naming the holder when an identity (email, phone, external id) is taken.
  // With a request id seen before: the stored customer (same hash; no new
  // event) or INVALID_ARGUMENT on request_id (other hash).
  //
  // Every change below writes its audit event in its own transaction: there
  // is never a change without its event.
  virtual absl::StatusOr<CustomerRecord> CreateCustomer(
      const CustomerRecord& customer, const RequestKey& request,
      const audit::Event& event) = 0;
  // The id of the customer that CreateCustomer stored under `request.id`, if
  // any; INVALID_ARGUMENT naming request_id when that request said something
  // else (its hash is not `request.hash`). Erasing or deleting that customer
  // forgets the request.
  virtual absl::StatusOr<std::optional<std::string>> CustomerCreatedBy(
      const RequestKey& request) = 0;
  // NOT_FOUND when there is no such customer.
  virtual absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) = 0;
  // The stored records (merged ones included, as GetCustomer gives them) of
  // those of `ids` that exist, in any order; absent ids are left out.
  virtual absl::StatusOr<std::vector<CustomerRecord>> GetCustomers(
      const std::vector<std::string>& ids) = 0;
  // Live (not merged) customers matching `filter`, after the cursor (the
  // last id; with by_value_desc, also its value), at most `limit`. Returns
  // each customer with its stored value (or -1 when unscored) for the next
  // cursor.
  struct ListCursor {
    std::string id;
    int value_hundredths = 0;
  };
  virtual absl::StatusOr<std::vector<std::pair<CustomerRecord, int>>>
  ListCustomers(const CustomerFilter& filter,
                const std::optional<ListCursor>& after, int limit) = 0;
  // Reads the customer under a row lock, applies `mutate` (which may refuse
  // with a status), bumps the version and writes it back in one transaction.
  // When `mutate` changes nothing, nothing is written or audited and the
  // customer is returned as it is.
  virtual absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id,
      const std::function<absl::Status(CustomerRecord&)>& mutate,
      const audit::Event& event) = 0;
  // Deletes the customer; FAILED_PRECONDITION when it has purchases and !force.
  // `check` sees the current record first and may refuse (etag).
  virtual absl::Status DeleteCustomer(
      const std::string& id, bool force,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) = 0;

  // Inserts a purchase of a live customer: NOT_FOUND for an unknown one,
  // FAILED_PRECONDITION for an erased one, ABORTED for one merged into another
  // (resolve the id and call again). Idempotent by `request` like
  // CreateCustomer: a retry answers with the purchase first recorded. With a
  // request id, the purchase's id must be KeyedId(kPurchaseRequestScope, it).
  absl::StatusOr<PurchaseRecord> RecordPurchase(const PurchaseRecord& purchase,
                                                const RequestKey& request) {
    return std::move(RecordPurchases({{purchase, request}}).front());
  }
  // Many purchases at once, each as RecordPurchase would record it on its
  // own: one result per purchase, in order.
  struct NewPurchase {
    PurchaseRecord purchase;
    RequestKey request;
  };
  virtual std::vector<absl::StatusOr<PurchaseRecord>> RecordPurchases(
      const std::vector<NewPurchase>& purchases) = 0;
  // The customer's purchases with start <= time < end, after the (time, id)
  // cursor, oldest first, at most `limit`.
  struct PurchaseQuery {
    std::string customer_id;
    std::optional<int64_t> start_time_us;
    std::optional<int64_t> end_time_us;
    std::optional<std::pair<int64_t, std::string>> after;
    int limit = 50;
  };
  virtual absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(
      const PurchaseQuery& query) = 0;

  // --- Identification ---

  // The live customer an id names: itself, or the customer it was merged
  // into (following merges). NOT_FOUND when neither exists.
  virtual absl::StatusOr<std::string> ResolveCustomerId(
      const std::string& id) = 0;
  // Ids of the live customers holding any of the identities (sorted, unique);
  // an email or phone a merged record kept names the customer it went into.
  virtual absl::StatusOr<std::vector<std::string>> FindByIdentities(
      const IdentityQuery& query) = 0;
  // Groups of likely duplicates after `after_key` (DuplicatesPageKey of the
  // last group of the page before), at most `limit`, in (reason, key, oldest
  // id) order.
  virtual absl::StatusOr<std::vector<DuplicateGroupRecord>> FindDuplicates(
      const std::string& after_key, int limit) = 0;
  // Moves everything of `duplicates` to `primary` in one transaction and marks
  // them merged (event.actor is the merge's actor); with dry_run, computes
  // the same and rolls back. The same merge done already (a retry) answers
  // with the counts it recorded and writes nothing; a duplicate merged
  // otherwise is FAILED_PRECONDITION.
  virtual absl::StatusOr<MergeResult> MergeCustomers(
      const std::string& primary, const std::vector<std::string>& duplicates,
      const audit::Event& event, bool dry_run) = 0;
  // The email and phone each record merged into `id` had when it was merged
  // (the person's, wherever they are held now: for erasure to suppress).
  virtual absl::StatusOr<std::vector<IdentityQuery>> MergedIdentities(
      const std::string& id) = 0;
  // The request ids that created `id` and the records merged into it (for
  // erasure to suppress: a retry of one must not create the person again).
  virtual absl::StatusOr<std::vector<std::string>> CreateRequestsOf(
      const std::string& id) = 0;
  // Removes personal data (names, identities, notes, attributes, consents),
  // of the customer and of the records merged into it; keeps purchase
  // amounts; with `suppression_hashes`, records them so the identities cannot
  // come back. `check` may refuse (etag). OK, changing nothing, when the
  // customer is erased already.
  virtual absl::Status EraseCustomer(
      const std::string& id, const std::vector<std::string>& suppression_hashes,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) = 0;
  // The hashes among `hashes` that are suppressed, each once, as given.
  virtual absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) = 0;

  // --- Interactions and consent ---

  // Idempotent by `request` like RecordPurchase (the interaction's id is
  // KeyedId(kInteractionRequestScope, request id) when it has one). With an
  // `event` (an interaction forced past its tier's policy), writes it too.
  // `admit` says whether a new interaction may be stored (the tier's
  // contact policy); a replay is answered without asking it.
  virtual absl::StatusOr<InteractionRecord> LogInteraction(
      const InteractionRecord& interaction, const RequestKey& request,
      const std::optional<audit::Event>& event,
      const std::function<absl::Status()>& admit) = 0;
  struct InteractionQuery {
    std::string customer_id;
    std::optional<std::pair<int64_t, std::string>> after;
    int limit = 50;
  };
  virtual absl::StatusOr<std::vector<InteractionRecord>> ListInteractions(
      const InteractionQuery& query) = 0;
  // Appends the consent to the customer's consent history; the current
  // consent for (purpose, channel) is the one captured last, so a consent
  // captured before the current one (a late retry, an old form) stays in the
  // history and changes nothing. A consent the history has already (same
  // purpose, channel, capture time, grant and source: a retried call) is not
  // recorded or audited again. NOT_FOUND for an unknown customer;
  // FAILED_PRECONDITION for a new (purpose, channel) when the customer holds
  // kMaxConsents already.
  virtual absl::Status SetConsent(const std::string& customer_id,
                                  const ConsentRecord& consent,
                                  const audit::Event& event) = 0;
  virtual absl::StatusOr<std::vector<ConsentRecord>> ListConsents(
      const std::string& customer_id) = 0;

  // --- Audit ---

  // Writes an event in a transaction of its own (an import's start and end).
  virtual absl::Status WriteAuditEvent(const audit::Event& event) = 0;
  virtual absl::StatusOr<std::vector<audit::Event>> ListAuditEvents(
      const audit::Filter& filter, const std::optional<audit::Cursor>& after,
      int limit) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_
