// AsyncBatcher: like Batcher, items that arrive together run as one batch,
// but callers do not wait. Each hands over an item with the function to call
// with its result and returns at once; a fixed set of worker threads takes
// whatever is waiting (up to max_batch items, oldest first), runs it, and
// calls each item's function on the worker thread. This suits gRPC's callback
// API: a handler queues its request and returns, and the worker finishes the
// call, so no thread sits blocked per call in flight.
//
//   AsyncBatcher<std::string, absl::StatusOr<Customer>> reads(
//       {.workers = 2, .max_batch = 64, .busy_batch = 16},
//       [&](const std::vector<std::string>& ids) { return ReadAll(ids); });
//   reads.Submit(id, [reactor](absl::StatusOr<Customer> c) { ... });
//
// While one worker runs a batch, another starts only once `busy_batch` items
// wait: small batches run side by side cost more per item than they save in
// waiting (each is a round trip to the database for a few items).
//
// The queue is bounded: an item that finds `max_queue` items waiting is not
// queued, and its function gets `overloaded()` at once (a RESOURCE_EXHAUSTED
// status, say), so that a burst is refused instead of growing memory and
// latency without limit.
//
// The destructor runs what is still queued, then joins the workers.
#ifndef RAPPORT_COMMON_BASE_ASYNC_BATCHER_H_
#define RAPPORT_COMMON_BASE_ASYNC_BATCHER_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace rapport {

struct AsyncBatcherOptions {
  int workers = 1;
  size_t max_batch = 1000;
  // Items that must wait before a second batch starts beside a running one.
  size_t busy_batch = 1;
  // Most items waiting; 0: no bound.
  size_t max_queue = 0;
};

template <typename Item, typename Result>
class AsyncBatcher {
 public:
  using Run = std::function<std::vector<Result>(const std::vector<Item>&)>;
  using Done = absl::AnyInvocable<void(Result) &&>;
  using Overloaded = std::function<Result()>;

  AsyncBatcher(AsyncBatcherOptions options, Run run,
               Overloaded overloaded = nullptr)
      : options_(options),
        run_(std::move(run)),
        overloaded_(std::move(overloaded)) {
    for (int i = 0; i < std::max(1, options_.workers); ++i)
      workers_.emplace_back([this] { Work(); });
  }

  AsyncBatcher(const AsyncBatcher&) = delete;
  AsyncBatcher& operator=(const AsyncBatcher&) = delete;

  ~AsyncBatcher() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : workers_) t.join();
  }

  void Submit(Item item, Done done) {
    {
      absl::MutexLock lock(&mu_);
      if (options_.max_queue == 0 || queue_.size() < options_.max_queue ||
          overloaded_ == nullptr) {
        queue_.push_back({std::move(item), std::move(done)});
        return;
      }
    }
    std::move(done)(overloaded_());
  }

 private:
  struct Pending {
    Item item;
    Done done;
  };

  bool MayStart() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return stopping_;
    return running_ == 0 || stopping_ ||
           queue_.size() >= std::max<size_t>(1, options_.busy_batch);
  }

  void Work() {
    std::vector<Item> items;
    std::vector<Done> dones;
    for (;;) {
      {
        absl::MutexLock lock(&mu_,
                             absl::Condition(this, &AsyncBatcher::MayStart));
        if (queue_.empty()) return;  // stopping, and nothing left to run
        ++running_;
        const size_t n =
            std::min(queue_.size(), std::max<size_t>(1, options_.max_batch));
        for (size_t i = 0; i < n; ++i) {
          items.push_back(std::move(queue_.front().item));
          dones.push_back(std::move(queue_.front().done));
          queue_.pop_front();
        }
      }
      std::vector<Result> results = run_(items);
      results.resize(items.size());
      for (size_t i = 0; i < dones.size(); ++i)
        std::move(dones[i])(std::move(results[i]));
      items.clear();
      dones.clear();
      absl::MutexLock lock(&mu_);
      --running_;
    }
  }

  const AsyncBatcherOptions options_;
  const Run run_;
  const Overloaded overloaded_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_ASYNC_BATCHER_H_
