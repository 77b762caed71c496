#include "services/customer/customer_service.h"

#include "absl/strings/str_cat.h"
#include "common/differentiation/rpcs.h"
#include "common/reply.h"
#include "common/status.h"

namespace rapport::customer {

using auth::Role;

const MethodRoles& CustomerMethodRoles() {
  static const MethodRoles* const kRoles = new MethodRoles(
      v1::CustomerService::service_full_name(),
      {
          // Readers get, list, summarise and export.
          {"GetCustomer", Role::kReader},
          {"ListCustomers", Role::kReader},
          {"ListPurchases", Role::kReader},
          {"FindDuplicates", Role::kReader},
          {"ListInteractions", Role::kReader},
          {"ListConsents", Role::kReader},
          {"GetRefreshJob", Role::kReader},
          {"GetCustomerValue", Role::kReader},
          {"SummarizeSegments", Role::kReader},
          {"ExportScores", Role::kReader},
          // Writers also create, update, record, import, log, consent,
          // identify and refresh.
          {"CreateCustomer", Role::kWriter},
          {"UpdateCustomer", Role::kWriter},
          {"RecordPurchase", Role::kWriter},
          {"ImportPurchases", Role::kWriter},
          {"ImportInteractions", Role::kWriter},  // with force: admin
          {"LogInteraction", Role::kWriter},      // with force: admin
          {"SetConsent", Role::kWriter},
          {"IdentifyCustomer", Role::kWriter},
          {"RefreshScores", Role::kWriter},
          // Admins also delete, merge, erase and read the audit log.
          {"DeleteCustomer", Role::kAdmin},
          {"MergeCustomers", Role::kAdmin},
          {"EraseCustomer", Role::kAdmin},
          {"ListAuditEvents", Role::kAdmin},
      });
  return *kRoles;
}

grpc::Status CustomerServiceImpl::CreateCustomer(
    grpc::ServerContext* context, const v1::CreateCustomerRequest* request,
    v1::CreateCustomerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "CreateCustomer");
  return Reply(
      logic_->CreateCustomer(*request, caller.subject),
      [&](v1::Customer c) { *response->mutable_customer() = std::move(c); });
}

namespace {

// The largest GetCustomer or RecordPurchase request taken, far more than
// any valid one holds (a purchase's description is at most 1024
// characters). A call of the callback API waits in a queue with its request
// (up to CustomerLogic's max_waiting_calls of them, beyond the thread
// limit): without this, unknown fields could pad each to the 4 MiB a message
// may hold, and 4096 waiting calls hold 64 MiB at most.
constexpr size_t kMaxQueuedRequestBytes = 16 << 10;

absl::Status CheckQueuedSize(const google::protobuf::Message& request) {
  const size_t size = request.ByteSizeLong();
  if (size <= kMaxQueuedRequestBytes) return absl::OkStatus();
  return InvalidField(
      "request", absl::StrCat("is ", size, " bytes; this call takes at most ",
                              kMaxQueuedRequestBytes));
}

}  // namespace

grpc::ServerUnaryReactor* CustomerServiceImpl::GetCustomer(
    grpc::CallbackServerContext* context, const v1::GetCustomerRequest* request,
    v1::GetCustomerResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::StatusOr<auth::Principal> caller =
          guard_->Authorize(*context, "GetCustomer");
      !caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (absl::Status s = CheckQueuedSize(*request); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  logic_->GetCustomer(
      *request, [reactor, response](absl::StatusOr<v1::GetCustomerResponse> r) {
        reactor->Finish(ReplyWith(std::move(r), response));
      });
  return reactor;
}

grpc::Status CustomerServiceImpl::ListCustomers(
    grpc::ServerContext* context, const v1::ListCustomersRequest* request,
    v1::ListCustomersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListCustomers");
  return ReplyWith(logic_->ListCustomers(*request), response);
}

grpc::Status CustomerServiceImpl::UpdateCustomer(
    grpc::ServerContext* context, const v1::UpdateCustomerRequest* request,
    v1::UpdateCustomerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "UpdateCustomer");
  return Reply(
      logic_->UpdateCustomer(*request, caller.subject),
      [&](v1::Customer c) { *response->mutable_customer() = std::move(c); });
}

grpc::Status CustomerServiceImpl::DeleteCustomer(
    grpc::ServerContext* context, const v1::DeleteCustomerRequest* request,
    v1::DeleteCustomerResponse*) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "DeleteCustomer",
                    request->force());
  return ToGrpcStatus(logic_->DeleteCustomer(*request, caller.subject));
}

grpc::ServerUnaryReactor* CustomerServiceImpl::RecordPurchase(
    grpc::CallbackServerContext* context,
    const v1::RecordPurchaseRequest* request,
    v1::RecordPurchaseResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<auth::Principal> caller =
      guard_->Authorize(*context, "RecordPurchase");
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (absl::Status s = CheckQueuedSize(*request); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  logic_->RecordPurchase(
      *request, caller->subject,
      [reactor, response](absl::StatusOr<v1::Purchase> r) {
        reactor->Finish(Reply(std::move(r), [&](v1::Purchase p) {
          *response->mutable_purchase() = std::move(p);
        }));
      });
  return reactor;
}

grpc::Status CustomerServiceImpl::ListPurchases(
    grpc::ServerContext* context, const v1::ListPurchasesRequest* request,
    v1::ListPurchasesResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListPurchases");
  return ReplyWith(logic_->ListPurchases(*request), response);
}

grpc::Status CustomerServiceImpl::IdentifyCustomer(
    grpc::ServerContext* context, const v1::IdentifyCustomerRequest* request,
    v1::IdentifyCustomerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "IdentifyCustomer");
  return ReplyWith(logic_->IdentifyCustomer(*request, caller.subject),
                   response);
}

grpc::Status CustomerServiceImpl::FindDuplicates(
    grpc::ServerContext* context, const v1::FindDuplicatesRequest* request,
    v1::FindDuplicatesResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "FindDuplicates");
  return ReplyWith(logic_->FindDuplicates(*request), response);
}

grpc::Status CustomerServiceImpl::MergeCustomers(
    grpc::ServerContext* context, const v1::MergeCustomersRequest* request,
    v1::MergeCustomersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "MergeCustomers");
  return ReplyWith(logic_->MergeCustomers(*request, caller.subject), response);
}

grpc::Status CustomerServiceImpl::ImportPurchases(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportPurchasesRequest>* reader,
    v1::ImportPurchasesResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportPurchases");
  return ReplyWith(imports_->ImportPurchases(MessagesOf(reader), caller.subject,
                                             CancelledOf(context)),
                   response);
}

grpc::Status CustomerServiceImpl::LogInteraction(
    grpc::ServerContext* context, const v1::LogInteractionRequest* request,
    v1::LogInteractionResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "LogInteraction",
                    request->force());
  return Reply(logic_->LogInteraction(*request, caller.subject),
               [&](v1::Interaction i) {
                 *response->mutable_interaction() = std::move(i);
               });
}

grpc::Status CustomerServiceImpl::ListInteractions(
    grpc::ServerContext* context, const v1::ListInteractionsRequest* request,
    v1::ListInteractionsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListInteractions");
  return ReplyWith(logic_->ListInteractions(*request), response);
}

grpc::Status CustomerServiceImpl::ImportInteractions(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportInteractionsRequest>* reader,
    v1::ImportInteractionsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportInteractions");
  bool force = false;
  absl::StatusOr<std::function<bool(v1::ImportInteractionsRequest*)>> messages =
      ForceableMessages(*guard_, *context, "ImportInteractions", reader,
                        &force);
  if (!messages.ok()) return ToGrpcStatus(messages.status());
  return ReplyWith(imports_->ImportInteractions(*messages, caller.subject,
                                                CancelledOf(context), force),
                   response);
}

grpc::Status CustomerServiceImpl::SetConsent(
    grpc::ServerContext* context, const v1::SetConsentRequest* request,
    v1::SetConsentResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "SetConsent");
  return Reply(
      logic_->SetConsent(*request, caller.subject),
      [&](v1::Consent c) { *response->mutable_consent() = std::move(c); });
}

grpc::Status CustomerServiceImpl::ListConsents(
    grpc::ServerContext* context, const v1::ListConsentsRequest* request,
    v1::ListConsentsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListConsents");
  return ReplyWith(logic_->ListConsents(*request), response);
}

grpc::Status CustomerServiceImpl::EraseCustomer(
    grpc::ServerContext* context, const v1::EraseCustomerRequest* request,
    v1::EraseCustomerResponse*) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "EraseCustomer");
  return ToGrpcStatus(logic_->EraseCustomer(*request, caller.subject));
}

// Differentiation: the shared kit's RPCs.

grpc::Status CustomerServiceImpl::RefreshScores(
    grpc::ServerContext* context, const v1::RefreshScoresRequest* request,
    v1::RefreshScoresResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RefreshScores");
  return differentiation::rpcs::RefreshScores(*values_, *request,
                                              caller.subject, response);
}

grpc::Status CustomerServiceImpl::GetRefreshJob(
    grpc::ServerContext* context, const v1::GetRefreshJobRequest* request,
    v1::GetRefreshJobResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetRefreshJob");
  return differentiation::rpcs::GetRefreshJob(*values_, request->id(),
                                              response);
}

grpc::Status CustomerServiceImpl::GetCustomerValue(
    grpc::ServerContext* context, const v1::GetCustomerValueRequest* request,
    v1::GetCustomerValueResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetCustomerValue");
  return differentiation::rpcs::GetValue(*values_, request->id(), response);
}

grpc::Status CustomerServiceImpl::SummarizeSegments(
    grpc::ServerContext* context, const v1::SummarizeSegmentsRequest*,
    v1::SummarizeSegmentsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "SummarizeSegments");
  return differentiation::rpcs::SummarizeSegments(*values_, response);
}

grpc::Status CustomerServiceImpl::ExportScores(
    grpc::ServerContext* context, const v1::ExportScoresRequest* request,
    grpc::ServerWriter<v1::ExportScoresResponse>* writer) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ExportScores");
  return differentiation::rpcs::ExportScores(
      *values_, request->external_id_source(), context, writer);
}

grpc::Status CustomerServiceImpl::ListAuditEvents(
    grpc::ServerContext* context, const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListAuditEvents");
  return ReplyWith(logic_->ListAuditEvents(*request), response);
}

}  // namespace rapport::customer
