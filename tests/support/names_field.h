// Whether a status refuses a request for one field: NamesField(s,
// "member.kind") holds when `s` is INVALID_ARGUMENT with a field violation of
// exactly that name, whose description does not name it again (the client
// reads "<field>: <description>"); otherwise its message says what it was
// instead.
//
//   EXPECT_TRUE(NamesField(logic.CreateMember(r, "u").status(),
//   "member.kind"));
#ifndef RAPPORT_TESTS_SUPPORT_NAMES_FIELD_H_
#define RAPPORT_TESTS_SUPPORT_NAMES_FIELD_H_

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace rapport::testing {

inline ::testing::AssertionResult NamesField(const absl::Status& s,
                                             const std::string& field) {
  if (!absl::IsInvalidArgument(s)) {
    return ::testing::AssertionFailure()
           << "wanted INVALID_ARGUMENT naming " << field << ", got " << s;
  }
  std::string named;
  for (const FieldViolation& v : FieldViolations(s)) {
    if (v.field == field) {
      if (absl::StartsWith(v.description, field + ":")) {
        return ::testing::AssertionFailure()
               << "the violation of " << field
               << " names it again: " << v.description;
      }
      return ::testing::AssertionSuccess();
    }
    absl::StrAppend(&named, named.empty() ? "" : ", ", v.field);
  }
  return ::testing::AssertionFailure() << "wanted a violation of " << field
                                       << ", got [" << named << "]: " << s;
}

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_NAMES_FIELD_H_
