// The reference caches of the imports running in one process share a budget
// of entries: each running import keeps at most its share, so that what they
// hold together stays bounded however many streams callers open (each stream
// is an import of its own).
//
//   CacheShare share(kBudget);  // for as long as the import runs
//   if (cache.size() > share.limit()) cache.clear();
#ifndef RAPPORT_COMMON_IMPORT_CACHE_SHARE_H_
#define RAPPORT_COMMON_IMPORT_CACHE_SHARE_H_

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace rapport::imports {

class CacheShare {
 public:
  explicit CacheShare(size_t budget) : budget_(budget) {
    running_.fetch_add(1);
  }
  ~CacheShare() { running_.fetch_sub(1); }
  CacheShare(const CacheShare&) = delete;
  CacheShare& operator=(const CacheShare&) = delete;

  // The budget over the imports running now (this one among them).
  size_t limit() const {
    return budget_ / static_cast<size_t>(std::max(1, running_.load()));
  }

 private:
  static inline std::atomic<int> running_{0};
  const size_t budget_;
};

}  // namespace rapport::imports

#endif  // RAPPORT_COMMON_IMPORT_CACHE_SHARE_H_
