#include "common/base/best_of.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

namespace rapport {
namespace {

// Higher first, then by the lower tag.
using Item = std::pair<int, int>;  // (score, tag)
const auto kBetter = [](const Item& a, const Item& b) {
  if (a.first != b.first) return a.first > b.first;
  return a.second < b.second;
};

TEST(BestOf, KeepsTheBestNOfAStreamBestFirst) {
  std::mt19937 rng(7);
  std::vector<Item> all;
  for (int i = 0; i < 1000; ++i)
    all.push_back({static_cast<int>(rng() % 50), i});
  BestOf<Item, decltype(kBetter)> best(10, kBetter);
  for (const Item& item : all) best.Add(item);
  std::vector<Item> expected = all;
  std::sort(expected.begin(), expected.end(), kBetter);
  expected.resize(10);
  EXPECT_EQ(std::move(best).Take(), expected);
}

TEST(BestOf, FewerItemsThanRoomAreAllKept) {
  BestOf<Item, decltype(kBetter)> best(5, kBetter);
  best.Add({1, 0});
  best.Add({3, 1});
  EXPECT_EQ(std::move(best).Take(), (std::vector<Item>{{3, 1}, {1, 0}}));
}

TEST(BestOf, WouldKeepSaysWhetherAnItemMakesTheCut) {
  BestOf<Item, decltype(kBetter)> best(2, kBetter);
  EXPECT_TRUE(best.WouldKeep({0, 0}));
  best.Add({5, 0});
  best.Add({3, 1});
  EXPECT_FALSE(best.WouldKeep({3, 2}));  // ties with the worst, later tag
  EXPECT_TRUE(best.WouldKeep({3, 0}));
  EXPECT_TRUE(best.WouldKeep({4, 9}));
  BestOf<Item, decltype(kBetter)> none(0, kBetter);
  EXPECT_FALSE(none.WouldKeep({100, 0}));
  none.Add({100, 0});
  EXPECT_TRUE(std::move(none).Take().empty());
}

}  // namespace
}  // namespace rapport
