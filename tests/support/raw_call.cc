#include "tests/support/raw_call.h"

#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <memory>

#include "common/channel.h"

namespace rapport::testing {

grpc::Status CallRaw(const std::string& address, const std::string& method,
                     const std::string& authorization,
                     const std::string& message) {
  std::shared_ptr<grpc::Channel> channel = *MakeChannel(address, {});
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!authorization.empty())
    context.AddMetadata("authorization", authorization);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice bytes(message);
  grpc::ByteBuffer buffer(&bytes, 1);
  call->Write(buffer, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  call->WritesDone(reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer answer;  // read whatever comes back, then the status
  do {
    call->Read(&answer, reinterpret_cast<void*>(5));
    cq.Next(&tag, &ok);
  } while (ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok)) {
    if (tag == reinterpret_cast<void*>(4)) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace rapport::testing
