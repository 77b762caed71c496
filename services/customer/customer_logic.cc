#include "services/customer/customer_logic.h"

#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::customer {
namespace {

constexpr size_t kMaxRequestId = 128;

absl::Status CheckRequestId(const std::string& request_id) {
  return CheckOptionalText(request_id, "request_id", kMaxRequestId);
}

absl::Status CheckCustomerId(const std::string& id, absl::string_view field) {
  if (id.empty()) return InvalidField(field, "is required");
  if (!IsValidId(id)) return InvalidField(field, absl::StrCat("\"", id, "\" is not a customer id"));
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
absl::Status ApplyCustomerFields(const v1::Customer& in, const std::set<std::string>& paths,
                                 CustomerRecord& out) {
  std::vector<FieldViolation> violations;
  auto wants = [&](const char* path) { return paths.empty() || paths.count(path) > 0; };
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(std::move(v));
  };
  if (wants("display_name")) {
    absl::Status s = CheckRequiredText(in.display_name(), "customer.display_name", 256);
    note(s);
    if (s.ok()) out.display_name = in.display_name();
  }
  if (wants("email")) {
    out.email.clear();
    if (!in.email().empty()) {
      absl::StatusOr<std::string> email = NormalizeEmail(in.email(), "customer.email");
      note(email.status());
      if (email.ok()) out.email = *email;
    }
  }
  if (wants("phone")) {
    out.phone.clear();
    if (!in.phone().empty()) {
      absl::StatusOr<std::string> phone = NormalizePhone(in.phone(), "customer.phone");
      note(phone.status());
      if (phone.ok()) out.phone = *phone;
    }
  }
  if (wants("external_ids")) {
    out.external_ids.clear();
    std::set<std::pair<std::string, std::string>> seen;
    for (int i = 0; i < in.external_ids_size(); ++i) {
      const v1::ExternalId& e = in.external_ids(i);
      const std::string field = absl::StrCat("customer.external_ids[", i, "]");
      absl::Status source = CheckRequiredText(e.source(), field + ".source", 64);
      absl::Status id = CheckRequiredText(e.id(), field + ".id", 256);
      note(source);
      note(id);
      if (source.ok() && id.ok()) {
        if (!seen.insert({e.source(), e.id()}).second) {
          violations.push_back({field, "is listed twice"});
        } else {
          out.external_ids.push_back({e.source(), e.id()});
        }
      }
    }
  }
  if (wants("attributes")) {
    out.attributes.clear();
    for (const auto& [key, value] : in.attributes()) {
      const std::string field = absl::StrCat("customer.attributes[\"", key, "\"]");
      absl::Status k = CheckRequiredText(key, field + " key", 64);
      absl::Status v = CheckOptionalText(value, field, 1024);
      note(k);
      note(v);
      if (k.ok() && v.ok()) out.attributes[key] = value;
    }
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
  for (const auto& [key, value] : r.attributes) (*c.mutable_attributes())[key] = value;
  *c.mutable_create_time() = ToTimestamp(r.create_time_us);
  *c.mutable_update_time() = ToTimestamp(r.update_time_us);
  c.set_etag(CustomerEtag(r.version));
  return c;
}

absl::StatusOr<v1::Purchase> ToProto(const PurchaseRecord& r) {
  v1::Purchase p;
  p.set_id(r.id);
  p.set_customer_id(r.customer_id);
  *p.mutable_purchase_time() = ToTimestamp(r.purchase_time_us);
  RAPPORT_ASSIGN_OR_RETURN(*p.mutable_amount(), ToMoney(r.amount, r.currency, "purchase.amount"));
  p.set_description(r.description);
  *p.mutable_create_time() = ToTimestamp(r.create_time_us);
  return p;
}

absl::Status CheckEtag(const std::string& given, const CustomerRecord& current) {
  if (given.empty() || given == CustomerEtag(current.version)) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat("customer ", current.id,
                                         " was changed since etag \"", given,
                                         "\" was read; read it again and retry"));
}

}  // namespace

std::string CustomerEtag(int64_t version) { return absl::StrCat(version); }

CustomerLogic::CustomerLogic(CustomerStore* store, IdGenerator* ids, Clock clock,
                             CustomerLogicOptions options)
    : store_(store), ids_(ids), clock_(std::move(clock)), options_(std::move(options)) {}

int64_t CustomerLogic::NowMicros() const { return absl::ToUnixMicros(clock_()); }

absl::StatusOr<v1::Customer> CustomerLogic::CreateCustomer(
    const v1::CreateCustomerRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (!request.has_customer()) return InvalidField("customer", "is required");
  CustomerRecord record;
  RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(request.customer(), {}, record));
  record.id = ids_->Next();
  record.create_time_us = record.update_time_us = NowMicros();
  RAPPORT_ASSIGN_OR_RETURN(
      CustomerRecord stored,
      store_->CreateCustomer(record, {request.request_id(), RequestHash(request)}));
  return ToProto(stored);
}

absl::StatusOr<v1::Customer> CustomerLogic::GetCustomer(const v1::GetCustomerRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.id(), "id"));
  RAPPORT_ASSIGN_OR_RETURN(CustomerRecord stored, store_->GetCustomer(request.id()));
  return ToProto(stored);
}

absl::StatusOr<v1::ListCustomersResponse> CustomerLogic::ListCustomers(
    const v1::ListCustomersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(std::string after, DecodePageToken(request.page_token(), "customers"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerRecord> records,
                           store_->ListCustomers(after, size + 1));
  v1::ListCustomersResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (const CustomerRecord& r : records) *response.add_customers() = ToProto(r);
  if (more) response.set_next_page_token(EncodePageToken(records.back().id, "customers"));
  return response;
}

absl::StatusOr<v1::Customer> CustomerLogic::UpdateCustomer(
    const v1::UpdateCustomerRequest& request) {
  if (!request.has_customer()) return InvalidField("customer", "is required");
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.customer().id(), "customer.id"));
  if (request.update_mask().paths_size() == 0) {
    return InvalidField("update_mask", "is required: name the fields to change");
  }
  static const std::set<std::string>* const kUpdatable = new std::set<std::string>{
      "display_name", "email", "phone", "external_ids", "attributes"};
  std::set<std::string> paths;
  for (const std::string& path : request.update_mask().paths()) {
    if (kUpdatable->count(path) == 0) {
      return InvalidField("update_mask",
                          absl::StrCat("\"", path,
                                       "\" cannot be updated; use display_name, email, phone, "
                                       "external_ids or attributes"));
    }
    paths.insert(path);
  }
  // Validate before touching the store, so bad input never takes a lock.
  CustomerRecord scratch;
  RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(request.customer(), paths, scratch));
  const int64_t now = NowMicros();
  RAPPORT_ASSIGN_OR_RETURN(
      CustomerRecord updated,
      store_->UpdateCustomer(request.customer().id(), [&](CustomerRecord& current) {
        RAPPORT_RETURN_IF_ERROR(CheckEtag(request.customer().etag(), current));
        RAPPORT_RETURN_IF_ERROR(ApplyCustomerFields(request.customer(), paths, current));
        current.update_time_us = std::max(now, current.update_time_us);
        return absl::OkStatus();
      }));
  return ToProto(updated);
}

absl::Status CustomerLogic::DeleteCustomer(const v1::DeleteCustomerRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.id(), "id"));
  return store_->DeleteCustomer(request.id(), request.force(), [&](const CustomerRecord& current) {
    return CheckEtag(request.etag(), current);
  });
}

absl::StatusOr<v1::Purchase> CustomerLogic::RecordPurchase(
    const v1::RecordPurchaseRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.customer_id(), "customer_id"));
  if (!request.has_purchase()) return InvalidField("purchase", "is required");
  const v1::Purchase& in = request.purchase();
  std::vector<FieldViolation> violations;
  PurchaseRecord record;
  if (!in.has_purchase_time()) {
    violations.push_back({"purchase.purchase_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t = FromTimestamp(in.purchase_time(), "purchase.purchase_time");
    if (t.ok()) {
      record.purchase_time_us = *t;
    } else {
      for (FieldViolation& v : FieldViolations(t.status())) violations.push_back(v);
    }
  }
  if (!in.has_amount()) {
    violations.push_back({"purchase.amount", "is required"});
  } else {
    absl::StatusOr<Decimal> amount = FromMoney(in.amount(), "purchase.amount");
    if (amount.ok()) {
      record.amount = *amount;
    } else {
      for (FieldViolation& v : FieldViolations(amount.status())) violations.push_back(v);
    }
    const std::string& currency = in.amount().currency_code();
    if (!currency.empty() && currency != options_.currency) {
      violations.push_back({"purchase.amount.currency_code",
                            absl::StrCat("is \"", currency, "\" but this deployment reports in \"",
                                         options_.currency, "\"")});
    }
  }
  if (absl::Status s = CheckOptionalText(in.description(), "purchase.description", 1024);
      !s.ok()) {
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  }
  if (!violations.empty()) return InvalidFields(violations);
  record.id = ids_->Next();
  record.customer_id = request.customer_id();
  record.currency = options_.currency;
  record.description = in.description();
  record.create_time_us = NowMicros();
  v1::RecordPurchaseRequest canonical = request;
  canonical.mutable_purchase()->mutable_amount()->set_currency_code(options_.currency);
  RAPPORT_ASSIGN_OR_RETURN(
      PurchaseRecord stored,
      store_->RecordPurchase(record, {request.request_id(), RequestHash(canonical)}));
  return ToProto(stored);
}

absl::StatusOr<v1::ListPurchasesResponse> CustomerLogic::ListPurchases(
    const v1::ListPurchasesRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckCustomerId(request.customer_id(), "customer_id"));
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  CustomerStore::PurchaseQuery query;
  query.customer_id = request.customer_id();
  if (request.has_start_time()) {
    RAPPORT_ASSIGN_OR_RETURN(query.start_time_us,
                             FromTimestamp(request.start_time(), "start_time"));
  }
  if (request.has_end_time()) {
    RAPPORT_ASSIGN_OR_RETURN(query.end_time_us, FromTimestamp(request.end_time(), "end_time"));
  }
  if (query.start_time_us && query.end_time_us && *query.end_time_us < *query.start_time_us) {
    return InvalidField("end_time", "is before start_time");
  }
  const std::string filter =
      absl::StrCat(query.customer_id, "|", query.start_time_us.value_or(-1), "|",
                   query.end_time_us.value_or(-1));
  RAPPORT_ASSIGN_OR_RETURN(std::string after, DecodePageToken(request.page_token(), filter));
  if (!after.empty()) {
    std::pair<std::string, std::string> parts = absl::StrSplit(after, absl::MaxSplits(':', 1));
    int64_t time_us = 0;
    if (!absl::SimpleAtoi(parts.first, &time_us)) {
      return InvalidField("page_token", "is not a token this service issued");
    }
    query.after = std::make_pair(time_us, parts.second);
  }
  query.limit = size + 1;
  RAPPORT_ASSIGN_OR_RETURN(std::vector<PurchaseRecord> records, store_->ListPurchases(query));
  v1::ListPurchasesResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (const PurchaseRecord& r : records) {
    RAPPORT_ASSIGN_OR_RETURN(*response.add_purchases(), ToProto(r));
  }
  if (more) {
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(records.back().purchase_time_us, ":", records.back().id), filter));
  }
  return response;
}

}  // namespace rapport::customer
