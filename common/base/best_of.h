// BestOf: the best `n` items of a stream, without keeping the rest. For
// rankings over a whole population where only the top of the list is
// answered (targets, holders at risk, a page of changes).
//
//   auto better = [](const Entry& a, const Entry& b) { return a.score >
//   b.score; }; BestOf<Entry, decltype(better)> best(100, better); for (...) if
//   (best.WouldKeep(candidate)) best.Add(std::move(candidate));
//   std::vector<Entry> top = std::move(best).Take();  // best first
//
// `better(a, b)` is a strict weak order: true when a ranks before b. Items
// that rank alike are kept in no particular order, so give `better` a tie
// break. Adding is O(log n); memory is n items.
#ifndef RAPPORT_COMMON_BASE_BEST_OF_H_
#define RAPPORT_COMMON_BASE_BEST_OF_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace rapport {

template <typename T, typename Better>
class BestOf {
 public:
  BestOf(size_t n, Better better) : n_(n), better_(std::move(better)) {}

  // Whether Add(item) would keep it: there is room, or it ranks before the
  // worst kept item. Lets a caller skip building an item that would go.
  bool WouldKeep(const T& item) const {
    return n_ > 0 && (kept_.size() < n_ || better_(item, kept_.front()));
  }

  void Add(T item) {
    if (!WouldKeep(item)) return;
    if (kept_.size() == n_) {
      std::pop_heap(kept_.begin(), kept_.end(), better_);
      kept_.pop_back();
    }
    kept_.push_back(std::move(item));
    // A heap under `better`: its front is the worst kept item.
    std::push_heap(kept_.begin(), kept_.end(), better_);
  }

  // The kept items, best first.
  std::vector<T> Take() && {
    std::sort(kept_.begin(), kept_.end(), better_);
    return std::move(kept_);
  }

 private:
  size_t n_;
  Better better_;
  std::vector<T> kept_;
};

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_BEST_OF_H_
