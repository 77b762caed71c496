// The gRPC face of the customer service: checks each call's caller against
// CustomerMethodRoles (the one table of who may call what), unpacks it,
// hands it to CustomerLogic with the caller as the change's actor, and
// converts the status once. No rules live here.
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_

#include "common/call_guard.h"
#include "common/differentiation/differentiation.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "services/customer/customer_logic.h"
#include "services/customer/import_logic.h"

namespace rapport::customer {

// The least role each RPC of CustomerService needs.
const MethodRoles& CustomerMethodRoles();

// GetCustomer and RecordPurchase, the hottest calls, are served through
// gRPC's callback API: the handler queues the request for CustomerLogic's
// reader or writer threads and returns, and that thread finishes the call, so
// no serving thread waits per call in flight.
class CustomerServiceImpl final
    : public v1::CustomerService::WithCallbackMethod_GetCustomer<
          v1::CustomerService::WithCallbackMethod_RecordPurchase<
              v1::CustomerService::Service>> {
 public:
  // `guard` checks calls against CustomerMethodRoles().
  CustomerServiceImpl(const CallGuard* guard, CustomerLogic* logic,
                      ImportLogic* imports,
                      differentiation::Differentiation* values)
      : guard_(guard), logic_(logic), imports_(imports), values_(values) {}

  grpc::Status CreateCustomer(grpc::ServerContext* context,
                              const v1::CreateCustomerRequest* request,
                              v1::CreateCustomerResponse* response) override;
  grpc::ServerUnaryReactor* GetCustomer(
      grpc::CallbackServerContext* context,
      const v1::GetCustomerRequest* request,
      v1::GetCustomerResponse* response) override;
  grpc::Status ListCustomers(grpc::ServerContext* context,
                             const v1::ListCustomersRequest* request,
                             v1::ListCustomersResponse* response) override;
  grpc::Status UpdateCustomer(grpc::ServerContext* context,
                              const v1::UpdateCustomerRequest* request,
                              v1::UpdateCustomerResponse* response) override;
  grpc::Status DeleteCustomer(grpc::ServerContext* context,
                              const v1::DeleteCustomerRequest* request,
                              v1::DeleteCustomerResponse* response) override;
  grpc::ServerUnaryReactor* RecordPurchase(
      grpc::CallbackServerContext* context,
      const v1::RecordPurchaseRequest* request,
      v1::RecordPurchaseResponse* response) override;
  grpc::Status ListPurchases(grpc::ServerContext* context,
                             const v1::ListPurchasesRequest* request,
                             v1::ListPurchasesResponse* response) override;
  grpc::Status IdentifyCustomer(
      grpc::ServerContext* context, const v1::IdentifyCustomerRequest* request,
      v1::IdentifyCustomerResponse* response) override;
  grpc::Status FindDuplicates(grpc::ServerContext* context,
                              const v1::FindDuplicatesRequest* request,
                              v1::FindDuplicatesResponse* response) override;
  grpc::Status MergeCustomers(grpc::ServerContext* context,
                              const v1::MergeCustomersRequest* request,
                              v1::MergeCustomersResponse* response) override;
  grpc::Status ImportPurchases(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportPurchasesRequest>* reader,
      v1::ImportPurchasesResponse* response) override;
  grpc::Status LogInteraction(grpc::ServerContext* context,
                              const v1::LogInteractionRequest* request,
                              v1::LogInteractionResponse* response) override;
  grpc::Status ListInteractions(
      grpc::ServerContext* context, const v1::ListInteractionsRequest* request,
      v1::ListInteractionsResponse* response) override;
  grpc::Status ImportInteractions(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportInteractionsRequest>* reader,
      v1::ImportInteractionsResponse* response) override;
  grpc::Status SetConsent(grpc::ServerContext* context,
                          const v1::SetConsentRequest* request,
                          v1::SetConsentResponse* response) override;
  grpc::Status ListConsents(grpc::ServerContext* context,
                            const v1::ListConsentsRequest* request,
                            v1::ListConsentsResponse* response) override;
  grpc::Status EraseCustomer(grpc::ServerContext* context,
                             const v1::EraseCustomerRequest* request,
                             v1::EraseCustomerResponse* response) override;
  grpc::Status RefreshScores(grpc::ServerContext* context,
                             const v1::RefreshScoresRequest* request,
                             v1::RefreshScoresResponse* response) override;
  grpc::Status GetRefreshJob(grpc::ServerContext* context,
                             const v1::GetRefreshJobRequest* request,
                             v1::GetRefreshJobResponse* response) override;
  grpc::Status GetCustomerValue(
      grpc::ServerContext* context, const v1::GetCustomerValueRequest* request,
      v1::GetCustomerValueResponse* response) override;
  grpc::Status SummarizeSegments(
      grpc::ServerContext* context, const v1::SummarizeSegmentsRequest* request,
      v1::SummarizeSegmentsResponse* response) override;
  grpc::Status ExportScores(
      grpc::ServerContext* context, const v1::ExportScoresRequest* request,
      grpc::ServerWriter<v1::ExportScoresResponse>* writer) override;
  grpc::Status ListAuditEvents(grpc::ServerContext* context,
                               const v1::ListAuditEventsRequest* request,
                               v1::ListAuditEventsResponse* response) override;

 private:
  const CallGuard* guard_;
  CustomerLogic* logic_;
  ImportLogic* imports_;
  differentiation::Differentiation* values_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_SERVICE_H_
