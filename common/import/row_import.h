// Streamed imports of rows, written once for every counterpart service: each
// row checked on its own (a bad row is reported with its number, column and
// reason and never stops the good ones), good rows stored in batches of
// `batch_rows` in one transaction each, and a retried import storing nothing
// twice. The customer service has imports of its own (merges, suppression);
// partner and financial-community imports are this.
//
// A row's key is its request id, or else its import and row number; its id
// is made from that key (KeyedId of the request id, or RowId of the import's
// prefix and the row, the prefix kept per import id), so that a retry makes
// the same ids. A row whose id is stored already is a duplicate when it says
// the same (its fingerprint) and a reject when it does not.
//
// Rows name their entity by a reference ("ID" or "ext:SOURCE:ID"); the store
// resolves a batch's references at once, and an unknown external id may name
// an entity to create along with the rows.
//
//   struct DealRecord { ... };
//   imports::Importer<v1::ImportDealsRequest, v1::DealRow, DealRecord> deals(
//       &store, {.kind = "deals", .rpc = "ImportDeals", .ref_field =
//       "partner_ref"}, [](const v1::DealRow& row) { ... parse ... });
//   RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals, deals.Run(next, actor));
#ifndef RAPPORT_COMMON_IMPORT_ROW_IMPORT_H_
#define RAPPORT_COMMON_IMPORT_ROW_IMPORT_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/distributions.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/audit/audit.h"
#include "common/base/status_macros.h"
#include "common/ids.h"
#include "common/import/cache_share.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::imports {

inline constexpr size_t kDefaultBatchRows = 5000;
inline constexpr size_t kMaxListedRejects = 10000;
inline constexpr size_t kMaxImportIdBytes = 64;

// The answer to an import whose call ended before its request stream did
// (cancelled by the client, or past the server's deadline).
inline absl::Status CancelledImport() {
  return absl::CancelledError(
      "the call ended (cancelled, or past its deadline) before the end of the "
      "import; the rows stored before that stay stored, and a retry of the "
      "import stores each of the others once");
}
// `refusal` (a message of the stream that is not well formed) with what
// the import stored before it, when it stored anything: the stream ends,
// and those rows stay, so the caller is told to send the import again under
// the same import id (which stores each row once), not under another.
inline absl::Status RefusedAfter(absl::Status refusal, int64_t stored) {
  if (stored <= 0) return refusal;
  absl::Status told(
      refusal.code(),
      absl::StrCat(refusal.message(), "; ", stored,
                   " rows of earlier messages were stored and stay: send "
                   "the import again under the same import_id once this is "
                   "mended (each row is stored once)"));
  // The field it names goes along.
  refusal.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    told.SetPayload(url, payload);
  });
  return told;
}
// How often one batch is run again after losing a race to a concurrent
// writer (a race lost with fewer entities left to create than before is
// getting on, and not counted), and how often at most in all.
inline constexpr int kMaxAttempts = 5;
inline constexpr int kMaxRuns = 64;
// How long a batch waits before it runs again after its `lost`-th lost race:
// a random time, up to 20 ms doubled for each race lost before (at most
// 640 ms), so that imports racing for the same new entities batch by batch
// fall out of step instead of colliding at every attempt.
inline absl::Duration LostRacePause(int lost) {
  thread_local absl::BitGen random;
  return absl::Microseconds(absl::Uniform<int64_t>(
      random, 0, int64_t{20000} << std::clamp(lost - 1, 0, 5)));
}
// How many references an import keeps resolved for its later batches, and
// how many all running imports keep together (CacheShare).
inline constexpr size_t kMaxKnownRefs = 200000;
inline constexpr size_t kKnownRefsBudget = 2 * kMaxKnownRefs;

struct Reject {
  int64_t row = 0;
  std::string field;
  std::string message;
  // Not refused: what the row says is stored already (by another row or
  // call), so it wrote nothing; counted with the duplicates.
  bool unchanged = false;
};

// What a row's reference names, as the store resolved it.
struct Resolved {
  // The entity's id; empty with `create` or `error`.
  std::string id;
  // An unknown external id: Write creates the entity (under `id_to_create`).
  bool create = false;
  std::string id_to_create;
  // Why the reference names nothing usable (the row is rejected).
  std::string error;
};

// One row, checked.
template <typename Record>
struct Row {
  int64_t number = 0;
  std::string id;           // what it is stored under
  std::string fingerprint;  // what it says (a retry must say the same)
  std::string ref;          // its entity reference, as given
  Resolved entity;          // filled in before Write
  Record record;
};

// A parsed row: the record, its reference, and a text that changes whenever
// what the row says changes (its fingerprint is made from it).
template <typename Record>
struct Parsed {
  Record record;
  std::string ref;
  std::string content;
};

// What Store::Write did.
struct Written {
  int64_t created = 0;
  std::vector<Reject> rejects;
};

template <typename Record>
class Store {
 public:
  virtual ~Store() = default;
  // The id prefix of the rows of `kind` of `import_id`: made by the first
  // call, the same for every later one.
  virtual absl::StatusOr<std::string> Prefix(const std::string& kind,
                                             const std::string& import_id) = 0;
  // What each of `refs` names. `after_lost_race` when the batch is run again
  // after losing a race (Write's ALREADY_EXISTS, ABORTED or NOT_FOUND): the
  // store may then look closer at what it would create.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> Resolve(
      const std::vector<std::string>& refs, bool after_lost_race) = 0;
  // The fingerprints of those of `ids` that are stored already.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, std::string>> Stored(
      const std::vector<std::string>& ids) = 0;
  // Stores `rows` in one transaction, creating the entities they name to be
  // created, but for those it refuses on what is stored (a deal approved in
  // conflict with another partner's), and keeps no entity that only refused
  // rows named; returns how many entities it created and the rows it
  // refused. ALREADY_EXISTS when a concurrent writer stored
  // one of the ids (or created one of the entities) first, ABORTED (a
  // deadlock, or an external id a row was resolved by moved to another
  // entity since), or NOT_FOUND (an entity a row names was deleted since it
  // was resolved): the batch is then run again from Resolve.
  virtual absl::StatusOr<Written> Write(const std::vector<Row<Record>>& rows,
                                        const std::string& actor) = 0;
  // Writes the import's start and end in the audit log.
  virtual absl::Status Audit(const audit::Event& event) = 0;
};

struct Options {
  // What is imported ("deals"): the scope of request-id keys, the import's
  // prefix, the metrics' label.
  std::string kind;
  // The RPC, for the audit log ("ImportDeals").
  std::string rpc;
  // The reference column, for its rejects ("partner_ref").
  std::string ref_field;
  // The KeyedId scope of a row's request id; empty: `kind`. The RPC that
  // records one such row uses the same scope, so that a row sent both ways
  // under one request id is stored once ("order").
  std::string request_scope;
  size_t batch_rows = kDefaultBatchRows;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // A word the import's audit events carry after their details ("force").
  std::string audit_note;
};

// What one import call did. rows = accepted + duplicates + rejected.
struct Totals {
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t created = 0;
  // The first kMaxListedRejects rejects, by row.
  std::vector<Reject> rejects;
};

// `Request` has import_id() and rows(); each `RawRow` has row() and
// request_id().
template <typename Request, typename RawRow, typename Record>
class Importer {
 public:
  using Parse = std::function<absl::StatusOr<Parsed<Record>>(const RawRow&)>;
  // Told the rows of each batch once they are stored (committed), so that
  // the entities they change can be re-scored.
  using OnStored = std::function<void(const std::vector<const Row<Record>*>&)>;
  // Asked of each new row (not stored already) whose entity existed before
  // this call, once its reference is resolved and before the batch's
  // transaction: the row's reject (number, field and message) when what is
  // stored about the entity refuses it (a recent interaction that the
  // entity's contact policy does not allow); an error ends the import.
  using Admit =
      std::function<absl::StatusOr<std::optional<Reject>>(const Row<Record>&)>;

  Importer(Store<Record>* store, Options options, Parse parse,
           OnStored on_stored = nullptr, Admit admit = nullptr)
      : store_(store),
        options_(std::move(options)),
        parse_(std::move(parse)),
        on_stored_(std::move(on_stored)),
        admit_(std::move(admit)) {}

  // Reads the import's messages from `next` (false at the end) and stores
  // them for `actor`; the start and the end are audited. A stream that ended
  // because the call did (`cancelled`: by the client, or past the server's
  // deadline) is not the end of the import: CANCELLED, audited as failed.
  absl::StatusOr<Totals> Run(const std::function<bool(Request*)>& next,
                             const std::string& actor,
                             const std::function<bool()>& cancelled = {}) {
    Request request;
    if (!next(&request) || request.import_id().empty()) {
      return InvalidField("import_id", "is required in the first message");
    }
    RAPPORT_RETURN_IF_ERROR(
        CheckKeyText(request.import_id(), "import_id", kMaxImportIdBytes));
    Session run(this, request.import_id(), actor);
    RAPPORT_RETURN_IF_ERROR(run.Audit("started", ""));
    absl::StatusOr<Totals> totals = run.Import(request, next, cancelled);
    if (!totals.ok()) {
      // The error is the call's answer; the end event says it stopped, and
      // what the batches committed before it stored (they stay).
      run.Audit("failed",
                absl::StrCat(absl::StatusCodeToString(totals.status().code()),
                             " ", run.Counts()))
          .IgnoreError();
      return totals;
    }
    RAPPORT_RETURN_IF_ERROR(
        run.Audit(totals->rejected > 0 ? "partial" : "ok", Counts(*totals)));
    return totals;
  }

 private:
  static std::string Counts(const Totals& totals) {
    return absl::StrCat(
        "accepted=", totals.accepted, " duplicates=", totals.duplicates,
        " rejected=", totals.rejected, " created=", totals.created);
  }

  class Session {
   public:
    // What the batches committed so far stored (for a run that stops).
    std::string Counts() const { return Importer::Counts(totals_); }

    Session(Importer* importer, std::string import_id, std::string actor)
        : importer_(importer),
          import_id_(std::move(import_id)),
          actor_(std::move(actor)) {}

    absl::Status Audit(std::string outcome, std::string details) {
      const std::string& note = importer_->options_.audit_note;
      if (!note.empty()) {
        absl::StrAppend(&details, details.empty() ? "" : " ", note);
      }
      return importer_->store_->Audit(
          {.time_us = absl::ToUnixMicros(importer_->options_.clock()),
           .actor = actor_,
           .rpc = importer_->options_.rpc,
           .resource = absl::StrCat("imports/", import_id_),
           .outcome = std::move(outcome),
           .details = std::move(details)});
    }

    absl::StatusOr<Totals> Import(Request& request,
                                  const std::function<bool(Request*)>& next,
                                  const std::function<bool()>& cancelled) {
      RAPPORT_ASSIGN_OR_RETURN(
          prefix_,
          importer_->store_->Prefix(importer_->options_.kind, import_id_));
      do {
        if (!request.import_id().empty() && request.import_id() != import_id_) {
          return RefusedAfter(
              InvalidField("import_id",
                           "changed within the import; send it once, or "
                           "the same in every message"),
              totals_.accepted);
        }
        if (request.rows_size() > kMaxRowsPerMessage) {
          return RefusedAfter(
              InvalidField("rows",
                           absl::StrCat("has ", request.rows_size(),
                                        " rows in one message; at "
                                        "most ",
                                        kMaxRowsPerMessage, " are allowed")),
              totals_.accepted);
        }
        for (const RawRow& raw : request.rows()) {
          RAPPORT_RETURN_IF_ERROR(Add(raw));
        }
        if (pending_.size() >= importer_->options_.batch_rows) {
          RAPPORT_RETURN_IF_ERROR(Flush());
        }
        request.Clear();
      } while (next(&request));
      if (cancelled && cancelled()) return CancelledImport();
      RAPPORT_RETURN_IF_ERROR(Flush());
      // By row, and in the order found within a row.
      std::sort(listed_.begin(), listed_.end(), ListedBefore);
      totals_.rejects.reserve(listed_.size());
      for (auto& [seq, reject] : listed_) {
        totals_.rejects.push_back(std::move(reject));
      }
      return std::move(totals_);
    }

   private:
    // A listed reject, numbered in the order found.
    using Listed = std::pair<uint64_t, Reject>;
    static bool ListedBefore(const Listed& a, const Listed& b) {
      return std::tie(a.second.row, a.first) < std::tie(b.second.row, b.first);
    }

    // Lists the first kMaxListedRejects rejects by row (and, within a row,
    // in the order found), whatever the order they are found in (a batch's
    // store refusals come after the parse refusals of later rows): a
    // max-heap until the end sorts it.
    void RejectRow(int64_t row, std::string field, std::string message) {
      ++totals_.rejected;
      metrics::CountImportRows(importer_->options_.kind, 0, 0, 1);
      Listed found{found_++, {row, std::move(field), std::move(message)}};
      if (listed_.size() >= kMaxListedRejects) {
        if (!ListedBefore(found, listed_.front())) return;
        std::pop_heap(listed_.begin(), listed_.end(), ListedBefore);
        listed_.pop_back();
      }
      listed_.push_back(std::move(found));
      std::push_heap(listed_.begin(), listed_.end(), ListedBefore);
    }

    // Rejects the row (OK) when it is wrong; any other failure ends the
    // import.
    absl::Status Add(const RawRow& raw) {
      if (raw.row() < 1 || raw.row() > kMaxRowIdRow) {
        RejectRow(raw.row(), "row", "must be a row number from 1");
        return absl::OkStatus();
      }
      if (RejectedFor(raw.row(), CheckRequestId(raw.request_id()))) {
        return absl::OkStatus();
      }
      absl::StatusOr<Parsed<Record>> parsed = importer_->parse_(raw);
      if (!parsed.ok()) {
        // What the row says is wrong; a failure of the service (a lost
        // database while resolving a reference) is not the row's.
        switch (parsed.status().code()) {
          case absl::StatusCode::kInvalidArgument:
          case absl::StatusCode::kOutOfRange:
            RejectedFor(raw.row(), parsed.status());
            return absl::OkStatus();
          default:
            return parsed.status();
        }
      }
      Row<Record> row;
      row.number = raw.row();
      row.id = raw.request_id().empty()
                   ? RowId(prefix_, raw.row())
                   : KeyedId(importer_->options_.request_scope.empty()
                                 ? importer_->options_.kind
                                 : importer_->options_.request_scope,
                             raw.request_id());
      row.fingerprint = Fingerprint(parsed->content);
      row.ref = std::move(parsed->ref);
      row.record = std::move(parsed->record);
      pending_.push_back(std::move(row));
      return absl::OkStatus();
    }

    // Rejects the row for the first field `status` names (its message
    // without the field in front); false when the status is OK.
    bool RejectedFor(int64_t row, const absl::Status& status) {
      if (status.ok()) return false;
      std::vector<FieldViolation> v;
      AddViolations(status, &v);
      RejectRow(row, v.front().field, v.front().description);
      return true;
    }

    // Stores the pending rows: duplicates and conflicting rows out, the
    // rest in one transaction, again after losing a race.
    absl::Status Flush() {
      if (pending_.empty()) return absl::OkStatus();
      absl::Status last;
      // A batch that loses the race to create its new entities to a
      // concurrent import of the same ones (the streams of one import whose
      // rows go by request id, not by entity), each time with fewer left to
      // create, is getting on: such a run is not an attempt lost. It ends,
      // as what is left to create only shrinks.
      size_t fewest_to_create = std::numeric_limits<size_t>::max();
      int lost = 0;
      for (int run = 0; lost < kMaxAttempts && run < kMaxRuns; ++run) {
        absl::StatusOr<Outcome> outcome = Attempt(run > 0);
        if (outcome.ok()) {
          totals_.accepted += outcome->accepted;
          totals_.duplicates += outcome->duplicates;
          // Counted as stored, so that a scrape sees a long import move,
          // and one cut short counts what it stored.
          metrics::CountImportRows(importer_->options_.kind, outcome->accepted,
                                   outcome->duplicates, 0);
          totals_.created += outcome->created;
          for (Reject& r : outcome->rejects) {
            RejectRow(r.row, std::move(r.field), std::move(r.message));
          }
          pending_.clear();
          return absl::OkStatus();
        }
        // Lost a race (a row or an entity stored first, an entity deleted,
        // or a deadlock with a concurrent writer): run the batch again, with
        // every reference resolved anew.
        if (admit_failed_ || (!absl::IsAlreadyExists(outcome.status()) &&
                              !absl::IsAborted(outcome.status()) &&
                              !absl::IsNotFound(outcome.status()))) {
          return outcome.status();
        }
        known_.clear();
        last = outcome.status();
        if (run == 0 || to_create_ >= fewest_to_create) ++lost;
        fewest_to_create = std::min(fewest_to_create, to_create_);
        if (lost < kMaxAttempts) absl::SleepFor(LostRacePause(lost));
      }
      // What the database said stays in the log: it may name tables.
      LogLine("warn", ProcessService(), "a batch kept losing races",
              {{"kind", importer_->options_.kind},
               {"error", std::string(last.message())}});
      return absl::AbortedError(
          "the import kept losing races to concurrent writers; retry it");
    }

    struct Outcome {
      int64_t accepted = 0;
      int64_t duplicates = 0;
      int64_t created = 0;
      std::vector<Reject> rejects;
    };

    absl::StatusOr<Outcome> Attempt(bool after_lost_race) {
      admit_failed_ = false;
      Outcome out;
      std::vector<std::string> ids;
      ids.reserve(pending_.size());
      for (const Row<Record>& r : pending_) ids.push_back(r.id);
      RAPPORT_ASSIGN_OR_RETURN(auto stored, importer_->store_->Stored(ids));
      // Rows to write: new, and first of their id in the batch.
      absl::flat_hash_map<std::string, const std::string*> in_batch;
      std::vector<size_t> fresh;
      for (size_t i = 0; i < pending_.size(); ++i) {
        const Row<Record>& r = pending_[i];
        const std::string* before = nullptr;
        if (auto it = stored.find(r.id); it != stored.end()) {
          before = &it->second;
        } else if (auto b = in_batch.find(r.id); b != in_batch.end()) {
          before = b->second;
        }
        if (before == nullptr) {
          in_batch.emplace(r.id, &r.fingerprint);
          fresh.push_back(i);
        } else if (*before == r.fingerprint) {
          ++out.duplicates;
        } else {
          const bool keyed =
              r.id != RowId(prefix_, r.number);  // a request id names it
          out.rejects.push_back(
              {r.number, keyed ? "request_id" : "row",
               keyed ? "was used before, by a row that says something "
                       "else or by a call (a request id names one write)"
                     : "was imported before under this import id, by an "
                       "earlier run or earlier in this one, with other "
                       "content (a row number names one row)"});
        }
      }
      // References resolved by earlier batches of this import keep their
      // answer (an entity a row names is seldom in one batch only); the
      // others are resolved at once.
      std::vector<std::string> refs;
      for (size_t i : fresh) {
        if (!known_.contains(pending_[i].ref)) refs.push_back(pending_[i].ref);
      }
      std::sort(refs.begin(), refs.end());
      refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
      absl::flat_hash_map<std::string, Resolved> resolved;
      if (!refs.empty()) {
        RAPPORT_ASSIGN_OR_RETURN(
            resolved, importer_->store_->Resolve(refs, after_lost_race));
      }
      to_create_ = static_cast<size_t>(
          std::count_if(resolved.begin(), resolved.end(),
                        [](const auto& r) { return r.second.create; }));
      for (size_t i : fresh) {
        if (auto k = known_.find(pending_[i].ref); k != known_.end()) {
          resolved.emplace(k->first, Resolved{.id = k->second});
        }
      }
      std::vector<Row<Record>> rows;
      rows.reserve(fresh.size());
      for (size_t i : fresh) {
        Row<Record> r = pending_[i];
        auto it = resolved.find(r.ref);
        if (it == resolved.end() || !it->second.error.empty()) {
          out.rejects.push_back(
              {r.number, importer_->options_.ref_field,
               it == resolved.end() ? "names nothing" : it->second.error});
          continue;
        }
        r.entity = it->second;
        if (importer_->admit_ && !r.entity.create &&
            !created_here_.contains(r.entity.id)) {
          absl::StatusOr<std::optional<Reject>> refused = importer_->admit_(r);
          if (!refused.ok()) {
            // Its own failure, never taken for a lost race (Flush).
            admit_failed_ = true;
            return refused.status();
          }
          if (refused->has_value()) {
            out.rejects.push_back(**std::move(refused));
            continue;
          }
        }
        rows.push_back(std::move(r));
      }
      int64_t refused = 0;
      if (!rows.empty()) {
        RAPPORT_ASSIGN_OR_RETURN(Written written,
                                 importer_->store_->Write(rows, actor_));
        out.created = written.created;
        refused = static_cast<int64_t>(written.rejects.size());
        absl::flat_hash_set<int64_t> refused_rows;
        for (Reject& r : written.rejects) {
          refused_rows.insert(r.row);
          if (r.unchanged) {
            ++out.duplicates;
          } else {
            out.rejects.push_back(std::move(r));
          }
        }
        // What the batch's stored rows named (and created) exists now; an
        // entity made only for refused rows was not kept.
        if (known_.size() + rows.size() >
            std::min(kMaxKnownRefs, share_.limit())) {
          known_.clear();
        }
        if (created_here_.size() + rows.size() > kMaxKnownRefs) {
          created_here_.clear();  // they are then asked about, as any
        }
        for (const Row<Record>& r : rows) {
          if (refused_rows.contains(r.number)) continue;
          known_.emplace(r.ref,
                         r.entity.create ? r.entity.id_to_create : r.entity.id);
          if (r.entity.create && importer_->admit_) {
            created_here_.insert(r.entity.id_to_create);
          }
        }
        if (importer_->on_stored_) {
          std::vector<const Row<Record>*> stored;
          stored.reserve(rows.size());
          for (const Row<Record>& r : rows) {
            if (!refused_rows.contains(r.number)) stored.push_back(&r);
          }
          importer_->on_stored_(stored);
        }
      }
      out.accepted = static_cast<int64_t>(rows.size()) - refused;
      return out;
    }

    Importer* importer_;
    const std::string import_id_;
    const std::string actor_;
    std::string prefix_;
    std::vector<Row<Record>> pending_;
    // The entity id of each reference a batch of this call has written.
    absl::flat_hash_map<std::string, std::string> known_;
    // The entities the last attempt at a batch was to create.
    size_t to_create_ = 0;
    // With admit, the entities this call created (up to kMaxKnownRefs):
    // admit is not asked about their rows. And whether admit failed the last
    // attempt.
    absl::flat_hash_set<std::string> created_here_;
    bool admit_failed_ = false;
    CacheShare share_{kKnownRefsBudget};
    Totals totals_;
    std::vector<Listed> listed_;  // a max-heap by ListedBefore
    uint64_t found_ = 0;          // rejects found so far
  };

  Store<Record>* const store_;
  const Options options_;
  const Parse parse_;
  const OnStored on_stored_;
  const Admit admit_;
};

// An Importer's OnStored that hands the entities of a batch's stored rows
// (each once; only rows `counts` keeps, null: all) to `rescore`; null when
// `rescore` is.
template <typename Record>
std::function<void(const std::vector<const Row<Record>*>&)> EntitiesOfStored(
    std::function<void(const std::vector<std::string>&)> rescore,
    std::function<bool(const Record&)> counts = nullptr) {
  if (!rescore) return nullptr;
  return [rescore = std::move(rescore), counts = std::move(counts)](
             const std::vector<const Row<Record>*>& rows) {
    std::vector<std::string> ids;
    for (const Row<Record>* r : rows) {
      if (!counts || counts(r->record)) {
        ids.push_back(r->entity.create ? r->entity.id_to_create : r->entity.id);
      }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (!ids.empty()) rescore(ids);
  };
}

}  // namespace rapport::imports

#endif  // RAPPORT_COMMON_IMPORT_ROW_IMPORT_H_
