#include "services/scoring/engine/facts.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"

namespace rapport::scoring {
namespace {

// Inputs are bounded so that sums of up to kMaxInputs of them fit in Int128.
constexpr Int128 kMaxInputNanos =
    static_cast<Int128>(Decimal::kMaxParsedUnits) * Decimal::kNanosPerUnit;
constexpr int64_t kMaxInputs = 100'000'000'000;
// Below this many rows a batch is aggregated on the calling thread only.
constexpr size_t kParallelThreshold = 1 << 16;

inline uint64_t Mix(uint64_t a, uint64_t b) {
  const UInt128 p = static_cast<UInt128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

// A fast 64-bit hash of short byte strings (multiply-fold mixing).
inline uint64_t HashBytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = Mix(h ^ v, 0xA0761D6478BD642Full);
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  if (n > 0) std::memcpy(&v, p, n);
  h = Mix(h ^ v ^ 0x589965CC75374CC3ull, 0xE7037ED1A0B428DBull);
  return Mix(h, 0x8EBC6AF09C88C6E3ull) ^ h;
}

// Big-endian 8 bytes from `offset`, zero padded: orders like the bytes.
inline uint64_t Prefix(absl::string_view s, size_t offset) {
  unsigned char b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (s.size() > offset) {
    std::memcpy(b, s.data() + offset, std::min<size_t>(8, s.size() - offset));
  }
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

bool InWindow(int64_t t, const FactsOptions& o) {
  if (t > o.as_of_micros) return false;
  if (!o.window_days) return true;
  // as_of - window < t, computed without overflow for sane inputs.
  const Int128 lower = static_cast<Int128>(o.as_of_micros) -
                       static_cast<Int128>(*o.window_days) * kMicrosPerDay;
  return static_cast<Int128>(t) > lower;
}

bool InputInRange(Decimal d) {
  return d.raw_nanos() < kMaxInputNanos && d.raw_nanos() > -kMaxInputNanos;
}

// One entity's running facts and its id (inline up to 12 bytes).
struct Entry {
  Int128 monetary;
  Int128 cost;
  int64_t last;
  int64_t frequency;
  uint32_t len;
  char key[12];  // the id, or bytes 4..11 hold a pointer to it

  absl::string_view id() const {
    if (len <= 12) return absl::string_view(key, len);
    const char* p;
    std::memcpy(&p, key + 4, sizeof(p));
    return absl::string_view(p, len);
  }
};
static_assert(sizeof(Entry) == 64);

// Open-addressing id -> entry table for one hash partition.
class Partition {
 public:
  Partition() : slots_(1024, 0), mask_(1023) {}

  size_t size() const { return entries_.size(); }
  const Entry& entry(uint32_t i) const { return entries_[i]; }
  Entry& entry(uint32_t i) { return entries_[i]; }

  void PrefetchSlot(uint64_t hash) const {
    __builtin_prefetch(&slots_[hash & mask_]);
  }
  // Prefetches the entry that a lookup will probably compare against.
  void PrefetchCandidate(uint64_t hash) const {
    const uint64_t tag = hash >> 32;
    for (uint64_t pos = hash & mask_;; pos = (pos + 1) & mask_) {
      const uint64_t s = slots_[pos];
      if (s == 0) return;
      if ((s >> 32) == tag) {
        __builtin_prefetch(&entries_[static_cast<uint32_t>(s) - 1]);
        return;
      }
    }
  }

  uint32_t FindOrInsert(absl::string_view id, uint64_t hash) {
    const uint64_t tag = hash >> 32;
    for (uint64_t pos = hash & mask_;; pos = (pos + 1) & mask_) {
      const uint64_t s = slots_[pos];
      if (s == 0) {
        if ((entries_.size() + 1) * 2 > slots_.size()) {
          Grow();
          return FindOrInsert(id, hash);
        }
        const uint32_t index = static_cast<uint32_t>(entries_.size());
        entries_.push_back(NewEntry(id));
        slots_[pos] = (tag << 32) | (index + 1);
        return index;
      }
      if ((s >> 32) == tag) {
        const uint32_t index = static_cast<uint32_t>(s) - 1;
        if (entries_[index].id() == id) return index;
      }
    }
  }

 private:
  Entry NewEntry(absl::string_view id) {
    Entry e{};
    e.last = FactsTable::kNoEvent;
    e.len = static_cast<uint32_t>(id.size());
    if (id.size() <= 12) {
      std::memcpy(e.key, id.data(), id.size());
    } else {
      const char* p = Store(id);
      std::memcpy(e.key + 4, &p, sizeof(p));
    }
    return e;
  }

  // Copies long ids into stable arena blocks.
  const char* Store(absl::string_view id) {
    constexpr size_t kBlock = 1 << 16;
    if (id.size() > kBlock / 4) {
      blocks_.push_back(std::make_unique<char[]>(id.size()));
      std::memcpy(blocks_.back().get(), id.data(), id.size());
      return blocks_.back().get();
    }
    if (block_used_ + id.size() > kBlock || current_ == nullptr) {
      blocks_.push_back(std::make_unique<char[]>(kBlock));
      current_ = blocks_.back().get();
      block_used_ = 0;
    }
    char* p = current_ + block_used_;
    std::memcpy(p, id.data(), id.size());
    block_used_ += id.size();
    return p;
  }

  void Grow() {
    std::vector<uint64_t> bigger(slots_.size() * 2, 0);
    const uint64_t mask = bigger.size() - 1;
    for (uint32_t i = 0; i < entries_.size(); ++i) {
      absl::string_view id = entries_[i].id();
      const uint64_t h = HashBytes(id.data(), id.size());
      uint64_t pos = h & mask;
      while (bigger[pos] != 0) pos = (pos + 1) & mask;
      bigger[pos] = ((h >> 32) << 32) | (i + 1);
    }
    slots_ = std::move(bigger);
    mask_ = mask;
  }

  std::vector<uint64_t> slots_;  // (hash >> 32) << 32 | (index + 1); 0 empty
  uint64_t mask_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* current_ = nullptr;
  size_t block_used_ = 0;
};

constexpr int kPartitions = 2;

inline int PartitionOf(uint64_t hash) { return static_cast<int>(hash >> 63); }

// Runs `work(p)` for every partition, in two threads for large inputs.
template <typename F>
void ForEachPartition(size_t rows, F&& work) {
  if (rows < kParallelThreshold) {
    for (int p = 0; p < kPartitions; ++p) work(p);
    return;
  }
  std::thread other([&] { work(1); });
  work(0);
  other.join();
}

// Folds rows of partition `p` whose hashes are known: `id_of(i)` returns row
// i's id and `apply(entry, i)` folds row i into its entry. Three-stage
// software pipeline over blocks of rows, so that the table slot, the id bytes
// and the entry of a row are all in cache when the row is folded.
template <typename IdOf, typename Apply>
void AggregateHashed(Partition& part, int p, size_t n, const uint64_t* hashes,
                     IdOf&& id_of, Apply&& apply) {
  constexpr size_t kBlock = 64;
  struct Block {
    size_t count = 0;
    size_t rows[kBlock];
  };
  Block blocks[3];
  const size_t num_blocks = (n + kBlock - 1) / kBlock;
  for (size_t b = 0; b < num_blocks + 2; ++b) {
    if (b < num_blocks) {  // stage 1: fetch slots and id bytes
      Block& blk = blocks[b % 3];
      blk.count = 0;
      const size_t stop = std::min(n, (b + 1) * kBlock);
      for (size_t i = b * kBlock; i < stop; ++i) {
        if (PartitionOf(hashes[i]) != p) continue;
        part.PrefetchSlot(hashes[i]);
        __builtin_prefetch(id_of(i).data());
        blk.rows[blk.count++] = i;
      }
    }
    if (b >= 1 && b - 1 < num_blocks) {  // stage 2: fetch candidate entries
      const Block& blk = blocks[(b - 1) % 3];
      for (size_t j = 0; j < blk.count; ++j) {
        part.PrefetchCandidate(hashes[blk.rows[j]]);
      }
    }
    if (b >= 2) {  // stage 3: fold
      const Block& blk = blocks[(b - 2) % 3];
      for (size_t j = 0; j < blk.count; ++j) {
        const size_t i = blk.rows[j];
        apply(part.entry(part.FindOrInsert(id_of(i), hashes[i])), i);
      }
    }
  }
}

// Adds n rows to both partitions. Two threads hash halves of the rows and
// check each with `valid(i)`; if a row is invalid nothing is added and the
// function returns false. Then each thread folds the rows of its partition.
template <typename IdOf, typename Valid, typename Apply>
bool Aggregate(Partition* parts, size_t n, IdOf&& id_of, Valid&& valid,
               Apply&& apply) {
  std::vector<uint64_t> hashes(n);
  auto hash_range = [&](size_t begin, size_t end) {
    constexpr size_t kAhead = 16;
    bool ok = true;
    for (size_t i = begin; i < end; ++i) {
      if (i + kAhead < end) __builtin_prefetch(id_of(i + kAhead).data());
      ok &= valid(i);
      absl::string_view id = id_of(i);
      hashes[i] = HashBytes(id.data(), id.size());
    }
    return ok;
  };
  if (n < kParallelThreshold) {
    if (!hash_range(0, n)) return false;
    for (int p = 0; p < kPartitions; ++p) {
      AggregateHashed(parts[p], p, n, hashes.data(), id_of, apply);
    }
    return true;
  }
  bool other_ok = true;
  std::thread other([&] { other_ok = hash_range(n / 2, n); });
  const bool ok = hash_range(0, n / 2);
  other.join();
  if (!ok || !other_ok) return false;
  std::thread second(
      [&] { AggregateHashed(parts[1], 1, n, hashes.data(), id_of, apply); });
  AggregateHashed(parts[0], 0, n, hashes.data(), id_of, apply);
  second.join();
  return true;
}

}  // namespace

absl::Status ValidateFactsOptions(const FactsOptions& options) {
  if (options.window_days && *options.window_days < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("window_days: must be at least 1 when set, got ",
                     *options.window_days));
  }
  if (options.window_days && *options.window_days > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_days: must be at most 1000000, got ", *options.window_days));
  }
  return absl::OkStatus();
}

std::optional<int64_t> FactsTable::recency_days(size_t i) const {
  if (frequency[i] == 0) return std::nullopt;
  return FloorDays(as_of_micros - last_event_micros[i]);
}

EntityFacts FactsTable::Row(size_t i) const {
  EntityFacts row;
  row.entity_id = std::string(id(i));
  row.frequency = frequency[i];
  row.monetary = monetary[i];
  if (frequency[i] > 0) row.last_event_micros = last_event_micros[i];
  row.cost_to_serve = cost_to_serve[i];
  return row;
}

void FactsTable::Append(const EntityFacts& row) {
  if (id_offsets.empty()) id_offsets.push_back(0);
  id_bytes.append(row.entity_id);
  id_offsets.push_back(id_bytes.size());
  frequency.push_back(row.frequency);
  monetary.push_back(row.monetary);
  last_event_micros.push_back(row.last_event_micros.value_or(kNoEvent));
  cost_to_serve.push_back(row.cost_to_serve);
}

class FactsAccumulator::Impl {
 public:
  explicit Impl(const FactsOptions& o) : options_(o) {}

  // ResourceExhausted if adding n more inputs would pass the limit.
  absl::Status CheckInputs(size_t n) const {
    if (inputs_ + static_cast<int64_t>(n) > kMaxInputs) {
      return absl::ResourceExhaustedError(
          "more than 1e11 inputs in one accumulation");
    }
    return absl::OkStatus();
  }

  template <typename IdOf>
  absl::Status AddIds(size_t n, IdOf&& id_of, absl::string_view field) {
    RAPPORT_RETURN_IF_ERROR(CheckInputs(n));
    const bool ok = Aggregate(
        parts_, n, id_of, [&](size_t i) { return !id_of(i).empty(); },
        [](Entry&, size_t) {});
    if (!ok) {
      for (size_t i = 0; i < n; ++i) {
        if (id_of(i).empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(field, "[", i, "]: empty entity id"));
        }
      }
    }
    inputs_ += static_cast<int64_t>(n);
    return absl::OkStatus();
  }

  static absl::Status ValidateEvent(const ActivityEvent& e, size_t i) {
    if (e.entity_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].entity_id: empty"));
    }
    if (!InputInRange(e.amount)) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].amount: magnitude must be below 1e18"));
    }
    return absl::OkStatus();
  }

  absl::Status AddEvents(absl::Span<const ActivityEvent> events) {
    RAPPORT_RETURN_IF_ERROR(CheckInputs(events.size()));
    const FactsOptions o = options_;
    const bool ok = Aggregate(
        parts_, events.size(), [&](size_t i) { return events[i].entity_id; },
        [&](size_t i) {
          return !events[i].entity_id.empty() && InputInRange(events[i].amount);
        },
        [&](Entry& e, size_t i) {
          const ActivityEvent& ev = events[i];
          if (!InWindow(ev.time_micros, o)) return;
          e.frequency += 1;
          e.monetary += ev.amount.raw_nanos();
          e.last = std::max(e.last, ev.time_micros);
        });
    if (!ok) {
      for (size_t i = 0; i < events.size(); ++i) {
        RAPPORT_RETURN_IF_ERROR(ValidateEvent(events[i], i));
      }
    }
    inputs_ += static_cast<int64_t>(events.size());
    return absl::OkStatus();
  }

  static absl::Status ValidateCost(const CostEvent& c, size_t i) {
    if (c.entity_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("costs[", i, "].entity_id: empty"));
    }
    if (c.cost.is_negative()) {
      return absl::InvalidArgumentError(
          absl::StrCat("costs[", i, "].cost: must not be negative, got ",
                       c.cost.ToString()));
    }
    if (!InputInRange(c.cost)) {
      return absl::InvalidArgumentError(
          absl::StrCat("costs[", i, "].cost: must be below 1e18"));
    }
    return absl::OkStatus();
  }

  absl::Status AddCosts(absl::Span<const CostEvent> costs) {
    RAPPORT_RETURN_IF_ERROR(CheckInputs(costs.size()));
    const FactsOptions o = options_;
    const bool ok = Aggregate(
        parts_, costs.size(), [&](size_t i) { return costs[i].entity_id; },
        [&](size_t i) {
          return !costs[i].entity_id.empty() && !costs[i].cost.is_negative() &&
                 InputInRange(costs[i].cost);
        },
        [&](Entry& e, size_t i) {
          if (InWindow(costs[i].time_micros, o)) {
            e.cost += costs[i].cost.raw_nanos();
          }
        });
    if (!ok) {
      for (size_t i = 0; i < costs.size(); ++i) {
        RAPPORT_RETURN_IF_ERROR(ValidateCost(costs[i], i));
      }
    }
    inputs_ += static_cast<int64_t>(costs.size());
    return absl::OkStatus();
  }

  absl::Status AddPartialFacts(absl::Span<const PartialFacts> facts) {
    for (size_t i = 0; i < facts.size(); ++i) {
      const PartialFacts& f = facts[i];
      auto bad = [&](absl::string_view field, absl::string_view what) {
        return absl::InvalidArgumentError(
            absl::StrCat("facts[", i, "].", field, ": ", what));
      };
      if (f.entity_id.empty()) return bad("entity_id", "empty");
      if (f.frequency < 0 || f.frequency > kMaxInputs) {
        return bad("frequency", "must be in 0..1e11");
      }
      if (f.frequency > 0 && !f.last_event_micros) {
        return bad("last_event_time", "required when frequency > 0");
      }
      if (f.frequency == 0 && f.last_event_micros) {
        return bad("last_event_time", "must be empty when frequency is 0");
      }
      if (f.frequency == 0 && !f.monetary.is_zero()) {
        return bad("monetary", "must be 0 when frequency is 0");
      }
      if (f.last_event_micros && !InWindow(*f.last_event_micros, options_)) {
        return bad("last_event_time", "outside the window ending at as_of");
      }
      if (!InputInRange(f.monetary)) {
        return bad("monetary", "magnitude must be below 1e18");
      }
      if (f.cost_to_serve.is_negative()) {
        return bad("cost_to_serve", "must not be negative");
      }
      if (!InputInRange(f.cost_to_serve)) {
        return bad("cost_to_serve", "must be below 1e18");
      }
    }
    // A partial row may stand for many events: count it as that many inputs.
    int64_t represented = 0;
    for (const PartialFacts& f : facts)
      represented += std::max<int64_t>(1, f.frequency);
    RAPPORT_RETURN_IF_ERROR(CheckInputs(static_cast<size_t>(represented)));
    inputs_ += represented;
    Aggregate(
        parts_, facts.size(), [&](size_t i) { return facts[i].entity_id; },
        [](size_t) { return true; },
        [&](Entry& e, size_t i) {
          const PartialFacts& f = facts[i];
          e.frequency += f.frequency;
          e.monetary += f.monetary.raw_nanos();
          e.cost += f.cost_to_serve.raw_nanos();
          if (f.last_event_micros)
            e.last = std::max(e.last, *f.last_event_micros);
        });
    return absl::OkStatus();
  }

  size_t entity_count() const { return parts_[0].size() + parts_[1].size(); }

  FactsTable Finish() {
    // Sort each partition by id bytes (in parallel), then merge.
    // The first 16 id bytes decide almost every comparison without touching
    // the entries.
    struct Key {
      uint64_t hi;
      uint64_t lo;
      uint32_t index;
      bool operator<(const Key& o) const {
        return hi != o.hi ? hi < o.hi : lo < o.lo;
      }
      bool SamePrefix(const Key& o) const { return hi == o.hi && lo == o.lo; }
    };
    std::vector<Key> sorted[kPartitions];
    ForEachPartition(entity_count(), [&](int p) {
      const Partition& part = parts_[p];
      std::vector<Key>& keys = sorted[p];
      keys.resize(part.size());
      for (uint32_t i = 0; i < part.size(); ++i) {
        absl::string_view id = part.entry(i).id();
        keys[i] = {Prefix(id, 0), Prefix(id, 8), i};
      }
      std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
        if (!a.SamePrefix(b)) return a < b;
        return part.entry(a.index).id() < part.entry(b.index).id();
      });
    });
    const size_t n = entity_count();
    // Merged order: partition in the top bit, index below.
    std::vector<uint32_t> order;
    std::vector<uint8_t> from;
    order.reserve(n);
    from.reserve(n);
    size_t i0 = 0, i1 = 0;
    const std::vector<Key>& a = sorted[0];
    const std::vector<Key>& b = sorted[1];
    while (i0 < a.size() || i1 < b.size()) {
      bool take_a;
      if (i1 == b.size()) {
        take_a = true;
      } else if (i0 == a.size()) {
        take_a = false;
      } else if (!a[i0].SamePrefix(b[i1])) {
        take_a = a[i0] < b[i1];
      } else {
        take_a = parts_[0].entry(a[i0].index).id() <
                 parts_[1].entry(b[i1].index).id();
      }
      if (take_a) {
        order.push_back(a[i0++].index);
        from.push_back(0);
      } else {
        order.push_back(b[i1++].index);
        from.push_back(1);
      }
    }
    FactsTable table;
    table.as_of_micros = options_.as_of_micros;
    table.window_days = options_.window_days;
    table.id_offsets.resize(n + 1);
    table.frequency.resize(n);
    table.monetary.resize(n);
    table.last_event_micros.resize(n);
    table.cost_to_serve.resize(n);
    uint64_t offset = 0;
    for (size_t i = 0; i < n; ++i) {
      table.id_offsets[i] = offset;
      offset += parts_[from[i]].entry(order[i]).len;
    }
    table.id_offsets[n] = offset;
    table.id_bytes.resize(offset);
    auto gather = [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        const Entry& e = parts_[from[i]].entry(order[i]);
        absl::string_view id = e.id();
        std::memcpy(table.id_bytes.data() + table.id_offsets[i], id.data(),
                    id.size());
        table.frequency[i] = e.frequency;
        table.monetary[i] = Decimal::FromRawNanos(e.monetary);
        table.last_event_micros[i] =
            e.frequency > 0 ? e.last : FactsTable::kNoEvent;
        table.cost_to_serve[i] = Decimal::FromRawNanos(e.cost);
      }
    };
    if (n < kParallelThreshold) {
      gather(0, n);
    } else {
      std::thread other([&] { gather(n / 2, n); });
      gather(0, n / 2);
      other.join();
    }
    return table;
  }

 private:
  FactsOptions options_;
  Partition parts_[kPartitions];
  int64_t inputs_ = 0;
};

FactsAccumulator::FactsAccumulator(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
FactsAccumulator::FactsAccumulator(FactsAccumulator&&) noexcept = default;
FactsAccumulator& FactsAccumulator::operator=(FactsAccumulator&&) noexcept =
    default;
FactsAccumulator::~FactsAccumulator() = default;

absl::StatusOr<FactsAccumulator> FactsAccumulator::Create(
    const FactsOptions& options) {
  RAPPORT_RETURN_IF_ERROR(ValidateFactsOptions(options));
  return FactsAccumulator(std::make_unique<Impl>(options));
}

absl::Status FactsAccumulator::AddKnownEntities(
    absl::Span<const absl::string_view> ids) {
  return impl_->AddIds(
      ids.size(), [&](size_t i) { return ids[i]; }, "entity_ids");
}

absl::Status FactsAccumulator::AddKnownEntities(
    absl::Span<const std::string> ids) {
  return impl_->AddIds(
      ids.size(), [&](size_t i) { return absl::string_view(ids[i]); },
      "entity_ids");
}

absl::Status FactsAccumulator::AddEvents(
    absl::Span<const ActivityEvent> events) {
  return impl_->AddEvents(events);
}

absl::Status FactsAccumulator::AddCosts(absl::Span<const CostEvent> costs) {
  return impl_->AddCosts(costs);
}

absl::Status FactsAccumulator::AddPartialFacts(
    absl::Span<const PartialFacts> facts) {
  return impl_->AddPartialFacts(facts);
}

size_t FactsAccumulator::entity_count() const { return impl_->entity_count(); }

absl::StatusOr<FactsTable> FactsAccumulator::Finish() && {
  return impl_->Finish();
}

absl::StatusOr<FactsTable> ComputeFacts(
    const FactsOptions& options, absl::Span<const absl::string_view> known_ids,
    absl::Span<const ActivityEvent> events, absl::Span<const CostEvent> costs) {
  RAPPORT_ASSIGN_OR_RETURN(FactsAccumulator acc,
                           FactsAccumulator::Create(options));
  RAPPORT_RETURN_IF_ERROR(acc.AddKnownEntities(known_ids));
  RAPPORT_RETURN_IF_ERROR(acc.AddEvents(events));
  RAPPORT_RETURN_IF_ERROR(acc.AddCosts(costs));
  return std::move(acc).Finish();
}

}  // namespace rapport::scoring
