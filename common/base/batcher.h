// Batcher: many threads each hand over one item and wait for its result;
// items that arrive while batches are running are gathered into the next one,
// so a busy service pays one round trip per batch instead of one per item
// (group commit). An idle caller waits for nobody: its item runs at once, in
// a batch of one, on the caller's own thread.
//
//   Batcher<std::string, absl::Status> rescore(
//       {.max_running = 2, .max_batch = 500},
//       [&](const std::vector<std::string>& ids) { return RescoreAll(ids); });
//   absl::Status s = rescore.Submit(customer_id);  // from any thread
//
// The run function gets the items in arrival order and returns one result per
// item, in the same order. It runs on the thread of one of the callers whose
// items it carries, never under the batcher's lock.
#ifndef RAPPORT_COMMON_BASE_BATCHER_H_
#define RAPPORT_COMMON_BASE_BATCHER_H_

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rapport {

struct BatcherOptions {
  // Batches that may run at once; more callers wait for a free slot.
  int max_running = 1;
  // Items per batch; the rest go into the following batch.
  size_t max_batch = 1000;
};

template <typename Item, typename Result>
class Batcher {
 public:
  using Run = std::function<std::vector<Result>(const std::vector<Item>&)>;

  Batcher(BatcherOptions options, Run run)
      : options_(options), run_(std::move(run)) {}

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Items in batches that have not started yet.
  size_t waiting_items() {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (const std::shared_ptr<Batch>& b : waiting_) n += b->items.size();
    return n;
  }

  Result Submit(Item item) {
    absl::MutexLock lock(&mu_);
    if (open_ == nullptr || open_->items.size() >= options_.max_batch)
      open_ = Enqueue();
    std::shared_ptr<Batch> mine = open_;
    const size_t index = mine->items.size();
    mine->items.push_back(std::move(item));
    for (;;) {
      if (mine->done) return std::move(mine->results[index]);
      // The oldest batch waiting is started by one of its own callers as
      // soon as a slot is free.
      if (!mine->started && waiting_.front() == mine &&
          running_ < options_.max_running) {
        Start(mine);
        continue;
      }
      // Only this batch's callers wake when it is done or may start.
      mine->changed.Wait(&mu_);
    }
  }

 private:
  struct Batch {
    std::vector<Item> items;
    std::vector<Result> results;
    bool started = false;
    bool done = false;
    absl::CondVar changed;
  };

  std::shared_ptr<Batch> Enqueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto batch = std::make_shared<Batch>();
    waiting_.push_back(batch);
    return batch;
  }

  // Runs `batch` outside the lock, then wakes its callers.
  void Start(const std::shared_ptr<Batch>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    batch->started = true;
    waiting_.erase(waiting_.begin());
    if (open_ == batch) open_ = nullptr;  // later items go to a new batch
    ++running_;
    WakeNext();
    mu_.Unlock();
    std::vector<Result> results = run_(batch->items);
    mu_.Lock();
    results.resize(batch->items.size());
    batch->results = std::move(results);
    batch->done = true;
    --running_;
    batch->changed.SignalAll();
    WakeNext();
  }

  // With a slot free, one caller of the oldest waiting batch starts it.
  void WakeNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!waiting_.empty() && running_ < options_.max_running)
      waiting_.front()->changed.Signal();
  }

  const BatcherOptions options_;
  const Run run_;
  absl::Mutex mu_;
  // Batches not yet started, oldest first; `open_` (if any) is the last one
  // and still takes items.
  std::vector<std::shared_ptr<Batch>> waiting_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Batch> open_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_BATCHER_H_
