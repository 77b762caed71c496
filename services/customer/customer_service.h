// The gRPC face of the customer service: unpacks each call, hands it to
// CustomerLogic, and converts the status once. No rules live here.
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_

#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "services/customer/customer_logic.h"

namespace rapport::customer {

class CustomerServiceImpl final : public v1::CustomerService::Service {
 public:
  explicit CustomerServiceImpl(CustomerLogic* logic) : logic_(logic) {}

  grpc::Status CreateCustomer(grpc::ServerContext*, const v1::CreateCustomerRequest* request,
                              v1::CreateCustomerResponse* response) override;
  grpc::Status GetCustomer(grpc::ServerContext*, const v1::GetCustomerRequest* request,
                           v1::GetCustomerResponse* response) override;
  grpc::Status ListCustomers(grpc::ServerContext*, const v1::ListCustomersRequest* request,
                             v1::ListCustomersResponse* response) override;
  grpc::Status UpdateCustomer(grpc::ServerContext*, const v1::UpdateCustomerRequest* request,
                              v1::UpdateCustomerResponse* response) override;
  grpc::Status DeleteCustomer(grpc::ServerContext*, const v1::DeleteCustomerRequest* request,
                              v1::DeleteCustomerResponse* response) override;
  grpc::Status RecordPurchase(grpc::ServerContext*, const v1::RecordPurchaseRequest* request,
                              v1::RecordPurchaseResponse* response) override;
  grpc::Status ListPurchases(grpc::ServerContext*, const v1::ListPurchasesRequest* request,
                             v1::ListPurchasesResponse* response) override;

 private:
  CustomerLogic* logic_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_
