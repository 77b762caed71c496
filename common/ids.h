// Server-assigned ids: 26 characters of Crockford base32 (lower case), a
// millisecond timestamp followed by 80 random bits, so new ids sort after old
// ones (good for B-tree locality and for paging by id) and never collide in
// practice across replicas.
//
//   rapport::IdGenerator ids;            // real clock and randomness
//   std::string id = ids.Next();         // "01jd8x4r2c6n7m9p0q1r2s3t4v"
//
// Tests inject the clock and the random source to get fixed ids.
//
// Ids can also be derived, so that a retried write makes the same id and
// fails on the primary key instead of needing an index of its own:
//
//   std::string a = RowId(ids.Next().substr(0, kRowIdPrefixSize), 42);
//   std::string b = KeyedId("purchase", request_id);  // same key, same id
#ifndef RAPPORT_COMMON_IDS_H_
#define RAPPORT_COMMON_IDS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
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

// The first kRowIdPrefixSize characters of a new id (its 48 bits of time and
// 30 random bits) name a numbered set of rows; RowId appends row `row`, which
// must be in [0, kMaxRowIdRow]. Ids of one prefix sort by row.
inline constexpr size_t kRowIdPrefixSize = 16;
inline constexpr int64_t kMaxRowIdRow = (int64_t{1} << 50) - 1;
std::string RowId(absl::string_view prefix, int64_t row);
// The row of `id` read as RowId(id's first kRowIdPrefixSize characters,
// row); nullopt when `id` has not the shape of an id. Any id reads as one
// (a KeyedId too), so callers compare prefixes before comparing rows.
std::optional<int64_t> RowOfId(absl::string_view id);

// The id that `key` names within `scope`: 128 bits of SHA-256 of both, in
// the shape of IdGenerator's ids (but with no time order).
std::string KeyedId(absl::string_view scope, absl::string_view key);

}  // namespace rapport

#endif  // RAPPORT_COMMON_IDS_H_
