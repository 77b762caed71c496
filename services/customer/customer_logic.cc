#include "services/customer/customer_logic.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "common/api_names.h"
#include "common/audit/audit_rpcs.h"
#include "common/base/status_macros.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::customer {
namespace {

// The answer to a call that finds the queue of waiting calls full.
absl::Status Overloaded() {
  return absl::ResourceExhaustedError(
      "the service is at capacity: too many calls waiting; retry with backoff");
}

absl::Status CheckCustomerId(const std::string& id, absl::string_view field) {
  if (id.empty()) return InvalidField(field, "is required");
  // The text is not quoted back: a caller that sends an email or a phone
  // number here would find it in the request log, which an erasure cannot
  // reach.
  if (!IsValidId(id))
    return InvalidField(field,
                        "is not a customer id (26 characters of base32)");
  return absl::OkStatus();
}

// Digest of a request without its request_id, to tell a retry from a reuse.
template <typename Request>
std::string RequestHash(Request request) {
  request.clear_request_id();
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream out(&stream);
  out.SetSerializationDeterministic(true);
  request.SerializeToCodedStream(&out);
  out.Trim();
  return Fingerprint(bytes);
}

// The fields of `in` named by `paths` (all when empty), validated and
// normalised into `out`; errors name "customer.<field>".
absl::Status ApplyCustomerFields(const v1::Customer& in,
                                 const std::set<std::string>& paths,
                                 absl::string_view phone_region,
                                 CustomerRecord& out) {
  std::vector<FieldViolation> violations;
  auto wants = [&](const char* path) {
    return paths.empty() || paths.count(path) > 0;
  };
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s))
      violations.push_back(std::move(v));
  };
  if (wants("display_name")) {
    absl::Status s =
        CheckRequiredText(in.display_name(), "customer.display_name", 256);
    note(s);
    if (s.ok()) out.display_name = in.display_name();
  }
  if (wants("email")) {
    out.email.clear();
    if (!in.email().empty()) {
      absl::StatusOr<std::string> email =
          NormalizeEmail(in.email(), "customer.email");
      note(email.status());
      if (email.ok()) out.email = *email;
    }
  }
  if (wants("phone")) {
    out.phone.clear();
    if (!in.phone().empty()) {
      absl::StatusOr<std::string> phone =
          NormalizePhone(in.phone(), "customer.phone", phone_region);
      note(phone.status());
      if (phone.ok()) out.phone = *phone;
    }
  }
  if (wants("external_ids")) {
    std::vector<std::pair<std::string, std::string>> ids;
    ReadExternalIds(in.external_ids(), "customer.external_ids", &ids,
                    &violations);
    out.external_ids.clear();
    for (auto& [source, id] : ids) {
      out.external_ids.push_back({std::move(source), std::move(id)});
    }
  }
  if (wants("postal_code")) {
    absl::Status s =
        CheckOptionalText(in.postal_code(), "customer.postal_code", 32);
    note(s);
    if (s.ok())
      out.postal_code =
          std::string(absl::StripAsciiWhitespace(in.postal_code()));
  }
  if (wants("attributes")) {
    ReadAttributes(in.attributes(), "customer.attributes", &out.attributes,
                   &violations);
  }
  if (!violations.empty()) return InvalidFields(violations);
  return absl::OkStatus();
}

v1::Customer ToProto(const CustomerRecord& r) {
  v1::Customer c;
  c.set_id(r.id);
  c.set_display_name(r.display_name);
  c.set_email(r.email);
  c.set_phone(r.phone);
  for (const ExternalIdRecord& e : r.external_ids) {
    v1::ExternalId* out = c.add_external_ids();
    out->set_source(e.source);
    out->set_id(e.id);
  }
  for (const auto& [key, value] : r.attributes)
    (*c.mutable_attributes())[key] = value;
  *c.mutable_create_time() = ToTimestamp(r.create_time_us);
  *c.mutable_update_time() = ToTimestamp(r.update_time_us);
  c.set_etag(CustomerEtag(r.version));
  c.set_postal_code(r.postal_code);
  c.set_created_by(r.created_by);
  return c;
}

// The identities of a stored customer, as suppression hashes them.
IdentityQuery IdentitiesOf(const CustomerRecord& r) {
  IdentityQuery q;
  q.email = r.email;
  q.phone = r.phone;
  q.external_ids = r.external_ids;
  return q;
}

v1::Interaction ToProto(const InteractionRecord& r,
                        const std::string& currency) {
  v1::Interaction i;
  i.set_id(r.id);
  i.set_customer_id(r.customer_id);
  i.set_channel(static_cast<cv1::Channel>(r.channel));
  i.set_kind(r.kind);
  *i.mutable_interaction_time() = ToTimestamp(r.interaction_time_us);
  absl::StatusOr<google::type::Money> cost =
      ToMoney(r.cost, currency, "interaction.cost");
  if (cost.ok()) *i.mutable_cost() = *cost;
  i.set_note(r.note);
  i.set_recorded_by(r.recorded_by);
  return i;
}

v1::Consent ToProto(const ConsentRecord& r) {
  v1::Consent c;
  c.set_purpose(r.purpose);
  c.set_channel(static_cast<cv1::Channel>(r.channel));
  c.set_granted(r.granted);
  *c.mutable_capture_time() = ToTimestamp(r.capture_time_us);
  c.set_source(r.source);
  return c;
}

// The hex HMAC-SHA256 of `data` under `key`.
std::string HmacHex(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
       &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i)
    absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

absl::StatusOr<v1::Purchase> ToProto(const PurchaseRecord& r) {
  v1::Purchase p;
  p.set_id(r.id);
  p.set_customer_id(r.customer_id);
  *p.mutable_purchase_time() = ToTimestamp(r.purchase_time_us);
  RAPPORT_ASSIGN_OR_RETURN(*p.mutable_amount(),
                           ToMoney(r.amount, r.currency, "purchase.amount"));
  p.set_description(r.description);
  *p.mutable_create_time() = ToTimestamp(r.create_time_us);
  p.set_recorded_by(r.recorded_by);
  return p;
}

// FAILED_PRECONDITION when `id` was merged into another customer: changes go
// to the customer that stayed.
// FAILED_PRECONDITION: `id` was merged into `into`.
absl::Status MergedInto(const std::string& id, const std::string& into) {
  return absl::FailedPreconditionError(absl::StrCat(
      "customer ", id, " was merged into ", into, "; change that one instead"));
}

absl::Status CheckNotMerged(CustomerStore& store, const std::string& id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string resolved, store.ResolveCustomerId(id));
  if (resolved == id) return absl::OkStatus();
  return MergedInto(id, resolved);
}

// The same for the stored row, locked: a merge may have committed since
// CheckNotMerged looked.
absl::Status CheckRowNotMerged(const CustomerRecord& row) {
  if (row.merged_into.empty()) return absl::OkStatus();
  return MergedInto(row.id, row.merged_into);
}

absl::Status CheckEtag(const std::string& given, const CustomerRecord& current,
                       absl::string_view field = "etag") {
  return rapport::CheckEtag(given, current.version, "customer", current.id,
                            field);
}

// Starts an asynchronous call with a callback and waits for its answer.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  absl::StatusOr<T> out;
  absl::Notification answered;
  start([&](absl::StatusOr<T> r) {
    out = std::move(r);
    answered.Notify();
  });
  answered.WaitForNotification();
  return out;
}

absl::StatusOr<v1::Purchase> PurchaseProto(
    absl::StatusOr<PurchaseRecord> stored) {
  if (!stored.ok()) return stored.status();
  return ToProto(*stored);
}

}  // namespace

std::string CustomerEtag(int64_t version) { return absl::StrCat(version); }

CustomerLogic::CustomerLogic(CustomerStore* store, IdGenerator* ids,
                             Clock clock, CustomerLogicOptions options,
                             differentiation::ValueKeeper* values)
    : store_(store),
      ids_(ids),
      clock_(std::move(clock)),
      options_(std::move(options)),
      values_(values),
      purchases_(
          {.workers = options_.purchase_writers,
           .max_batch = static_cast<size_t>(options_.purchase_batch),
           .busy_batch = static_cast<size_t>(options_.purchase_busy_batch),
           .max_queue = static_cast<size_t>(options_.max_waiting_calls)},
          [this](const std::vector<CustomerStore::NewPurchase>& batch) {
            return RecordAndRescore(batch);
          },
          [] { return Overloaded(); }),
      reads_(
          {.workers = options_.readers,
           .max_batch = static_cast<size_t>(options_.read_batch),
           .busy_batch = static_cast<size_t>(options_.read_busy_batch),
           .max_queue = static_cast<size_t>(options_.max_waiting_calls)},
          [this](const std::vector<std::string>& ids) {
            return ReadCustomers(ids);
          },
          [] { return Overloaded(); }) {}

int64_t CustomerLogic::NowMicros() const {
  return absl::ToUnixMicros(clock_());
}

absl::Status CustomerLogic::AttachValues(
    const std::vector<v1::Customer*>& customers) {
  std::vector<std::string> ids;
  ids.reserve(customers.size());
  for (const v1::Customer* c : customers) ids.push_back(c->id());
  RAPPORT_ASSIGN_OR_RETURN(auto values, values_->ValuesOf(ids));
  for (v1::Customer* c : customers) {
    auto it = values.find(c->id());
    if (it != values.end()) *c->mutable_value() = it->second;  // ids repeat
  }
  return absl::OkStatus();
}

v1::Customer CustomerLogic::Written(const CustomerRecord& record) {
  v1::Customer out = ToProto(record);
  if (values_ != nullptr) (void)AttachValues({&out});
  return out;
}

audit::Event CustomerLogic::Change(const std::string& actor,
                                   absl::string_view rpc,
                                   const std::string& customer_id,
                                   const std::string& request_id,
                                   std::string details) const {
  return {.time_us = NowMicros(),
          .actor = actor,
          .rpc = std::string(rpc),
          .resource = absl::StrCat("customers/", customer_id),
          .request_id = request_id,
          .details = std::move(details)};
}

absl::StatusOr<v1::Customer> CustomerLogic::CreateCustomer(
    const v1::CreateCustomerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (!request.has_customer()) return InvalidField("customer", "is required");
  CustomerRecord record;
  RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(request.customer(), {},
                                              options_.phone_region, record));
  // A retry is answered as first stored (below), even if an identity it
  // names has been suppressed since (erased on another customer).
  // What the create said, without the fields it ignores (a retry may send
  // back a record it read).
  v1::CreateCustomerRequest said = request;
  ClearOutputOnlyFields(said.mutable_customer());
  const std::string hash = RequestHash(said);
  std::optional<std::string> created;
  if (!request.request_id().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(
        created, store_->CustomerCreatedBy({request.request_id(), hash}));
  }
  if (!created.has_value()) {
    RAPPORT_RETURN_IF_ERROR(CheckNotSuppressed(IdentitiesOf(record)));
  }
  RAPPORT_RETURN_IF_ERROR(CheckRequestNotErased(request.request_id()));
  record.id = ids_->Next();
  record.create_time_us = record.update_time_us = NowMicros();
  record.created_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      CustomerRecord stored,
      store_->CreateCustomer(
          record, {request.request_id(), hash},
          Change(actor, "CreateCustomer", record.id, request.request_id())));
  if (!stored.merged_into.empty()) {
    // A retry of a create whose customer was merged since: the customer that
    // stayed, as GetCustomer answers for the merged id.
    RAPPORT_ASSIGN_OR_RETURN(std::string live,
                             store_->ResolveCustomerId(stored.id));
    RAPPORT_ASSIGN_OR_RETURN(stored, store_->GetCustomer(live));
  }
  // A customer made now (a fresh id) has no value yet; a retry's may.
  if (request.request_id().empty()) return ToProto(stored);
  return Written(stored);
}

absl::StatusOr<v1::GetCustomerResponse> CustomerLogic::GetCustomer(
    const v1::GetCustomerRequest& request) {
  return Await<v1::GetCustomerResponse>(
      [&](auto done) { GetCustomer(request, std::move(done)); });
}

void CustomerLogic::GetCustomer(const v1::GetCustomerRequest& request,
                                GetCustomerDone done) {
  if (absl::Status s = CheckCustomerId(request.id(), "id"); !s.ok()) {
    std::move(done)(s);
    return;
  }
  reads_.Submit(request.id(), std::move(done));
}

std::vector<absl::StatusOr<v1::GetCustomerResponse>>
CustomerLogic::ReadCustomers(const std::vector<std::string>& ids) {
  using Result = absl::StatusOr<v1::GetCustomerResponse>;
  absl::StatusOr<std::vector<CustomerRecord>> stored =
      store_->GetCustomers(ids);
  if (!stored.ok()) return std::vector<Result>(ids.size(), stored.status());
  absl::flat_hash_map<std::string, CustomerRecord> by_id;
  for (CustomerRecord& r : *stored) by_id.emplace(r.id, std::move(r));

  std::vector<Result> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      out.push_back(
          absl::NotFoundError(absl::StrCat("customer ", id, " not found")));
      continue;
    }
    // A merged id (rare) is followed to the customer that stayed.
    absl::StatusOr<CustomerRecord> live = it->second;
    if (!live->merged_into.empty()) {
      absl::StatusOr<std::string> resolved = store_->ResolveCustomerId(id);
      live = resolved.ok() ? store_->GetCustomer(*resolved)
                           : absl::StatusOr<CustomerRecord>(resolved.status());
    }
    if (!live.ok()) {
      out.push_back(live.status());
      continue;
    }
    v1::GetCustomerResponse response;
    *response.mutable_customer() = ToProto(*live);
    if (live->id != id) response.set_merged_id(id);
    out.push_back(std::move(response));
  }
  if (values_ == nullptr) return out;
  std::vector<v1::Customer*> answered;
  for (Result& r : out) {
    if (r.ok()) answered.push_back(r->mutable_customer());
  }
  if (AttachValues(answered).ok()) return out;
  // One customer's stored value failing must not fail the others' calls: try
  // each alone, and only the failing ones answer with the error.
  for (Result& r : out) {
    if (!r.ok()) continue;
    if (absl::Status s = AttachValues({r->mutable_customer()}); !s.ok()) {
      r = s;
    }
  }
  return out;
}

absl::StatusOr<v1::ListCustomersResponse> CustomerLogic::ListCustomers(
    const v1::ListCustomersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  CustomerFilter filter;
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(request.segment(), "segment", 64));
  filter.segment = request.segment();
  if (!cv1::Tier_IsValid(request.tier()))
    return InvalidField("tier", "is not a known tier");
  filter.tier = request.tier();
  if (request.has_min_value_hundredths())
    filter.min_value_hundredths = request.min_value_hundredths();
  if (request.has_max_value_hundredths())
    filter.max_value_hundredths = request.max_value_hundredths();
  for (const auto& [v, field] :
       {std::make_pair(filter.min_value_hundredths, "min_value_hundredths"),
        std::make_pair(filter.max_value_hundredths, "max_value_hundredths")}) {
    if (v && (*v < 0 || *v > 10000))
      return InvalidField(field, "must be 0..10000 (0.00..100.00)");
  }
  if (filter.min_value_hundredths && filter.max_value_hundredths &&
      *filter.min_value_hundredths > *filter.max_value_hundredths) {
    return InvalidField("max_value_hundredths",
                        "is below min_value_hundredths");
  }
  RAPPORT_ASSIGN_OR_RETURN(filter.by_value_desc,
                           OrderByValue(request.order_by()));
  const std::string fingerprint = absl::StrCat(
      "customers|", filter.segment, "|", filter.tier, "|",
      filter.min_value_hundredths.value_or(-1), "|",
      filter.max_value_hundredths.value_or(-1), "|", filter.by_value_desc);
  RAPPORT_ASSIGN_OR_RETURN(std::string token,
                           DecodePageToken(request.page_token(), fingerprint));
  std::optional<CustomerStore::ListCursor> after;
  if (!token.empty()) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(token, absl::MaxSplits(':', 1));
    CustomerStore::ListCursor cursor;
    if (!absl::SimpleAtoi(parts.first, &cursor.value_hundredths)) {
      return InvalidField("page_token", "is not a token this service issued");
    }
    cursor.id = parts.second;
    after = cursor;
  }
  RAPPORT_ASSIGN_OR_RETURN(auto records,
                           store_->ListCustomers(filter, after, size + 1));
  v1::ListCustomersResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  std::vector<v1::Customer*> customers;
  for (const auto& [r, value] : records) {
    *response.add_customers() = ToProto(r);
    customers.push_back(
        response.mutable_customers(response.customers_size() - 1));
  }
  if (values_ != nullptr) RAPPORT_RETURN_IF_ERROR(AttachValues(customers));
  if (more) {
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(records.back().second, ":", records.back().first.id),
        fingerprint));
  }
  return response;
}

absl::StatusOr<v1::Customer> CustomerLogic::UpdateCustomer(
    const v1::UpdateCustomerRequest& request, const std::string& actor) {
  if (!request.has_customer()) return InvalidField("customer", "is required");
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer().id(), "customer.id"));
  RAPPORT_RETURN_IF_ERROR(CheckUpdateMask(
      request.update_mask(), {"display_name", "email", "phone", "postal_code",
                              "external_ids", "attributes"}));
  const std::set<std::string> paths(request.update_mask().paths().begin(),
                                    request.update_mask().paths().end());
  // Validate before touching the store, so bad input never takes a lock.
  CustomerRecord scratch;
  RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(request.customer(), paths,
                                              options_.phone_region, scratch));
  // Only identities the customer does not hold already: another spelling
  // of its own mailbox stays its own, though another record holding that
  // mailbox was erased. (The store checks again, in its transaction.)
  if (options_.suppression) {
    absl::StatusOr<CustomerRecord> stored =
        store_->GetCustomer(request.customer().id());
    if (!stored.ok() && !absl::IsNotFound(stored.status())) {
      return stored.status();
    }
    RAPPORT_RETURN_IF_ERROR(CheckNotSuppressed(
        IdentitiesOf(scratch), stored.ok() ? &*stored : nullptr));
  }
  RAPPORT_RETURN_IF_ERROR(CheckNotMerged(*store_, request.customer().id()));
  const int64_t now = NowMicros();
  RAPPORT_ASSIGN_OR_RETURN(
      CustomerRecord updated,
      store_->UpdateCustomer(
          request.customer().id(),
          [&](CustomerRecord& current) {
            RAPPORT_RETURN_IF_ERROR(CheckRowNotMerged(current));
            if (current.erased) {
              return absl::FailedPreconditionError(
                  absl::StrCat("customer ", current.id, " was erased"));
            }
            CustomerRecord wanted = current;
            RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(
                request.customer(), paths, options_.phone_region, wanted));
            KeepStoredOrder(wanted.external_ids, current.external_ids);
            // Nothing to change (a retry whose answer was lost, or values
            // it has already): the store writes and audits nothing, and no
            // etag can be stale for it.
            if (wanted == current) return absl::OkStatus();
            RAPPORT_RETURN_IF_ERROR(
                CheckEtag(request.customer().etag(), current, "customer.etag"));
            current = std::move(wanted);
            current.update_time_us = std::max(now, current.update_time_us);
            return absl::OkStatus();
          },
          Change(actor, "UpdateCustomer", request.customer().id(), "",
                 absl::StrCat("fields=", absl::StrJoin(paths, ",")))));
  return Written(updated);
}

absl::Status CustomerLogic::DeleteCustomer(
    const v1::DeleteCustomerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.id(), "id"));
  absl::Status s = CheckNotMerged(*store_, request.id());
  if (s.ok()) {
    s = store_->DeleteCustomer(
        request.id(), request.force(),
        [&](const CustomerRecord& current) {
          RAPPORT_RETURN_IF_ERROR(CheckRowNotMerged(current));
          return CheckEtag(request.etag(), current);
        },
        Change(actor, "DeleteCustomer", request.id(), "",
               request.force() ? "force" : ""));
  }
  // Nothing to delete: with allow_missing, a retry that finds its work done
  // (nothing is written or audited).
  if (absl::IsNotFound(s) && request.allow_missing()) return absl::OkStatus();
  return s;
}

absl::StatusOr<v1::Purchase> CustomerLogic::RecordPurchase(
    const v1::RecordPurchaseRequest& request, const std::string& actor) {
  return Await<v1::Purchase>(
      [&](auto done) { RecordPurchase(request, actor, std::move(done)); });
}

void CustomerLogic::RecordPurchase(const v1::RecordPurchaseRequest& request,
                                   const std::string& actor,
                                   RecordPurchaseDone done) {
  absl::StatusOr<CustomerStore::NewPurchase> purchase =
      NewPurchaseOf(request, actor);
  if (!purchase.ok()) {
    std::move(done)(purchase.status());
    return;
  }
  purchases_.Submit(
      *purchase, [this, retry = *purchase, done = std::move(done)](
                     absl::StatusOr<PurchaseRecord> r) mutable {
        if (absl::IsAborted(r.status())) {
          // A merged id: the purchase goes to the customer that stayed.
          absl::StatusOr<std::string> id =
              store_->ResolveCustomerId(retry.purchase.customer_id);
          if (!id.ok()) {
            std::move(done)(id.status());
            return;
          }
          retry.purchase.customer_id = *std::move(id);
          purchases_.Submit(std::move(retry),
                            [done = std::move(done)](
                                absl::StatusOr<PurchaseRecord> again) mutable {
                              std::move(done)(PurchaseProto(std::move(again)));
                            });
          return;
        }
        std::move(done)(PurchaseProto(std::move(r)));
      });
}

absl::StatusOr<CustomerStore::NewPurchase> CustomerLogic::NewPurchaseOf(
    const v1::RecordPurchaseRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  if (!request.has_purchase()) return InvalidField("purchase", "is required");
  const v1::Purchase& in = request.purchase();
  std::vector<FieldViolation> violations;
  // A purchase copied with another customer's id is a client's mistake, not
  // one to record on customer_id quietly.
  if (!in.customer_id().empty() && in.customer_id() != request.customer_id()) {
    violations.push_back(
        {"purchase.customer_id",
         "names another customer than customer_id; leave it empty"});
  }
  PurchaseRecord record;
  if (!in.has_purchase_time()) {
    violations.push_back({"purchase.purchase_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.purchase_time(), "purchase.purchase_time");
    // Dated ahead, it would count only from then on, unseen meanwhile.
    absl::Status s = t.status();
    if (t.ok()) s = CheckNotFuture(*t, NowMicros(), "purchase.purchase_time");
    if (s.ok()) record.purchase_time_us = *t;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  }
  if (!in.has_amount()) {
    violations.push_back({"purchase.amount", "is required"});
  } else {
    absl::StatusOr<Decimal> amount =
        FromMoneyAmount(in.amount(), "purchase.amount");
    if (amount.ok()) {
      record.amount = *amount;
    } else {
      for (FieldViolation& v : FieldViolations(amount.status()))
        violations.push_back(v);
    }
    const std::string& currency = in.amount().currency_code();
    if (!currency.empty() && currency != options_.currency) {
      violations.push_back({"purchase.amount.currency_code",
                            absl::StrCat("is \"", Utf8Prefix(currency, 16),
                                         "\" but this deployment reports in \"",
                                         options_.currency, "\"")});
    }
  }
  if (absl::Status s =
          CheckOptionalText(in.description(), "purchase.description", 1024);
      !s.ok()) {
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  }
  if (!violations.empty()) return InvalidFields(violations);
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId(kPurchaseRequestScope, request.request_id());
  record.customer_id = request.customer_id();
  record.currency = options_.currency;
  record.description = in.description();
  record.recorded_by = actor;
  record.create_time_us = NowMicros();
  v1::RecordPurchaseRequest canonical = request;
  canonical.mutable_purchase()->mutable_amount()->set_currency_code(
      options_.currency);
  return CustomerStore::NewPurchase{
      std::move(record), {request.request_id(), RequestHash(canonical)}};
}

std::vector<absl::StatusOr<PurchaseRecord>> CustomerLogic::RecordAndRescore(
    const std::vector<CustomerStore::NewPurchase>& batch) {
  std::vector<absl::StatusOr<PurchaseRecord>> recorded =
      store_->RecordPurchases(batch);
  if (values_ == nullptr) return recorded;
  std::vector<std::string> customers;
  for (const absl::StatusOr<PurchaseRecord>& r : recorded) {
    if (r.ok()) customers.push_back(r->customer_id);
  }
  // The purchases are answered once stored; their customers are scored again
  // in the background (a slow or absent scoring service never holds up a
  // purchase, and concurrent purchases share one re-score).
  values_->RescoreSoon(customers);
  return recorded;
}

absl::StatusOr<v1::ListPurchasesResponse> CustomerLogic::ListPurchases(
    const v1::ListPurchasesRequest& request) {
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  CustomerStore::PurchaseQuery query;
  if (request.has_start_time()) {
    RAPPORT_ASSIGN_OR_RETURN(query.start_time_us,
                             FromTimestamp(request.start_time(), "start_time"));
  }
  if (request.has_end_time()) {
    RAPPORT_ASSIGN_OR_RETURN(query.end_time_us,
                             FromTimestamp(request.end_time(), "end_time"));
  }
  if (query.start_time_us && query.end_time_us &&
      *query.end_time_us < *query.start_time_us) {
    return InvalidField("end_time", "is before start_time");
  }
  const std::string filter =
      absl::StrCat(request.customer_id(), "|", query.start_time_us.value_or(-1),
                   "|", query.end_time_us.value_or(-1));
  RAPPORT_ASSIGN_OR_RETURN(query.after,
                           DecodeTimeCursor(request.page_token(), filter));
  query.limit = size + 1;
  RAPPORT_ASSIGN_OR_RETURN(query.customer_id,
                           store_->ResolveCustomerId(request.customer_id()));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<PurchaseRecord> records,
                           store_->ListPurchases(query));
  v1::ListPurchasesResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (const PurchaseRecord& r : records) {
    RAPPORT_ASSIGN_OR_RETURN(*response.add_purchases(), ToProto(r));
  }
  if (more) {
    response.set_next_page_token(EncodeTimeCursor(
        records.back().purchase_time_us, records.back().id, filter));
  }
  return response;
}

// --- Identification ---

absl::StatusOr<std::variant<std::string, IdentityQuery>>
CustomerLogic::ParseCustomerRef(absl::string_view ref,
                                absl::string_view field) const {
  using Result = std::variant<std::string, IdentityQuery>;
  RAPPORT_ASSIGN_OR_RETURN(
      EntityRef parsed,
      ParseEntityRef(ref, field, "customer", options_.phone_region));
  if (!parsed.id.empty()) return Result(std::move(parsed.id));
  IdentityQuery q;
  q.email = std::move(parsed.email);
  q.phone = std::move(parsed.phone);
  if (parsed.external) {
    q.external_ids.push_back(
        {std::move(parsed.external->source), std::move(parsed.external->id)});
  }
  return Result(std::move(q));
}

std::vector<std::string> CustomerLogic::IdentityHashes(
    const IdentityQuery& identities) const {
  std::vector<std::string> out;
  if (!identities.email.empty()) {
    out.push_back(
        HmacHex(options_.suppression_salt,
                "email:" + absl::AsciiStrToLower(
                               absl::StripAsciiWhitespace(identities.email))));
    // And the mailbox, as FindDuplicates matches it (no +tag, Gmail without
    // dots): another spelling of an erased person's address is theirs too.
    out.push_back(HmacHex(options_.suppression_salt,
                          "mailbox:" + EmailMatchKey(identities.email)));
  }
  if (!identities.phone.empty()) {
    out.push_back(
        HmacHex(options_.suppression_salt, "phone:" + identities.phone));
  }
  for (const ExternalIdRecord& e : identities.external_ids) {
    out.push_back(HmacHex(
        options_.suppression_salt,
        absl::StrCat("ext:", e.source.size(), ":", e.source, ":", e.id)));
  }
  return out;
}

std::string CustomerLogic::CreateRequestHash(
    const std::string& request_id) const {
  return HmacHex(options_.suppression_salt,
                 absl::StrCat("request:", request_id));
}

std::vector<std::string> CustomerLogic::SuppressionHashesOf(
    const CustomerRecord& record) const {
  if (!options_.suppression) return {};
  return IdentityHashes(IdentitiesOf(record));
}

absl::Status CustomerLogic::CheckNotSuppressed(const IdentityQuery& identities,
                                               const CustomerRecord* held) {
  if (!options_.suppression) return absl::OkStatus();
  std::vector<std::string> hashes = IdentityHashes(identities);
  if (held != nullptr) {
    const std::vector<std::string> had = IdentityHashes(IdentitiesOf(*held));
    hashes.erase(std::remove_if(hashes.begin(), hashes.end(),
                                [&](const std::string& h) {
                                  return std::find(had.begin(), had.end(), h) !=
                                         had.end();
                                }),
                 hashes.end());
  }
  if (hashes.empty()) return absl::OkStatus();
  RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> found,
                           store_->SuppressedAmong(hashes));
  if (found.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(CustomerStore::kSuppressedIdentity);
}

// A retry of a create whose customer was erased since: the request's row went
// with the customer, so without this the retry would create the person again
// (a customer without identities has nothing else to suppress).
absl::Status CustomerLogic::CheckRequestNotErased(
    const std::string& request_id) {
  if (!options_.suppression || request_id.empty()) return absl::OkStatus();
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<std::string> found,
      store_->SuppressedAmong({CreateRequestHash(request_id)}));
  if (found.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "request_id: the customer this request created has since been erased");
}

std::optional<CustomerRecord> CustomerLogic::IdentitiesToLink(
    const CustomerRecord& named, const CustomerRecord& to) {
  CustomerRecord more;
  if (to.email.empty()) more.email = named.email;
  if (to.phone.empty()) more.phone = named.phone;
  size_t room = to.external_ids.size() < kMaxExternalIds
                    ? kMaxExternalIds - to.external_ids.size()
                    : 0;
  for (const ExternalIdRecord& e : named.external_ids) {
    if (room == 0) break;
    if (std::find(to.external_ids.begin(), to.external_ids.end(), e) !=
        to.external_ids.end()) {
      continue;
    }
    more.external_ids.push_back(e);
    --room;
  }
  if (more.email.empty() && more.phone.empty() && more.external_ids.empty()) {
    return std::nullopt;
  }
  return more;
}

absl::StatusOr<std::optional<CustomerRecord>> CustomerLogic::LinkableIdentities(
    const CustomerRecord& named, const CustomerRecord& to) {
  // A request that says otherwise than the customer (another email, another
  // phone) may not be the person's: it links nothing.
  if ((!named.email.empty() && !to.email.empty() &&
       !absl::EqualsIgnoreCase(named.email, to.email)) ||
      (!named.phone.empty() && !to.phone.empty() && named.phone != to.phone)) {
    return std::optional<CustomerRecord>();
  }
  std::optional<CustomerRecord> more = IdentitiesToLink(named, to);
  if (!more.has_value()) return more;
  // An erased person's identities (suppressed) are not linked; the others
  // are, each on its own.
  auto kept = [&](IdentityQuery q) -> absl::StatusOr<bool> {
    absl::Status s = CheckNotSuppressed(q);
    if (absl::IsFailedPrecondition(s)) return false;
    if (!s.ok()) return s;
    return true;
  };
  CustomerRecord linkable;
  if (!more->email.empty()) {
    IdentityQuery q;
    q.email = more->email;
    RAPPORT_ASSIGN_OR_RETURN(bool ok, kept(q));
    if (ok) linkable.email = more->email;
  }
  if (!more->phone.empty()) {
    IdentityQuery q;
    q.phone = more->phone;
    RAPPORT_ASSIGN_OR_RETURN(bool ok, kept(q));
    if (ok) linkable.phone = more->phone;
  }
  for (const ExternalIdRecord& e : more->external_ids) {
    IdentityQuery q;
    q.external_ids = {e};
    RAPPORT_ASSIGN_OR_RETURN(bool ok, kept(q));
    if (ok) linkable.external_ids.push_back(e);
  }
  if (linkable.email.empty() && linkable.phone.empty() &&
      linkable.external_ids.empty()) {
    return std::optional<CustomerRecord>();
  }
  return std::optional<CustomerRecord>(std::move(linkable));
}

absl::StatusOr<CustomerRecord> CustomerLogic::LinkIdentities(
    const std::string& id, const CustomerRecord& more,
    const audit::Event& event) {
  const int64_t now = NowMicros();
  return store_->UpdateCustomer(
      id,
      [&](CustomerRecord& current) -> absl::Status {
        // Changed since it was read (merged, erased, an identity taken or
        // given up): looked at again from the start.
        if (!current.merged_into.empty() || current.erased ||
            IdentitiesToLink(more, current) != std::optional(more)) {
          return absl::AbortedError(
              absl::StrCat("customer ", id, " changed meanwhile"));
        }
        if (!more.email.empty()) current.email = more.email;
        if (!more.phone.empty()) current.phone = more.phone;
        for (const ExternalIdRecord& e : more.external_ids) {
          current.external_ids.push_back(e);
        }
        current.update_time_us = std::max(now, current.update_time_us);
        return absl::OkStatus();
      },
      event);
}

absl::StatusOr<v1::IdentifyCustomerResponse> CustomerLogic::IdentifyCustomer(
    const v1::IdentifyCustomerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  // Validate the identities like a create would.
  v1::Customer as_customer;
  as_customer.set_email(request.email());
  as_customer.set_phone(request.phone());
  *as_customer.mutable_external_ids() = request.external_ids();
  as_customer.set_display_name(request.display_name());
  CustomerRecord record;
  // Errors name the request's own fields ("external_ids[0].id").
  RAPPORT_RETURN_IF_ERROR(WithoutFieldPrefix(
      ApplyCustomerFields(as_customer, {"email", "phone", "external_ids"},
                          options_.phone_region, record),
      "customer."));
  if (!request.display_name().empty()) {
    RAPPORT_RETURN_IF_ERROR(
        CheckRequiredText(request.display_name(), "display_name", 256));
  }
  IdentityQuery q = IdentitiesOf(record);
  if (q.email.empty() && q.phone.empty() && q.external_ids.empty()) {
    return InvalidField(
        "email", "give at least one identity: email, phone or external_ids");
  }
  // A retry of the request that created a customer answers that customer
  // (or the one it was merged into), whatever its identities are now; one
  // whose customer was erased since creates nobody again, as for
  // CreateCustomer.
  if (!request.request_id().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> creator,
                             store_->CustomerCreatedBy(
                                 {request.request_id(), RequestHash(request)}));
    // Deleted, erased or merged again meanwhile: gone, the request is
    // forgotten (an erasure refuses it below); merged, it is followed.
    for (int hop = 0; creator.has_value() && hop < 3; ++hop) {
      absl::StatusOr<std::string> live = store_->ResolveCustomerId(*creator);
      if (absl::IsNotFound(live.status())) break;
      if (!live.ok()) return live.status();
      absl::StatusOr<CustomerRecord> first = store_->GetCustomer(*live);
      if (absl::IsNotFound(first.status())) break;
      if (!first.ok()) return first.status();
      if (first->erased) break;
      if (!first->merged_into.empty()) continue;
      v1::IdentifyCustomerResponse response;
      response.set_created(*live == *creator);
      *response.mutable_customer() = Written(*first);
      return response;
    }
    RAPPORT_RETURN_IF_ERROR(CheckRequestNotErased(request.request_id()));
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> matches,
                             store_->FindByIdentities(q));
    if (matches.size() > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the identities name ", matches.size(), " customers: ",
          absl::StrJoin(matches, ", "), "; merge them first (MergeCustomers)"));
    }
    v1::IdentifyCustomerResponse response;
    if (matches.size() == 1) {
      RAPPORT_ASSIGN_OR_RETURN(CustomerRecord found,
                               store_->GetCustomer(matches[0]));
      // Merged or erased since it was found: look again.
      if (!found.merged_into.empty() || found.erased) continue;
      // Asked to, the identities the request names that the customer lacks
      // are linked to it, so that whatever names one of them next finds this
      // customer, not nobody (and makes a second record of the person).
      if (request.link_identities()) {
        RAPPORT_ASSIGN_OR_RETURN(std::optional<CustomerRecord> more,
                                 LinkableIdentities(record, found));
        if (more.has_value()) {
          std::vector<std::string> fields;
          if (!more->email.empty()) fields.push_back("email");
          if (!more->phone.empty()) fields.push_back("phone");
          if (!more->external_ids.empty()) fields.push_back("external_ids");
          absl::StatusOr<CustomerRecord> linked = LinkIdentities(
              found.id, *more,
              Change(actor, "IdentifyCustomer", found.id, request.request_id(),
                     absl::StrCat("linked=", absl::StrJoin(fields, ","))));
          // Taken by another customer, or the customer changed, meanwhile:
          // look again.
          if (absl::IsAlreadyExists(linked.status()) ||
              absl::IsAborted(linked.status())) {
            continue;
          }
          // Suppressed meanwhile: found, nothing linked.
          if (absl::IsFailedPrecondition(linked.status())) {
            linked = found;
          }
          if (!linked.ok()) return linked.status();
          found = *std::move(linked);
        }
      }
      // A retry racing the call that created it gets the first answer.
      if (!request.request_id().empty()) {
        RAPPORT_ASSIGN_OR_RETURN(
            std::optional<std::string> creator,
            store_->CustomerCreatedBy(
                {request.request_id(), RequestHash(request)}));
        response.set_created(creator == found.id);
      }
      *response.mutable_customer() = Written(found);
      return response;
    }
    RAPPORT_RETURN_IF_ERROR(CheckNotSuppressed(q));
    record.display_name = request.display_name();
    if (record.display_name.empty()) {
      // An identity for a name, cut to a name's length (an email may be
      // longer).
      record.display_name = Utf8Prefix(
          !q.email.empty()   ? q.email
          : !q.phone.empty() ? q.phone
                             : absl::StrCat(q.external_ids[0].source, ":",
                                            q.external_ids[0].id),
          256);
    }
    record.id = ids_->Next();
    record.create_time_us = record.update_time_us = NowMicros();
    record.created_by = actor;
    absl::StatusOr<CustomerRecord> created = store_->CreateCustomer(
        record, {request.request_id(), RequestHash(request)},
        Change(actor, "IdentifyCustomer", record.id, request.request_id()));
    if (absl::IsAlreadyExists(created.status()))
      continue;  // someone else just made it
    if (!created.ok()) return created.status();
    response.set_created(true);
    *response.mutable_customer() = Written(*created);
    return response;
  }
  return absl::AbortedError(
      "the customer changed concurrently three times; retry");
}

absl::StatusOr<v1::FindDuplicatesResponse> CustomerLogic::FindDuplicates(
    const v1::FindDuplicatesRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(
      std::string after,
      DecodePageToken(request.page_token(), "customers/duplicates"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<DuplicateGroupRecord> groups,
                           store_->FindDuplicates(after, size + 1));
  v1::FindDuplicatesResponse response;
  const bool more = static_cast<int>(groups.size()) > size;
  if (more) groups.resize(size);
  for (const DuplicateGroupRecord& g : groups) {
    v1::DuplicateGroup* out = response.add_groups();
    out->set_reason(g.reason);
    out->set_key(g.key);
    for (const std::string& id : g.customer_ids) out->add_customer_ids(id);
  }
  if (more) {
    response.set_next_page_token(EncodePageToken(
        DuplicatesPageKey(groups.back()), "customers/duplicates"));
  }
  return response;
}

absl::StatusOr<v1::MergeCustomersResponse> CustomerLogic::MergeCustomers(
    const v1::MergeCustomersRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.primary_id(), "primary_id"));
  if (request.duplicate_ids_size() == 0)
    return InvalidField("duplicate_ids", "is required");
  if (request.duplicate_ids_size() > 100)
    return InvalidField("duplicate_ids", "at most 100");
  std::set<std::string> seen;
  std::vector<std::string> duplicates;
  for (int i = 0; i < request.duplicate_ids_size(); ++i) {
    const std::string field = absl::StrCat("duplicate_ids[", i, "]");
    RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.duplicate_ids(i), field));
    if (request.duplicate_ids(i) == request.primary_id()) {
      return InvalidField(field, "is the primary itself");
    }
    if (!seen.insert(request.duplicate_ids(i)).second)
      return InvalidField(field, "is listed twice");
    duplicates.push_back(request.duplicate_ids(i));
  }
  RAPPORT_ASSIGN_OR_RETURN(
      MergeResult result,
      store_->MergeCustomers(
          request.primary_id(), duplicates,
          Change(actor, "MergeCustomers", request.primary_id(), "",
                 absl::StrCat("merged=", absl::StrJoin(duplicates, ","))),
          request.dry_run()));
  v1::MergeCustomersResponse response;
  *response.mutable_customer() = Written(result.primary);
  response.set_moved_purchases(result.moved_purchases);
  response.set_moved_interactions(result.moved_interactions);
  response.set_moved_consents(result.moved_consents);
  response.set_moved_identities(result.moved_identities);
  response.set_dry_run(request.dry_run());
  // Purchases move the primary's facts, interactions its cost to serve (and
  // so its tier): either way it is scored again now, and if that fails, in
  // the background, which tries again.
  if (!request.dry_run() && values_ != nullptr &&
      (result.moved_purchases > 0 || result.moved_interactions > 0)) {
    if (absl::Status s = values_->Rescore(request.primary_id()); !s.ok()) {
      LogLine("warn", "customer", "re-scoring after a merge failed",
              {{"customer", request.primary_id()},
               {"error", std::string(s.message())}});
      values_->RescoreSoon({request.primary_id()});
    }
  }
  return response;
}

absl::Status CustomerLogic::EraseCustomer(
    const v1::EraseCustomerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.id(), "id"));
  RAPPORT_RETURN_IF_ERROR(CheckNotMerged(*store_, request.id()));
  RAPPORT_ASSIGN_OR_RETURN(CustomerRecord current,
                           store_->GetCustomer(request.id()));
  // A retry (its answer lost) finds the work done, whatever its etag: the
  // erasure is not repeated, moved or audited again.
  if (current.erased) return absl::OkStatus();
  RAPPORT_RETURN_IF_ERROR(CheckEtag(request.etag(), current));
  std::vector<std::string> hashes;
  if (options_.suppression) {
    hashes = IdentityHashes(IdentitiesOf(current));
    // The records merged into it were the same person: their email and
    // phone cannot come back either. (A merge into it meanwhile changes its
    // version, which the check below refuses.)
    RAPPORT_ASSIGN_OR_RETURN(std::vector<IdentityQuery> merged,
                             store_->MergedIdentities(request.id()));
    for (const IdentityQuery& q : merged) {
      for (std::string& h : IdentityHashes(q)) hashes.push_back(std::move(h));
    }
    // Nor can a retry of a request that created them (see CreateCustomer).
    RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> requests,
                             store_->CreateRequestsOf(request.id()));
    for (const std::string& r : requests)
      hashes.push_back(CreateRequestHash(r));
  }
  return store_->EraseCustomer(
      request.id(), hashes,
      [&](const CustomerRecord& now) {
        // The identities hashed above must be the ones erased.
        if (now.version != current.version) {
          return absl::AbortedError(
              "the customer changed while being erased; retry");
        }
        return absl::OkStatus();
      },
      Change(actor, "EraseCustomer", request.id()));
}

// --- Interactions and consent ---

// A write on a customer merged between resolving its id and writing (the
// store says ABORTED) follows the merge, once: the id resolves to the
// customer that stayed now. RecordPurchase does the same.
absl::StatusOr<v1::Interaction> CustomerLogic::LogInteraction(
    const v1::LogInteractionRequest& request, const std::string& actor) {
  absl::StatusOr<v1::Interaction> logged = LogInteractionOnce(request, actor);
  if (IsMergedMeanwhile(logged.status())) {
    logged = LogInteractionOnce(request, actor);
  }
  return logged;
}

absl::StatusOr<v1::Consent> CustomerLogic::SetConsent(
    const v1::SetConsentRequest& request, const std::string& actor) {
  absl::StatusOr<v1::Consent> set = SetConsentOnce(request, actor);
  if (IsMergedMeanwhile(set.status())) set = SetConsentOnce(request, actor);
  return set;
}

absl::StatusOr<v1::Interaction> CustomerLogic::LogInteractionOnce(
    const v1::LogInteractionRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  if (!request.has_interaction())
    return InvalidField("interaction", "is required");
  const v1::Interaction& in = request.interaction();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    for (FieldViolation& v : FieldViolations(s))
      violations.push_back(std::move(v));
  };
  if (!in.customer_id().empty() && in.customer_id() != request.customer_id()) {
    violations.push_back(
        {"interaction.customer_id",
         "names another customer than customer_id; leave it empty"});
  }
  InteractionRecord record;
  if (in.channel() == cv1::CHANNEL_UNSPECIFIED ||
      !cv1::Channel_IsValid(in.channel())) {
    violations.push_back(
        {"interaction.channel",
         EnumRefusal(in.channel(), cv1::Channel_IsValid(in.channel()),
                     "email, phone, sms, visit, web, mail or event")});
  }
  record.channel = in.channel();
  if (!in.has_interaction_time()) {
    violations.push_back({"interaction.interaction_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.interaction_time(), "interaction.interaction_time");
    note(t.status());
    if (t.ok()) {
      note(CheckNotFuture(*t, NowMicros(), "interaction.interaction_time"));
      record.interaction_time_us = *t;
    }
  }
  if (!in.has_cost()) {
    violations.push_back(
        {"interaction.cost", "is required (0 when it cost nothing)"});
  } else {
    absl::StatusOr<Decimal> cost =
        FromMoneyAmount(in.cost(), "interaction.cost");
    note(cost.status());
    if (cost.ok() && cost->is_negative()) {
      violations.push_back({"interaction.cost", "must not be negative"});
    }
    if (cost.ok()) record.cost = *cost;
    if (!in.cost().currency_code().empty() &&
        in.cost().currency_code() != options_.currency) {
      violations.push_back(
          {"interaction.cost.currency_code",
           absl::StrCat("is \"", Utf8Prefix(in.cost().currency_code(), 16),
                        "\" but this deployment reports in \"",
                        options_.currency, "\"")});
    }
  }
  note(CheckOptionalText(in.kind(), "interaction.kind", 64));
  note(CheckNoteText(in.note(), "interaction.note", 1024));
  if (!violations.empty()) return InvalidFields(violations);
  record.kind = in.kind();
  record.note = in.note();
  RAPPORT_ASSIGN_OR_RETURN(record.customer_id,
                           store_->ResolveCustomerId(request.customer_id()));
  // The tier's contact policy, read before the store's transaction (which
  // holds a connection of the pool) and applied to a new interaction only:
  // a retry gets the stored one even if the customer moved to another tier
  // since.
  auto policy_allows = [&]() -> absl::Status {
    if (values_ == nullptr || request.force()) return absl::OkStatus();
    RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::ContactPolicy> policy,
                             values_->ContactPolicyOf(record.customer_id));
    if (!policy.has_value()) return absl::OkStatus();
    if (std::optional<differentiation::PolicyRefusal> no =
            differentiation::RefusedByPolicy(
                *policy, in.channel(), record.cost,
                absl::StrCat("customer ", record.customer_id))) {
      return absl::FailedPreconditionError(
          absl::StrCat(no->field == "cost" ? "interaction.cost: " : "",
                       no->message, "; set force to log it anyway"));
    }
    return absl::OkStatus();
  };
  const absl::Status allowed = policy_allows();
  if (!allowed.ok() && !absl::IsFailedPrecondition(allowed)) return allowed;
  auto admit = [&allowed] { return allowed; };
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId(kInteractionRequestScope, request.request_id());
  record.create_time_us = NowMicros();
  record.recorded_by = actor;
  v1::LogInteractionRequest canonical = request;
  canonical.mutable_interaction()->mutable_cost()->set_currency_code(
      options_.currency);
  // An interaction forced past the tier's policy is audited.
  std::optional<audit::Event> forced;
  if (request.force()) {
    forced = Change(actor, "LogInteraction", record.customer_id,
                    request.request_id(),
                    absl::StrCat("force interaction=", record.id));
  }
  RAPPORT_ASSIGN_OR_RETURN(
      InteractionRecord stored,
      store_->LogInteraction(record,
                             {request.request_id(), RequestHash(canonical)},
                             forced, admit));
  // Its cost changes the customer's profit, and so maybe its tier.
  if (values_ != nullptr) values_->RescoreSoon({stored.customer_id});
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::ListInteractionsResponse> CustomerLogic::ListInteractions(
    const v1::ListInteractionsRequest& request) {
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  CustomerStore::InteractionQuery query;
  const std::string filter =
      absl::StrCat("interactions|", request.customer_id());
  RAPPORT_ASSIGN_OR_RETURN(query.after,
                           DecodeTimeCursor(request.page_token(), filter));
  query.limit = size + 1;
  RAPPORT_ASSIGN_OR_RETURN(query.customer_id,
                           store_->ResolveCustomerId(request.customer_id()));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<InteractionRecord> records,
                           store_->ListInteractions(query));
  v1::ListInteractionsResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (const InteractionRecord& r : records)
    *response.add_interactions() = ToProto(r, options_.currency);
  if (more) {
    response.set_next_page_token(EncodeTimeCursor(
        records.back().interaction_time_us, records.back().id, filter));
  }
  return response;
}

absl::StatusOr<v1::Consent> CustomerLogic::SetConsentOnce(
    const v1::SetConsentRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  if (!request.has_consent()) return InvalidField("consent", "is required");
  const v1::Consent& in = request.consent();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    for (FieldViolation& v : FieldViolations(s))
      violations.push_back(std::move(v));
  };
  // A key of the consents (MariaDB compares keys without trailing spaces).
  note(CheckKeyText(in.purpose(), "consent.purpose", 64));
  if (in.channel() == cv1::CHANNEL_UNSPECIFIED ||
      !cv1::Channel_IsValid(in.channel())) {
    violations.push_back(
        {"consent.channel",
         EnumRefusal(in.channel(), cv1::Channel_IsValid(in.channel()),
                     "email, phone, sms, visit, web, mail or event")});
  }
  ConsentRecord record{in.purpose(), in.channel(), in.granted(), 0,
                       in.source()};
  if (!in.has_capture_time()) {
    violations.push_back({"consent.capture_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.capture_time(), "consent.capture_time");
    note(t.status());
    // The newest consent is the one that holds: one dated ahead would
    // outlive every withdrawal until then.
    if (t.ok()) {
      note(CheckNotFuture(*t, NowMicros(), "consent.capture_time"));
      record.capture_time_us = *t;
    }
  }
  note(CheckRequiredText(in.source(), "consent.source", 128));
  if (!violations.empty()) return InvalidFields(violations);
  RAPPORT_ASSIGN_OR_RETURN(std::string id,
                           store_->ResolveCustomerId(request.customer_id()));
  RAPPORT_ASSIGN_OR_RETURN(CustomerRecord customer, store_->GetCustomer(id));
  if (customer.erased) {
    return absl::FailedPreconditionError(
        absl::StrCat("customer ", id, " was erased"));
  }
  RAPPORT_RETURN_IF_ERROR(store_->SetConsent(
      id, record,
      Change(actor, "SetConsent", id, "",
             absl::StrCat("purpose=", record.purpose,
                          " channel=", ChannelName(record.channel),
                          record.granted ? " granted" : " withdrawn"))));
  // The answer is the consent that holds now: a capture older than the
  // current one only joins the history, and its caller must not take it for
  // what holds.
  RAPPORT_ASSIGN_OR_RETURN(std::vector<ConsentRecord> current,
                           store_->ListConsents(id));
  for (const ConsentRecord& c : current) {
    if (c.purpose == record.purpose && c.channel == record.channel)
      return ToProto(c);
  }
  return ToProto(record);
}

absl::StatusOr<v1::ListConsentsResponse> CustomerLogic::ListConsents(
    const v1::ListConsentsRequest& request) {
  RAPPORT_RETURN_IF_ERROR(
      CheckCustomerId(request.customer_id(), "customer_id"));
  RAPPORT_ASSIGN_OR_RETURN(std::string id,
                           store_->ResolveCustomerId(request.customer_id()));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<ConsentRecord> records,
                           store_->ListConsents(id));
  v1::ListConsentsResponse response;
  for (const ConsentRecord& r : records) *response.add_consents() = ToProto(r);
  return response;
}

absl::StatusOr<v1::ListAuditEventsResponse> CustomerLogic::ListAuditEvents(
    const v1::ListAuditEventsRequest& request) {
  return audit::ListEvents<v1::ListAuditEventsResponse>(
      request, [this](const audit::Filter& filter,
                      const std::optional<audit::Cursor>& after, int limit) {
        return store_->ListAuditEvents(filter, after, limit);
      });
}

}  // namespace rapport::customer
