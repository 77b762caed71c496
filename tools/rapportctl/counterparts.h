// The three counterpart services as commands that read all of them
// (overview, report, demo) see them: each one's stub and messages, its names
// and where it listens. Their differentiation messages have the same shape
// (common/differentiation/rpcs.h), so one template serves the three:
//
//   template <typename Api> void Show(const Context& ctx) {
//     auto stub = Api::Service::NewStub(*ctx.ServiceChannel(
//         Api::kAddrFlag, Api::kAddrEnv, Api::kAddrDefault));
//     typename Api::SummarizeSegmentsResponse summary; ...
//   }
#ifndef RAPPORT_TOOLS_RAPPORTCTL_COUNTERPARTS_H_
#define RAPPORT_TOOLS_RAPPORTCTL_COUNTERPARTS_H_

#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"

namespace rapport::ctl {

struct CustomersApi {
  using Service = ::rapport::customer::v1::CustomerService;
  using SummarizeSegmentsRequest =
      ::rapport::customer::v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse =
      ::rapport::customer::v1::SummarizeSegmentsResponse;
  using ExportScoresRequest = ::rapport::customer::v1::ExportScoresRequest;
  using ExportScoresResponse = ::rapport::customer::v1::ExportScoresResponse;
  using GetRefreshJobRequest = ::rapport::customer::v1::GetRefreshJobRequest;
  using GetRefreshJobResponse = ::rapport::customer::v1::GetRefreshJobResponse;
  static constexpr const char* kKey = "customers";
  static constexpr const char* kTitle = "Customers";
  static constexpr const char* kService = "customer";
  static constexpr const char* kAddrFlag = "customer-addr";
  static constexpr const char* kAddrEnv = "RAPPORT_CUSTOMER_ADDR";
  static constexpr const char* kAddrDefault = "localhost:50051";
};

struct PartnersApi {
  using Service = ::rapport::partner::v1::PartnerService;
  using SummarizeSegmentsRequest =
      ::rapport::partner::v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse =
      ::rapport::partner::v1::SummarizeSegmentsResponse;
  using ExportScoresRequest = ::rapport::partner::v1::ExportScoresRequest;
  using ExportScoresResponse = ::rapport::partner::v1::ExportScoresResponse;
  using GetRefreshJobRequest = ::rapport::partner::v1::GetRefreshJobRequest;
  using GetRefreshJobResponse = ::rapport::partner::v1::GetRefreshJobResponse;
  static constexpr const char* kKey = "partners";
  static constexpr const char* kTitle = "Partners";
  static constexpr const char* kService = "partner";
  static constexpr const char* kAddrFlag = "partner-addr";
  static constexpr const char* kAddrEnv = "RAPPORT_PARTNER_ADDR";
  static constexpr const char* kAddrDefault = "localhost:50052";
};

struct CommunityApi {
  using Service = ::rapport::financial_community::v1::FinancialCommunityService;
  using SummarizeSegmentsRequest =
      ::rapport::financial_community::v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse =
      ::rapport::financial_community::v1::SummarizeSegmentsResponse;
  using ExportScoresRequest =
      ::rapport::financial_community::v1::ExportScoresRequest;
  using ExportScoresResponse =
      ::rapport::financial_community::v1::ExportScoresResponse;
  using GetRefreshJobRequest =
      ::rapport::financial_community::v1::GetRefreshJobRequest;
  using GetRefreshJobResponse =
      ::rapport::financial_community::v1::GetRefreshJobResponse;
  static constexpr const char* kKey = "community";
  static constexpr const char* kTitle = "Financial community";
  static constexpr const char* kService = "financial-community";
  static constexpr const char* kAddrFlag = "community-addr";
  static constexpr const char* kAddrEnv = "RAPPORT_COMMUNITY_ADDR";
  static constexpr const char* kAddrDefault = "localhost:50053";
};

// Flags that select the three services' addresses.
inline const char* const kCounterpartAddrFlags[] = {
    CustomersApi::kAddrFlag, PartnersApi::kAddrFlag, CommunityApi::kAddrFlag};

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_COUNTERPARTS_H_
