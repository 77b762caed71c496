// AsyncBatcher: every item's function gets that item's result on a worker
// thread; a second batch waits for busy_batch items while one runs; the
// destructor runs what is queued.
#include "common/base/async_batcher.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace rapport {
namespace {

std::vector<std::string> Describe(const std::vector<int>& items) {
  std::vector<std::string> out;
  for (int i : items) out.push_back(absl::StrCat("item ", i));
  return out;
}

TEST(AsyncBatcherTest, EachItemsFunctionGetsItsOwnResultOnAWorker) {
  absl::Mutex mu;
  std::vector<std::string> got(200);
  std::vector<std::thread::id> threads(200);
  absl::Notification all_done;
  int done = 0;
  {
    AsyncBatcher<int, std::string> batcher({.workers = 2, .max_batch = 16},
                                           Describe);
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
      callers.emplace_back([&, t] {
        for (int i = t * 50; i < (t + 1) * 50; ++i) {
          batcher.Submit(i, [&, i](std::string r) {
            absl::MutexLock lock(&mu);
            got[i] = std::move(r);
            threads[i] = std::this_thread::get_id();
            if (++done == 200) all_done.Notify();
          });
        }
      });
    }
    for (std::thread& t : callers) t.join();
    all_done.WaitForNotification();
  }
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(got[i], absl::StrCat("item ", i));
    EXPECT_NE(threads[i], std::this_thread::get_id());
  }
}

// One batch is held running; the items that arrive meanwhile start the
// second batch together once busy_batch (3) of them wait, not one by one.
TEST(AsyncBatcherTest, ASecondBatchWaitsForBusyBatchItems) {
  absl::Notification first_started, release, second_ran;
  absl::Mutex mu;
  std::vector<std::vector<int>> batches;
  std::string first;  // outlives the batcher, whose worker writes it
  AsyncBatcher<int, std::string> batcher(
      {.workers = 2, .max_batch = 10, .busy_batch = 3},
      [&](const std::vector<int>& items) {
        {
          absl::MutexLock lock(&mu);
          batches.push_back(items);
        }
        if (items.front() == 1) {
          first_started.Notify();
          release.WaitForNotification();
        } else {
          second_ran.Notify();
        }
        return Describe(items);
      });
  batcher.Submit(1, [&](std::string r) { first = std::move(r); });
  first_started.WaitForNotification();
  batcher.Submit(2, [](std::string) {});
  batcher.Submit(3, [](std::string) {});
  batcher.Submit(4, [](std::string) {});
  second_ran.WaitForNotification();
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(batches, (std::vector<std::vector<int>>{{1}, {2, 3, 4}}));
  }
  release.Notify();
}

TEST(AsyncBatcherTest, TheDestructorRunsWhatIsStillQueued) {
  absl::Notification first_started, release;
  std::vector<std::string> got;
  {
    AsyncBatcher<int, std::string> batcher({.workers = 1, .max_batch = 2},
                                           [&](const std::vector<int>& items) {
                                             if (items.front() == 1) {
                                               first_started.Notify();
                                               release.WaitForNotification();
                                             }
                                             return Describe(items);
                                           });
    batcher.Submit(1, [&](std::string r) { got.push_back(std::move(r)); });
    first_started.WaitForNotification();
    for (int i = 2; i <= 5; ++i)
      batcher.Submit(i, [&](std::string r) { got.push_back(std::move(r)); });
    release.Notify();
  }
  EXPECT_EQ(got, (std::vector<std::string>{"item 1", "item 2", "item 3",
                                           "item 4", "item 5"}));
}

// A full queue refuses an item at once with `overloaded()` instead of
// growing: with one batch held running and max_queue (2) items waiting, the
// next gets the overloaded answer on the caller's thread; the queued ones run.
TEST(AsyncBatcherTest, AFullQueueAnswersOverloadedAtOnce) {
  absl::Notification first_started, release;
  absl::Mutex mu;
  std::vector<std::string> got;
  std::string refused;
  std::thread::id refused_on;
  {
    AsyncBatcher<int, std::string> batcher(
        {.workers = 1, .max_batch = 1, .max_queue = 2},
        [&](const std::vector<int>& items) {
          if (items.front() == 1) {
            first_started.Notify();
            release.WaitForNotification();
          }
          return Describe(items);
        },
        [] { return std::string("overloaded"); });
    auto keep = [&](std::string r) {
      absl::MutexLock lock(&mu);
      got.push_back(std::move(r));
    };
    batcher.Submit(1, keep);
    first_started.WaitForNotification();
    batcher.Submit(2, keep);
    batcher.Submit(3, keep);
    batcher.Submit(4, [&](std::string r) {
      refused = std::move(r);
      refused_on = std::this_thread::get_id();
    });
    EXPECT_EQ(refused, "overloaded");
    EXPECT_EQ(refused_on, std::this_thread::get_id());
    release.Notify();
  }
  EXPECT_EQ(got, (std::vector<std::string>{"item 1", "item 2", "item 3"}));
}

}  // namespace
}  // namespace rapport
