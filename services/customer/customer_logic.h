// The customer service's rules: validation of every request, idempotency,
// etags, field masks, paging. It speaks the API's messages and a
// CustomerStore, and knows nothing of gRPC transport or SQL.
//
//   CustomerLogic logic(&store, &ids, [] { return absl::Now(); }, {.currency =
//   "USD"}); absl::StatusOr<v1::Customer> c = logic.CreateCustomer(request);
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/async_batcher.h"
#include "common/differentiation/contact_policy.h"
#include "common/differentiation/differentiation.h"
#include "common/ids.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "services/customer/customer_store.h"

namespace rapport::customer {

namespace cv1 = ::rapport::common::v1;

struct CustomerLogicOptions {
  // ISO 4217 code of the deployment's reporting currency; every amount is in
  // it.
  std::string currency = "USD";
  // Region (ISO 3166 alpha-2) assumed for phone numbers given without "+".
  std::string phone_region = "US";
  // When on, an erased customer's identities are kept as salted hashes and
  // refused on create, identify and import.
  bool suppression = true;
  // The salt of those hashes; a secret of the deployment.
  std::string suppression_salt;
  // Concurrent RecordPurchase calls share writes and re-scores: purchases
  // per batch, writer threads, and the purchases that must wait before a
  // second batch starts beside a running one.
  int purchase_batch = 64;
  int purchase_writers = 2;
  int purchase_busy_batch = 16;
  // Concurrent GetCustomer calls share reads: customers per read, and reader
  // threads.
  int read_batch = 64;
  int readers = 2;
  int read_busy_batch = 16;
  // Most RecordPurchase and GetCustomer calls waiting for a batch, each; one
  // more is RESOURCE_EXHAUSTED at once (the client backs off and retries)
  // rather than a queue that grows without bound.
  int max_waiting_calls = 4096;
};

class CustomerLogic {
 public:
  using Clock = std::function<absl::Time()>;

  // `values` may be null (no differentiation: no policy checks, no
  // re-scoring, no stored values with customers).
  CustomerLogic(CustomerStore* store, IdGenerator* ids, Clock clock,
                CustomerLogicOptions options,
                differentiation::ValueKeeper* values = nullptr);

  // Every call that changes something takes its `actor`, the subject of the
  // caller's token: the change's audit event (or, for purchases and
  // interactions, the row itself) names it.
  absl::StatusOr<v1::Customer> CreateCustomer(
      const v1::CreateCustomerRequest& request, const std::string& actor);
  absl::StatusOr<v1::GetCustomerResponse> GetCustomer(
      const v1::GetCustomerRequest& request);
  // The same without waiting: `done` gets the answer, on this thread for a
  // malformed request, else on a reader thread once the read is done.
  using GetCustomerDone =
      absl::AnyInvocable<void(absl::StatusOr<v1::GetCustomerResponse>) &&>;
  void GetCustomer(const v1::GetCustomerRequest& request, GetCustomerDone done);
  absl::StatusOr<v1::ListCustomersResponse> ListCustomers(
      const v1::ListCustomersRequest& request);
  absl::StatusOr<v1::Customer> UpdateCustomer(
      const v1::UpdateCustomerRequest& request, const std::string& actor);
  absl::Status DeleteCustomer(const v1::DeleteCustomerRequest& request,
                              const std::string& actor);
  absl::StatusOr<v1::Purchase> RecordPurchase(
      const v1::RecordPurchaseRequest& request, const std::string& actor);
  // The same without waiting: `done` gets the answer, on this thread for a
  // malformed request, else on a writer thread once the purchase is stored
  // and its customer re-scored.
  using RecordPurchaseDone =
      absl::AnyInvocable<void(absl::StatusOr<v1::Purchase>) &&>;
  void RecordPurchase(const v1::RecordPurchaseRequest& request,
                      const std::string& actor, RecordPurchaseDone done);
  absl::StatusOr<v1::ListPurchasesResponse> ListPurchases(
      const v1::ListPurchasesRequest& request);

  absl::StatusOr<v1::IdentifyCustomerResponse> IdentifyCustomer(
      const v1::IdentifyCustomerRequest& request, const std::string& actor);
  absl::StatusOr<v1::FindDuplicatesResponse> FindDuplicates(
      const v1::FindDuplicatesRequest& request);
  absl::StatusOr<v1::MergeCustomersResponse> MergeCustomers(
      const v1::MergeCustomersRequest& request, const std::string& actor);
  absl::StatusOr<v1::Interaction> LogInteraction(
      const v1::LogInteractionRequest& request, const std::string& actor);
  absl::StatusOr<v1::ListInteractionsResponse> ListInteractions(
      const v1::ListInteractionsRequest& request);
  absl::StatusOr<v1::Consent> SetConsent(const v1::SetConsentRequest& request,
                                         const std::string& actor);
  absl::StatusOr<v1::ListConsentsResponse> ListConsents(
      const v1::ListConsentsRequest& request);
  absl::Status EraseCustomer(const v1::EraseCustomerRequest& request,
                             const std::string& actor);
  // The audit log, newest first.
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request);

  // Parses a customer reference as import rows give it: a customer id, or
  // "email:ADDRESS", "phone:NUMBER", "ext:SOURCE:ID" (normalised). Errors name
  // `field`.
  absl::StatusOr<std::variant<std::string, IdentityQuery>> ParseCustomerRef(
      absl::string_view ref, absl::string_view field) const;
  // The salted hashes of the identities, as suppression stores them.
  std::vector<std::string> IdentityHashes(
      const IdentityQuery& identities) const;
  // The salted hash of a request id that created a customer, as erasure
  // suppresses it.
  std::string CreateRequestHash(const std::string& request_id) const;
  // Those of a record's identities when suppression is on, else none: what
  // MysqlCustomerStore::RefuseSuppressedIdentities asks for.
  std::vector<std::string> SuppressionHashesOf(
      const CustomerRecord& record) const;
  // FAILED_PRECONDITION when suppression is on and any identity is
  // suppressed; with `held`, only those that customer does not hold already.
  absl::Status CheckNotSuppressed(const IdentityQuery& identities,
                                  const CustomerRecord* held = nullptr);
  // FAILED_PRECONDITION naming request_id when the customer that a create (or
  // identify) under `request_id` made was erased since: its retry would
  // create the person again.
  absl::Status CheckRequestNotErased(const std::string& request_id);
  // LogInteraction and SetConsent, without following a merge that came
  // between resolving the id and writing (ABORTED).
  absl::StatusOr<v1::Interaction> LogInteractionOnce(
      const v1::LogInteractionRequest& request, const std::string& actor);
  absl::StatusOr<v1::Consent> SetConsentOnce(
      const v1::SetConsentRequest& request, const std::string& actor);
  // Of the identities `named` gives, those that `to` lacks and may take: an
  // email or a phone where it has none, external ids it does not hold (as
  // many as it has room for); nullopt when there are none.
  static std::optional<CustomerRecord> IdentitiesToLink(
      const CustomerRecord& named, const CustomerRecord& to);
  // What IdentifyCustomer links of `named` to `to`: IdentitiesToLink's,
  // those suppressed left out; none when `named` gives another email or
  // phone than `to` has (it may be someone else's request).
  absl::StatusOr<std::optional<CustomerRecord>> LinkableIdentities(
      const CustomerRecord& named, const CustomerRecord& to);
  // Adds `more` (LinkableIdentities') to customer `id`, audited as `event`;
  // ABORTED when the customer changed meanwhile (merged, erased, or `more`
  // is no longer what it lacks), ALREADY_EXISTS when another customer took
  // one, FAILED_PRECONDITION when one was suppressed meanwhile.
  absl::StatusOr<CustomerRecord> LinkIdentities(const std::string& id,
                                                const CustomerRecord& more,
                                                const audit::Event& event);

 private:
  // The purchase a request asks to record, checked; errors name the field.
  absl::StatusOr<CustomerStore::NewPurchase> NewPurchaseOf(
      const v1::RecordPurchaseRequest& request, const std::string& actor);
  // The audit event of a change to a customer, made now.
  audit::Event Change(const std::string& actor, absl::string_view rpc,
                      const std::string& customer_id,
                      const std::string& request_id = "",
                      std::string details = "") const;
  // One batch of RecordPurchase calls: the purchases, then their customers
  // re-scored together.
  std::vector<absl::StatusOr<PurchaseRecord>> RecordAndRescore(
      const std::vector<CustomerStore::NewPurchase>& batch);
  // One batch of GetCustomer calls: their customers and stored values read
  // together, one answer per id.
  std::vector<absl::StatusOr<v1::GetCustomerResponse>> ReadCustomers(
      const std::vector<std::string>& ids);
  // Fills `value` of each customer that has stored values.
  absl::Status AttachValues(const std::vector<v1::Customer*>& customers);
  // The answer to a write that is stored already: with its stored value
  // when it can be read, as GetCustomer answers, and without it otherwise
  // (a failed read must not turn a write that succeeded into an error).
  v1::Customer Written(const CustomerRecord& record);
  int64_t NowMicros() const;

  CustomerStore* store_;
  IdGenerator* ids_;
  Clock clock_;
  CustomerLogicOptions options_;
  differentiation::ValueKeeper* values_;
  // Last: their threads stop before anything they use goes.
  AsyncBatcher<CustomerStore::NewPurchase, absl::StatusOr<PurchaseRecord>>
      purchases_;
  AsyncBatcher<std::string, absl::StatusOr<v1::GetCustomerResponse>> reads_;
};

// The etag of a stored customer version.
std::string CustomerEtag(int64_t version);

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_
