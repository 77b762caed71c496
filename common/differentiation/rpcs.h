// The differentiation RPCs every counterpart service serves (RefreshScores,
// GetRefreshJob, Get<Entity>Value, SummarizeSegments, ExportScores), written
// once for any service's request and response messages: each service's
// messages have the same fields, so its adapter's methods are one line each.
//
//   grpc::Status PartnerServiceImpl::RefreshScores(
//       grpc::ServerContext* context, const v1::RefreshScoresRequest* request,
//       v1::RefreshScoresResponse* response) {
//     RAPPORT_AUTHORIZE(caller, *guard_, *context, "RefreshScores");
//     return rpcs::RefreshScores(*values_, *request, caller.subject, response);
//   }
#ifndef RAPPORT_COMMON_DIFFERENTIATION_RPCS_H_
#define RAPPORT_COMMON_DIFFERENTIATION_RPCS_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "common/differentiation/differentiation.h"
#include "common/reply.h"
#include "common/requests.h"
#include "common/status.h"

namespace rapport::differentiation::rpcs {

// The settings of a RefreshScoresRequest (as_of, window_days, bins, with_clv).
template <typename Request>
cv1::RefreshSettings SettingsOf(const Request& request) {
  cv1::RefreshSettings settings;
  if (request.has_as_of()) *settings.mutable_as_of() = request.as_of();
  settings.set_window_days(request.window_days());
  settings.set_bins(request.bins());
  settings.set_with_clv(request.with_clv());
  return settings;
}

template <typename Request, typename Response>
grpc::Status RefreshScores(Differentiation& values, const Request& request,
                           const std::string& actor, Response* response) {
  return Reply(
      values.StartRefresh(SettingsOf(request), actor, request.request_id()),
      [&](cv1::RefreshJob job) { *response->mutable_job() = std::move(job); });
}

template <typename Response>
grpc::Status GetRefreshJob(Differentiation& values, const std::string& id,
                           Response* response) {
  return Reply(values.GetRefreshJob(id), [&](cv1::RefreshJob job) {
    *response->mutable_job() = std::move(job);
  });
}

template <typename Response>
grpc::Status GetValue(Differentiation& values, const std::string& id,
                      Response* response) {
  // Every service's entity ids are ids of common/ids.h (the kit itself takes
  // any).
  if (absl::Status s = CheckId(id, "id"); !s.ok()) return ToGrpcStatus(s);
  return Reply(values.GetValue(id), [&](cv1::EntityValue value) {
    *response->mutable_value() = std::move(value);
  });
}

template <typename Response>
grpc::Status SummarizeSegments(Differentiation& values, Response* response) {
  return Reply(values.Summarize(), [&](Differentiation::Summary s) {
    for (cv1::GroupSummary& g : s.segments)
      *response->add_segments() = std::move(g);
    for (cv1::GroupSummary& g : s.tiers) *response->add_tiers() = std::move(g);
    *response->mutable_total() = std::move(s.total);
    response->set_entities(s.entities);
    response->set_model_id(std::move(s.model_id));
  });
}

template <typename Response>
grpc::Status ExportScores(Differentiation& values,
                          const std::string& external_id_source,
                          grpc::ServerContext* context,
                          grpc::ServerWriterInterface<Response>* writer) {
  return ToGrpcStatus(values.Export(
      external_id_source,
      [&](google::protobuf::RepeatedPtrField<cv1::EntityValue>& batch) {
        Response response;
        response.mutable_values()->Swap(&batch);
        return !context->IsCancelled() && writer->Write(response);
      }));
}

}  // namespace rapport::differentiation::rpcs

#endif  // RAPPORT_COMMON_DIFFERENTIATION_RPCS_H_
