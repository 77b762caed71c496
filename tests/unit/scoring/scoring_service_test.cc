// The scoring service's table of who may call what names every RPC.
#include "services/scoring/scoring_service.h"

#include <gtest/gtest.h>

namespace rapport::scoring {
namespace {

TEST(ScoringMethodRoles, NamesEveryRpcOfTheServiceEachOpenToReaders) {
  absl::Status check = ScoringMethodRoles().Check();
  EXPECT_TRUE(check.ok()) << check;
  EXPECT_EQ(ScoringMethodRoles().Of("ScorePopulation"), auth::Role::kReader);
  EXPECT_EQ(ScoringMethodRoles().Of("PredictClv"), auth::Role::kReader);
}

}  // namespace
}  // namespace rapport::scoring
