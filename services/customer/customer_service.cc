#include "services/customer/customer_service.h"

#include "common/differentiation/rpcs.h"
#include "common/reply.h"
#include "common/status.h"

namespace rapport::customer {

grpc::Status CustomerServiceImpl::CreateCustomer(
    grpc::ServerContext*, const v1::CreateCustomerRequest* request,
    v1::CreateCustomerResponse* response) {
  return Reply(logic_->CreateCustomer(*request), [&](v1::Customer c) {
    *response->mutable_customer() = std::move(c);
  });
}

grpc::ServerUnaryReactor* CustomerServiceImpl::GetCustomer(
    grpc::CallbackServerContext* context, const v1::GetCustomerRequest* request,
    v1::GetCustomerResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  logic_->GetCustomer(
      *request, [reactor, response](absl::StatusOr<v1::GetCustomerResponse> r) {
        reactor->Finish(Reply(std::move(r), [&](v1::GetCustomerResponse got) {
          *response = std::move(got);
        }));
      });
  return reactor;
}

grpc::Status CustomerServiceImpl::ListCustomers(
    grpc::ServerContext*, const v1::ListCustomersRequest* request,
    v1::ListCustomersResponse* response) {
  return Reply(logic_->ListCustomers(*request),
               [&](v1::ListCustomersResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::UpdateCustomer(
    grpc::ServerContext*, const v1::UpdateCustomerRequest* request,
    v1::UpdateCustomerResponse* response) {
  return Reply(logic_->UpdateCustomer(*request), [&](v1::Customer c) {
    *response->mutable_customer() = std::move(c);
  });
}

grpc::Status CustomerServiceImpl::DeleteCustomer(
    grpc::ServerContext*, const v1::DeleteCustomerRequest* request,
    v1::DeleteCustomerResponse*) {
  return ToGrpcStatus(logic_->DeleteCustomer(*request));
}

grpc::ServerUnaryReactor* CustomerServiceImpl::RecordPurchase(
    grpc::CallbackServerContext* context,
    const v1::RecordPurchaseRequest* request,
    v1::RecordPurchaseResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  logic_->RecordPurchase(
      *request, [reactor, response](absl::StatusOr<v1::Purchase> r) {
        reactor->Finish(Reply(std::move(r), [&](v1::Purchase p) {
          *response->mutable_purchase() = std::move(p);
        }));
      });
  return reactor;
}

grpc::Status CustomerServiceImpl::ListPurchases(
    grpc::ServerContext*, const v1::ListPurchasesRequest* request,
    v1::ListPurchasesResponse* response) {
  return Reply(logic_->ListPurchases(*request),
               [&](v1::ListPurchasesResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::IdentifyCustomer(
    grpc::ServerContext*, const v1::IdentifyCustomerRequest* request,
    v1::IdentifyCustomerResponse* response) {
  return Reply(
      logic_->IdentifyCustomer(*request),
      [&](v1::IdentifyCustomerResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::FindDuplicates(
    grpc::ServerContext*, const v1::FindDuplicatesRequest* request,
    v1::FindDuplicatesResponse* response) {
  return Reply(logic_->FindDuplicates(*request),
               [&](v1::FindDuplicatesResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::MergeCustomers(
    grpc::ServerContext* context, const v1::MergeCustomersRequest* request,
    v1::MergeCustomersResponse* response) {
  return Reply(logic_->MergeCustomers(*request, context->peer()),
               [&](v1::MergeCustomersResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::ImportPurchases(
    grpc::ServerContext*,
    grpc::ServerReader<v1::ImportPurchasesRequest>* reader,
    v1::ImportPurchasesResponse* response) {
  return Reply(
      imports_->ImportPurchases([reader](v1::ImportPurchasesRequest* batch) {
        return reader->Read(batch);
      }),
      [&](v1::ImportPurchasesResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::LogInteraction(
    grpc::ServerContext*, const v1::LogInteractionRequest* request,
    v1::LogInteractionResponse* response) {
  return Reply(logic_->LogInteraction(*request), [&](v1::Interaction i) {
    *response->mutable_interaction() = std::move(i);
  });
}

grpc::Status CustomerServiceImpl::ListInteractions(
    grpc::ServerContext*, const v1::ListInteractionsRequest* request,
    v1::ListInteractionsResponse* response) {
  return Reply(
      logic_->ListInteractions(*request),
      [&](v1::ListInteractionsResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::ImportInteractions(
    grpc::ServerContext*,
    grpc::ServerReader<v1::ImportInteractionsRequest>* reader,
    v1::ImportInteractionsResponse* response) {
  return Reply(
      imports_->ImportInteractions(
          [reader](v1::ImportInteractionsRequest* batch) {
            return reader->Read(batch);
          }),
      [&](v1::ImportInteractionsResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::SetConsent(
    grpc::ServerContext*, const v1::SetConsentRequest* request,
    v1::SetConsentResponse* response) {
  return Reply(logic_->SetConsent(*request), [&](v1::Consent c) {
    *response->mutable_consent() = std::move(c);
  });
}

grpc::Status CustomerServiceImpl::ListConsents(
    grpc::ServerContext*, const v1::ListConsentsRequest* request,
    v1::ListConsentsResponse* response) {
  return Reply(logic_->ListConsents(*request),
               [&](v1::ListConsentsResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::EraseCustomer(
    grpc::ServerContext*, const v1::EraseCustomerRequest* request,
    v1::EraseCustomerResponse*) {
  return ToGrpcStatus(logic_->EraseCustomer(*request));
}

// Differentiation: the shared kit's RPCs.

grpc::Status CustomerServiceImpl::RefreshScores(
    grpc::ServerContext*, const v1::RefreshScoresRequest* request,
    v1::RefreshScoresResponse* response) {
  return differentiation::rpcs::RefreshScores(*values_, *request, response);
}

grpc::Status CustomerServiceImpl::GetRefreshJob(
    grpc::ServerContext*, const v1::GetRefreshJobRequest* request,
    v1::GetRefreshJobResponse* response) {
  return differentiation::rpcs::GetRefreshJob(*values_, request->id(),
                                              response);
}

grpc::Status CustomerServiceImpl::GetCustomerValue(
    grpc::ServerContext*, const v1::GetCustomerValueRequest* request,
    v1::GetCustomerValueResponse* response) {
  return differentiation::rpcs::GetValue(*values_, request->id(), response);
}

grpc::Status CustomerServiceImpl::SummarizeSegments(
    grpc::ServerContext*, const v1::SummarizeSegmentsRequest*,
    v1::SummarizeSegmentsResponse* response) {
  return differentiation::rpcs::SummarizeSegments(*values_, response);
}

grpc::Status CustomerServiceImpl::ExportScores(
    grpc::ServerContext* context, const v1::ExportScoresRequest* request,
    grpc::ServerWriter<v1::ExportScoresResponse>* writer) {
  return differentiation::rpcs::ExportScores(
      *values_, request->external_id_source(), context, writer);
}

}  // namespace rapport::customer
