// Server-assigned ids: 26 characters of Crockford base32 (lower case), a
// millisecond timestamp followed by 80 random bits, so new ids sort after old
// ones (good for B-tree locality and for paging by id) and never collide in
// practice across replicas.
//
//   rapport::IdGenerator ids;            // real clock and randomness
//   std::string id = ids.Next();         // "01jd8x4r2c6n7m9p0q1r2s3t4v"
//
// Tests inject the clock and the random source to get fixed ids.
#ifndef RAPPORT_COMMON_IDS_H_
#define RAPPORT_COMMON_IDS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rapport {

class IdGenerator {
 public:
  using Clock = std::function<absl::Time()>;
  using Random = std::function<uint64_t()>;

  IdGenerator();
  IdGenerator(Clock clock, Random random);

  // A new id; thread-safe.
  std::string Next();

 private:
  Clock clock_;
  Random random_;
  absl::Mutex mu_;
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

// True when s has the shape of an id from IdGenerator.
bool IsValidId(absl::string_view s);

}  // namespace rapport

#endif  // RAPPORT_COMMON_IDS_H_
