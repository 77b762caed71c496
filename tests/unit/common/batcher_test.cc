// Batcher: results reach the caller whose item produced them; items that
// arrive while a batch runs go together into the next; limits hold.
#include "common/base/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace rapport {
namespace {

TEST(BatcherTest, AnIdleCallerRunsItsItemAloneOnItsOwnThread) {
  std::vector<std::vector<int>> batches;
  std::thread::id ran_on;
  Batcher<int, std::string> batcher({}, [&](const std::vector<int>& items) {
    batches.push_back(items);
    ran_on = std::this_thread::get_id();
    std::vector<std::string> out;
    for (int i : items) out.push_back(absl::StrCat("item ", i));
    return out;
  });
  EXPECT_EQ(batcher.Submit(7), "item 7");
  EXPECT_EQ(batcher.Submit(8), "item 8");
  EXPECT_EQ(batches, (std::vector<std::vector<int>>{{7}, {8}}));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

// While one batch is held running, 20 callers arrive: with room for 8 per
// batch they form batches of 8, 8 and 4, each caller gets its own result.
TEST(BatcherTest, ItemsArrivingDuringABatchFormTheNextBatchesUpToTheLimit) {
  absl::Notification first_started, release;
  absl::Mutex mu;
  std::vector<size_t> sizes;
  std::atomic<int> running{0}, most_running{0};
  Batcher<int, int> batcher({.max_running = 1, .max_batch = 8},
                            [&](const std::vector<int>& items) {
                              const int now = ++running;
                              most_running = std::max(most_running.load(), now);
                              {
                                absl::MutexLock l(&mu);
                                sizes.push_back(items.size());
                              }
                              if (!first_started.HasBeenNotified()) {
                                first_started.Notify();
                                release.WaitForNotification();
                              }
                              std::vector<int> out;
                              for (int i : items) out.push_back(i * 10);
                              --running;
                              return out;
                            });
  std::thread first([&] { EXPECT_EQ(batcher.Submit(-1), -10); });
  first_started.WaitForNotification();
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 20; ++i) {
    callers.emplace_back([&, i] {
      if (batcher.Submit(i) != i * 10) ++wrong;
    });
  }
  while (batcher.waiting_items() < 20) {  // all 20 queued behind the first
    absl::SleepFor(absl::Milliseconds(1));
  }
  release.Notify();
  first.join();
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(most_running, 1);
  absl::MutexLock l(&mu);
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 8, 8, 4}));
}

TEST(BatcherTest, UpToMaxRunningBatchesRunAtOnce) {
  std::atomic<int> running{0}, most_running{0};
  // The first batch holds its slot until a second runs beside it (or gives
  // up after 10 s, and the test fails).
  absl::Notification two_at_once;
  std::atomic<bool> notified{false};
  Batcher<int, int> batcher(
      {.max_running = 3, .max_batch = 2}, [&](const std::vector<int>& items) {
        const int now = ++running;
        int seen = most_running.load();
        while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
        }
        if (now >= 2 && !notified.exchange(true)) two_at_once.Notify();
        two_at_once.WaitForNotificationWithTimeout(absl::Seconds(10));
        --running;
        return std::vector<int>(items.begin(), items.end());
      });
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 24; ++i) {
    callers.emplace_back([&, i] {
      if (batcher.Submit(i) != i) ++wrong;
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_TRUE(two_at_once.HasBeenNotified());
  EXPECT_GE(most_running, 2);
  EXPECT_LE(most_running, 3);
}

}  // namespace
}  // namespace rapport
