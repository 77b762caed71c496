#include "services/customer/customer_service.h"

#include "common/status.h"

namespace rapport::customer {
namespace {

// Stores a successful result through `set`, and converts the status either way.
template <typename T, typename Set>
grpc::Status Reply(absl::StatusOr<T> result, Set set) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  set(*std::move(result));
  return grpc::Status::OK;
}

}  // namespace

grpc::Status CustomerServiceImpl::CreateCustomer(grpc::ServerContext*,
                                                 const v1::CreateCustomerRequest* request,
                                                 v1::CreateCustomerResponse* response) {
  return Reply(logic_->CreateCustomer(*request),
               [&](v1::Customer c) { *response->mutable_customer() = std::move(c); });
}

grpc::Status CustomerServiceImpl::GetCustomer(grpc::ServerContext*,
                                              const v1::GetCustomerRequest* request,
                                              v1::GetCustomerResponse* response) {
  return Reply(logic_->GetCustomer(*request),
               [&](v1::Customer c) { *response->mutable_customer() = std::move(c); });
}

grpc::Status CustomerServiceImpl::ListCustomers(grpc::ServerContext*,
                                                const v1::ListCustomersRequest* request,
                                                v1::ListCustomersResponse* response) {
  return Reply(logic_->ListCustomers(*request),
               [&](v1::ListCustomersResponse r) { *response = std::move(r); });
}

grpc::Status CustomerServiceImpl::UpdateCustomer(grpc::ServerContext*,
                                                 const v1::UpdateCustomerRequest* request,
                                                 v1::UpdateCustomerResponse* response) {
  return Reply(logic_->UpdateCustomer(*request),
               [&](v1::Customer c) { *response->mutable_customer() = std::move(c); });
}

grpc::Status CustomerServiceImpl::DeleteCustomer(grpc::ServerContext*,
                                                 const v1::DeleteCustomerRequest* request,
                                                 v1::DeleteCustomerResponse*) {
  return ToGrpcStatus(logic_->DeleteCustomer(*request));
}

grpc::Status CustomerServiceImpl::RecordPurchase(grpc::ServerContext*,
                                                 const v1::RecordPurchaseRequest* request,
                                                 v1::RecordPurchaseResponse* response) {
  return Reply(logic_->RecordPurchase(*request),
               [&](v1::Purchase p) { *response->mutable_purchase() = std::move(p); });
}

grpc::Status CustomerServiceImpl::ListPurchases(grpc::ServerContext*,
                                                const v1::ListPurchasesRequest* request,
                                                v1::ListPurchasesResponse* response) {
  return Reply(logic_->ListPurchases(*request),
               [&](v1::ListPurchasesResponse r) { *response = std::move(r); });
}

}  // namespace rapport::customer
