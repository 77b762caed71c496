// How many streaming calls (imports, exports, population scoring) a server
// runs at once. Each holds one of the server's threads for as long as its
// client keeps it open (up to --max_stream_time), so without a bound one
// caller opening streams and sending nothing takes every thread, and every
// other caller's calls are refused. StreamLimits keeps a share of the threads
// for short calls (`total`) and a share of the streams for other callers
// (`per_caller`); a stream past either is refused with RESOURCE_EXHAUSTED at
// once, saying which bound it met.
//
//   StreamLimits limits(48, 16);
//   if (absl::Status s = limits.Enter("alice"); !s.ok()) return s;
//   ... the stream runs ...
//   limits.Leave("alice");
#ifndef RAPPORT_COMMON_STREAM_LIMITS_H_
#define RAPPORT_COMMON_STREAM_LIMITS_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace rapport {

class StreamLimits {
 public:
  // At most `total` streams at once, at most `per_caller` of one caller.
  StreamLimits(int total, int per_caller)
      : total_(total), per_caller_(per_caller) {}

  // Counts a stream of `caller` (a token's subject), or refuses it.
  absl::Status Enter(const std::string& caller);
  // Ends a stream Enter counted.
  void Leave(const std::string& caller);

  int running() const;

 private:
  const int total_;
  const int per_caller_;
  mutable absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> by_caller_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rapport

#endif  // RAPPORT_COMMON_STREAM_LIMITS_H_
