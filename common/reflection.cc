#include "common/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/container/flat_hash_set.h"
#include "common/call_guard.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace rapport {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

// One version of the reflection service; `Api` is its generated namespace's
// types (v1 and v1alpha have the same messages).
template <typename Generated, typename Request, typename Response>
class Reflection final : public Generated::Service {
 public:
  Reflection(const auth::TokenVerifier* verifier, std::string full_name,
             std::vector<std::string> services)
      : guard_(verifier,
               MethodRoles(std::move(full_name),
                           {{"ServerReflectionInfo", auth::Role::kReader}})),
        services_(std::move(services)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<Response, Request>* stream) override {
    RAPPORT_AUTHORIZE(caller, guard_, *context, "ServerReflectionInfo");
    (void)caller;
    // Files already sent on this stream are not sent again.
    absl::flat_hash_set<std::string> sent;
    Request request;
    while (stream->Read(&request)) {
      Response response;
      response.set_valid_host(request.host());
      *response.mutable_original_request() = request;
      Answer(request, sent, response);
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

 private:
  void Answer(const Request& request, absl::flat_hash_set<std::string>& sent,
              Response& response) const {
    const DescriptorPool* pool = DescriptorPool::generated_pool();
    const FileDescriptor* file = nullptr;
    switch (request.message_request_case()) {
      case Request::kFileByFilename:
        file = pool->FindFileByName(request.file_by_filename());
        break;
      case Request::kFileContainingSymbol:
        file = pool->FindFileContainingSymbol(request.file_containing_symbol());
        break;
      case Request::kFileContainingExtension: {
        const auto* type = pool->FindMessageTypeByName(
            request.file_containing_extension().containing_type());
        const auto* extension =
            type == nullptr
                ? nullptr
                : pool->FindExtensionByNumber(
                      type,
                      request.file_containing_extension().extension_number());
        if (extension != nullptr) file = extension->file();
        break;
      }
      case Request::kAllExtensionNumbersOfType: {
        const auto* type = pool->FindMessageTypeByName(
            request.all_extension_numbers_of_type());
        if (type == nullptr) break;
        std::vector<const google::protobuf::FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        auto* out = response.mutable_all_extension_numbers_response();
        out->set_base_type_name(type->full_name());
        for (const auto* e : extensions) out->add_extension_number(e->number());
        return;
      }
      case Request::kListServices: {
        auto* out = response.mutable_list_services_response();
        for (const std::string& name : services_)
          out->add_service()->set_name(name);
        return;
      }
      default:
        break;
    }
    if (file == nullptr) {
      response.mutable_error_response()->set_error_code(
          request.message_request_case() == Request::MESSAGE_REQUEST_NOT_SET
              ? grpc::StatusCode::INVALID_ARGUMENT
              : grpc::StatusCode::NOT_FOUND);
      response.mutable_error_response()->set_error_message(
          request.message_request_case() == Request::MESSAGE_REQUEST_NOT_SET
              ? "message_request: is required"
              : "not found");
      return;
    }
    auto* out = response.mutable_file_descriptor_response();
    AddWithDependencies(file, sent, out);
  }

  // The file, then those of its dependencies (transitively) not sent yet.
  template <typename Out>
  static void AddWithDependencies(const FileDescriptor* file,
                                  absl::flat_hash_set<std::string>& sent,
                                  Out* out) {
    std::vector<const FileDescriptor*> todo = {file};
    bool first = true;
    while (!todo.empty()) {
      const FileDescriptor* f = todo.back();
      todo.pop_back();
      if (!first && sent.contains(f->name())) continue;
      first = false;
      sent.insert(f->name());
      google::protobuf::FileDescriptorProto proto;
      f->CopyTo(&proto);
      out->add_file_descriptor_proto(proto.SerializeAsString());
      for (int i = 0; i < f->dependency_count(); ++i)
        todo.push_back(f->dependency(i));
    }
  }

  CallGuard guard_;
  std::vector<std::string> services_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> NewReflectionServices(
    const auth::TokenVerifier* verifier, std::vector<std::string> services) {
  services.push_back(kReflectionV1);
  services.push_back(kReflectionV1Alpha);
  std::vector<std::unique_ptr<grpc::Service>> out;
  namespace v1 = ::grpc::reflection::v1;
  namespace v1alpha = ::grpc::reflection::v1alpha;
  out.push_back(std::make_unique<
                Reflection<v1::ServerReflection, v1::ServerReflectionRequest,
                           v1::ServerReflectionResponse>>(
      verifier, kReflectionV1, services));
  out.push_back(std::make_unique<Reflection<v1alpha::ServerReflection,
                                            v1alpha::ServerReflectionRequest,
                                            v1alpha::ServerReflectionResponse>>(
      verifier, kReflectionV1Alpha, services));
  return out;
}

}  // namespace rapport
