// rapportctl customers refresh-scores|refresh-job|value|summarize|export
// scores: the customers' differentiation values as the customer service stores
// them (the commands are counterpart_scores.h's).
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_scores.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::customer::v1;

struct CustomerScores {
  using Stub = v1::CustomerService::Stub;
  using RefreshScoresRequest = v1::RefreshScoresRequest;
  using RefreshScoresResponse = v1::RefreshScoresResponse;
  using GetRefreshJobRequest = v1::GetRefreshJobRequest;
  using GetRefreshJobResponse = v1::GetRefreshJobResponse;
  using GetValueRequest = v1::GetCustomerValueRequest;
  using GetValueResponse = v1::GetCustomerValueResponse;
  using SummarizeSegmentsRequest = v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse = v1::SummarizeSegmentsResponse;
  using ExportScoresRequest = v1::ExportScoresRequest;
  using ExportScoresResponse = v1::ExportScoresResponse;
  static constexpr const char* kCommand = "customers";
  static constexpr const char* kNoun = "customer";
  static constexpr const char* kPlural = "customers";
  static constexpr const char* kVolume = "revenue";
  static grpc::Status GetValue(Stub& stub, grpc::ClientContext* call,
                               const GetValueRequest& request,
                               GetValueResponse* response) {
    return stub.GetCustomerValue(call, request, response);
  }
};

}  // namespace

bool IsCustomerScoresCommand(const std::string& verb) {
  return IsScoresCommand(verb);
}

int RunCustomerScores(Context& ctx) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.CustomerChannel();
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  std::unique_ptr<v1::CustomerService::Stub> stub =
      v1::CustomerService::NewStub(*channel);
  return RunScores<CustomerScores>(ctx, *stub);
}

}  // namespace rapport::ctl
