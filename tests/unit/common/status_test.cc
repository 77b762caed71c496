#include "common/status.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace rapport {
namespace {

TEST(Status, InvalidFieldNamesTheFieldInMessageAndPayload) {
  absl::Status s = InvalidField("purchase.amount", "must be a decimal number");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "purchase.amount: must be a decimal number");
  std::vector<FieldViolation> v = FieldViolations(s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "purchase.amount");
  EXPECT_EQ(v[0].description, "must be a decimal number");
}

// However many fields a request got wrong, the answer names the first 20
// and says how many more: it stays within a client's metadata limit.
TEST(Status, ManyViolationsAreCutAfterTwentyCountingTheRest) {
  std::vector<FieldViolation> many;
  for (int i = 0; i < 500; ++i)
    many.push_back({absl::StrCat("rows[", i, "].amount"), "is required"});
  const absl::Status s = InvalidFields(many);
  const std::vector<FieldViolation> got = FieldViolations(s);
  ASSERT_EQ(got.size(), 21u);
  EXPECT_EQ(got[19].field, "rows[19].amount");
  EXPECT_EQ(got[20].field, "request");
  EXPECT_EQ(got[20].description, "and 480 more fields are wrong");
  EXPECT_LT(ToGrpcStatus(s).error_details().size() + s.message().size(), 4096u);
  many.resize(20);
  EXPECT_EQ(FieldViolations(InvalidFields(many)).size(), 20u);
}

TEST(Status, ToGrpcStatusCarriesBadRequestDetailsAnyClientCanRead) {
  grpc::Status g =
      ToGrpcStatus(InvalidFields({{"a", "is required"}, {"b", "is too long"}}));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  EXPECT_EQ(details.code(), 3);
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 2);
  EXPECT_EQ(bad_request.field_violations(1).field(), "b");
}

TEST(Status, RoundTripKeepsCodeMessageAndViolations) {
  absl::Status original = InvalidFields({{"x", "bad"}, {"y", "worse"}});
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), original.code());
  EXPECT_EQ(back.message(), original.message());
  ASSERT_EQ(FieldViolations(back).size(), 2u);
  EXPECT_EQ(FieldViolations(back)[1].field, "y");
}

TEST(Status, PlainErrorsConvertCodeAndMessageOnly) {
  for (absl::Status s :
       {absl::NotFoundError("no such customer"), absl::AbortedError("etag"),
        absl::AlreadyExistsError("dup")}) {
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(s.code()));
    EXPECT_EQ(g.error_message(), s.message());
    EXPECT_TRUE(g.error_details().empty());
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

// Internal failures reach clients with an error id only; where they came
// from (Prefixed) stays, their detail goes to the log.
TEST(Status, InternalDetailNeverReachesTheClient) {
  for (absl::Status s :
       {absl::InternalError("database error 1146 (SQLSTATE 42S02): Table "
                            "'rapport.secret' doesn't exist"),
        absl::UnavailableError("cannot connect to mysql://u@db.internal:3306"),
        absl::DataLossError("bytes 0x1f"), absl::UnknownError("boom"),
        MarkInternal(absl::AlreadyExistsError(
            "database error 1062 (SQLSTATE 23000): Duplicate entry 'x'")),
        MarkInternal(absl::AbortedError("database error 1213"))}) {
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(s.code()));
    EXPECT_EQ(g.error_message().find("database"), std::string::npos)
        << g.error_message();
    EXPECT_EQ(g.error_message().find("SQLSTATE"), std::string::npos);
    EXPECT_EQ(g.error_message().find("db.internal"), std::string::npos);
    EXPECT_NE(g.error_message().find("(error id "), std::string::npos)
        << g.error_message();
  }
  // Two failures, two ids.
  EXPECT_NE(ToGrpcStatus(absl::InternalError("a")).error_message(),
            ToGrpcStatus(absl::InternalError("a")).error_message());
  absl::Status from_scoring =
      Prefixed(absl::UnavailableError("ipv4:10.0.0.7:50054: refused"),
               "scoring service");
  grpc::Status shown = ToGrpcStatus(from_scoring);
  EXPECT_EQ(shown.error_message().rfind(
                "scoring service: temporarily unavailable; retry later", 0),
            0u)
      << shown.error_message();
  EXPECT_EQ(shown.error_message().find("10.0.0.7"), std::string::npos);
}

}  // namespace
}  // namespace rapport
