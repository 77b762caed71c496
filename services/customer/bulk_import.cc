#include "services/customer/bulk_import.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api_names.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/import/cache_share.h"
#include "common/import/row_import.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::customer {
namespace {

using Deps = BulkImportLogic::Deps;

constexpr size_t kMaxMessageBytes = 300;
constexpr size_t kMaxDisplayNameBytes = 256;
constexpr size_t kMaxKindBytes = 64;
constexpr size_t kMaxNoteBytes = 1024;
constexpr int kMaxMergeHops = 16;
// The per-import caches start over beyond this many entries, or beyond their
// share of kCacheBudget when more imports run (each holds about 150 bytes an
// entry; the budget is what two imports of a million customers keep).
constexpr size_t kMaxCacheEntries = size_t{1} << 20;
constexpr size_t kCacheBudget = 2 * kMaxCacheEntries;
// Separates the parts of keys and hashed content; cannot occur in a ref's parts
// after validation (control characters are refused).
constexpr char kSep[] = "\x1f";

// Why a row is refused: the column and the reason.
struct Reject {
  std::string field;
  std::string message;
};

// At most kMaxMessageBytes, not splitting a UTF-8 character.
std::string Shorten(absl::string_view text) {
  if (text.size() <= kMaxMessageBytes) return std::string(text);
  size_t n = kMaxMessageBytes - 3;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(text.substr(0, n), "...");
}

// The reject a status describes: its first field violation, else `field` and
// the message.
Reject FromStatus(const absl::Status& status, absl::string_view field) {
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (!violations.empty())
    return {violations[0].field, Shorten(violations[0].description)};
  absl::string_view message = status.message();
  const std::string prefix = absl::StrCat(field, ": ");
  if (absl::StartsWith(message, prefix)) message.remove_prefix(prefix.size());
  return {std::string(field), Shorten(message)};
}

// The unique form of an email, as customers.email_key holds it.
std::string EmailKey(absl::string_view email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

std::string IdentityKey(const Identity& identity) {
  switch (identity.kind) {
    case Identity::Kind::kEmail:
      return absl::StrCat("email", kSep, identity.value);
    case Identity::Kind::kPhone:
      return absl::StrCat("phone", kSep, identity.value);
    case Identity::Kind::kExternalId:
      break;
  }
  return absl::StrCat("ext", kSep, identity.source, kSep, identity.value);
}

// Text that is at most `max` bytes, cut at a character boundary.
std::string Truncate(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n));
}

// What a ref says beyond its key: needed only until it is resolved.
struct RefDetails {
  std::string id;       // is_id: the id as given
  Identity identity;    // !is_id: what to look up
  IdentityQuery query;  // !is_id: for suppression hashes and the new customer
  std::string display_name;  // !is_id: for the new customer
};

// The identity a key of IdentityKey names.
Identity IdentityOfKey(absl::string_view key) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(key, absl::MaxSplits(kSep, 2));
  Identity identity;
  if (parts[0] == "email") {
    identity.kind = Identity::Kind::kEmail;
    identity.value = std::string(parts[1]);
  } else if (parts[0] == "phone") {
    identity.kind = Identity::Kind::kPhone;
    identity.value = std::string(parts[1]);
  } else {
    identity.kind = Identity::Kind::kExternalId;
    identity.source = std::string(parts[1]);
    identity.value = std::string(parts[2]);
  }
  return identity;
}

// Where a ref leads: a live customer, or why not.
struct Resolution {
  std::string customer_id;
  std::shared_ptr<const Reject> error;
  // Resolved by an identity that a record merged into customer_id holds:
  // that record (else the holder is customer_id itself).
  std::string merged_holder;
};

// A customer reference as parsed, shared by every row that gives the same
// text. Once its key is resolved, the cache keeps a slim copy without details
// (an import may name millions of customers) that carries its resolution, so
// that a row naming a known customer costs one lookup, by its text.
struct Ref {
  std::shared_ptr<const Reject> error;
  // The same for every spelling of the same customer or identity; part of the
  // hashed content and the key of the resolution cache.
  std::string key;
  bool is_id = false;
  std::unique_ptr<RefDetails> details;  // null in a slim copy and on error
  Resolution resolution;                // in a slim copy only

  bool slim() const { return details == nullptr && error == nullptr; }
};

std::shared_ptr<const Reject> RejectOf(std::string field, std::string message) {
  return std::make_shared<const Reject>(
      Reject{std::move(field), std::move(message)});
}

// A validated row waiting for its batch to be stored.
template <typename Record>
struct PendingRow {
  int64_t row = 0;
  std::shared_ptr<const Ref> ref;
  std::string ref_text;  // as given, the key of the parse cache
  // Made from the row's idempotency key: its request id (record.request.id)
  // or, when it has none, its import and row number.
  std::string id;
  Record record;  // the customer id, id and create time are set when stored
};

struct PurchaseTraits {
  using Request = v1::ImportPurchasesRequest;
  using Row = v1::PurchaseRow;
  using Response = v1::ImportPurchasesResponse;
  using Record = ImportedPurchase;
  static constexpr ImportKind kKind = ImportKind::kPurchases;
  static constexpr const char* kRequestScope = kPurchaseRequestScope;

  // Checks the row's own columns (not customer_ref, not request_id), fills
  // `out` and appends the normalised content to `content`.
  static std::optional<Reject> Validate(const Row& row,
                                        const CustomerLogicOptions& options,
                                        int64_t now_us, Record& out,
                                        std::string& content) {
    if (row.timestamp().empty()) return Reject{"timestamp", "is required"};
    absl::StatusOr<int64_t> time = ParseRfc3339Micros(row.timestamp());
    if (!time.ok()) return FromStatus(time.status(), "timestamp");
    if (absl::Status s = CheckNotFuture(*time, now_us, "timestamp"); !s.ok()) {
      return FromStatus(s, "timestamp");
    }
    if (row.amount().empty()) return Reject{"amount", "is required"};
    absl::StatusOr<Decimal> amount = Decimal::Parse(row.amount());
    if (!amount.ok()) return FromStatus(amount.status(), "amount");
    if (absl::Status s = CheckAmountMagnitude(*amount, "amount"); !s.ok()) {
      return FromStatus(s, "amount");
    }
    // A file's "usd" is the deployment's "USD" (ISO 4217 codes are letters).
    if (!row.currency().empty() &&
        !absl::EqualsIgnoreCase(row.currency(), options.currency)) {
      return Reject{"currency",
                    Shorten(absl::StrCat("is \"", row.currency(),
                                         "\" but this deployment reports in \"",
                                         options.currency, "\""))};
    }
    PurchaseRecord& p = out.purchase;
    p.purchase_time_us = *time;
    p.amount = *amount;
    p.currency = options.currency;
    absl::StrAppend(&content, "purchase", kSep, *time, kSep, amount->ToString(),
                    kSep, options.currency);
    return std::nullopt;
  }
  static constexpr const char* kRpc = "ImportPurchases";
  static constexpr const char* kImport = "purchases";
  static void Complete(Record& r, std::string customer_id, std::string id,
                       int64_t now_us, const std::string& actor) {
    r.purchase.customer_id = std::move(customer_id);
    r.purchase.id = std::move(id);
    r.purchase.create_time_us = now_us;
    r.purchase.recorded_by = actor;
  }
  static const std::string& CustomerOf(const Record& r) {
    return r.purchase.customer_id;
  }
  static absl::Status Write(ImportStore& store,
                            const std::vector<CustomerRecord>& customers,
                            const std::vector<Record>& rows,
                            const std::vector<IdentityClaim>& claims,
                            int64_t changes_seen) {
    return store.WritePurchases(customers, rows, claims, changes_seen);
  }
};

struct InteractionTraits {
  using Request = v1::ImportInteractionsRequest;
  using Row = v1::InteractionRow;
  using Response = v1::ImportInteractionsResponse;
  using Record = ImportedInteraction;
  static constexpr ImportKind kKind = ImportKind::kInteractions;
  static constexpr const char* kRequestScope = kInteractionRequestScope;

  static std::optional<Reject> Validate(const Row& row,
                                        const CustomerLogicOptions& options,
                                        int64_t now_us, Record& out,
                                        std::string& content) {
    if (row.timestamp().empty()) return Reject{"timestamp", "is required"};
    absl::StatusOr<int64_t> time = ParseRfc3339Micros(row.timestamp());
    if (!time.ok()) return FromStatus(time.status(), "timestamp");
    if (absl::Status s = CheckNotFuture(*time, now_us, "timestamp"); !s.ok()) {
      return FromStatus(s, "timestamp");
    }
    if (row.channel().empty()) return Reject{"channel", "is required"};
    std::optional<cv1::Channel> channel = ParseChannel(row.channel());
    if (!channel.has_value()) {
      return Reject{"channel", Shorten(absl::StrCat(
                                   "is \"", row.channel(),
                                   "\"; want email, phone, sms, visit, web, "
                                   "mail or event"))};
    }
    if (row.cost().empty()) return Reject{"cost", "is required"};
    absl::StatusOr<Decimal> cost = Decimal::Parse(row.cost());
    if (!cost.ok()) return FromStatus(cost.status(), "cost");
    if (absl::Status s = CheckAmountMagnitude(*cost, "cost"); !s.ok()) {
      return FromStatus(s, "cost");
    }
    if (cost->is_negative()) return Reject{"cost", "must be at least zero"};
    if (absl::Status s = CheckOptionalText(row.kind(), "kind", kMaxKindBytes);
        !s.ok()) {
      return FromStatus(s, "kind");
    }
    // Notes may span lines, as LogInteraction's.
    if (absl::Status s = CheckNoteText(row.note(), "note", kMaxNoteBytes);
        !s.ok()) {
      return FromStatus(s, "note");
    }
    InteractionRecord& r = out.interaction;
    r.interaction_time_us = *time;
    r.channel = *channel;
    r.cost = *cost;
    r.kind = row.kind();
    r.note = row.note();
    absl::StrAppend(&content, "interaction", kSep, *time, kSep,
                    static_cast<int>(*channel), kSep, cost->ToString(), kSep,
                    row.kind(), kSep, row.note());
    return std::nullopt;
  }
  static constexpr const char* kRpc = "ImportInteractions";
  static constexpr const char* kImport = "interactions";
  static void Complete(Record& r, std::string customer_id, std::string id,
                       int64_t now_us, const std::string& actor) {
    r.interaction.customer_id = std::move(customer_id);
    r.interaction.id = std::move(id);
    r.interaction.create_time_us = now_us;
    r.interaction.recorded_by = actor;
  }
  static const std::string& CustomerOf(const Record& r) {
    return r.interaction.customer_id;
  }
  static absl::Status Write(ImportStore& store,
                            const std::vector<CustomerRecord>& customers,
                            const std::vector<Record>& rows,
                            const std::vector<IdentityClaim>& claims,
                            int64_t changes_seen) {
    return store.WriteInteractions(customers, rows, claims, changes_seen);
  }
};

// One import call: validates rows as they come, stores them batch by batch.
template <typename Traits>
class Importer {
 public:
  using Request = typename Traits::Request;
  using Row = typename Traits::Row;
  using Response = typename Traits::Response;
  using Record = typename Traits::Record;

  // `force` records interactions that the contact policy would refuse.
  Importer(const Deps& deps, std::string actor, bool force = false)
      : deps_(deps), actor_(std::move(actor)), force_(force) {
    if constexpr (Traits::kKind == ImportKind::kInteractions) {
      if (deps_.policy_of && !force_) {
        recent_.emplace(deps_.policy_of, "customer");
      }
    }
  }

  // The import's start and end are audited; its rows carry their actor.
  absl::StatusOr<Response> Run(const std::function<bool(Request*)>& next,
                               const std::function<bool()>& cancelled) {
    Request request;
    if (!next(&request) || request.import_id().empty()) {
      return InvalidField("import_id", "is required in the first message");
    }
    RAPPORT_RETURN_IF_ERROR(CheckKeyText(request.import_id(), "import_id",
                                         BulkImportLogic::kMaxImportIdBytes));
    import_id_ = request.import_id();
    RAPPORT_RETURN_IF_ERROR(Audit("started", force_ ? "force" : ""));
    absl::StatusOr<Response> response = Import(request, next, cancelled);
    if (!response.ok()) {
      // The error is the call's answer; the end event says the import
      // stopped, and what the batches committed before it stored (they
      // stay).
      Audit("failed",
            absl::StrCat(absl::StatusCodeToString(response.status().code()),
                         " ", Counts()))
          .IgnoreError();
      return response;
    }
    RAPPORT_RETURN_IF_ERROR(
        Audit(response->rejected_size() > 0 ? "partial" : "ok", Counts()));
    return response;
  }

 private:
  // What the run has stored and refused so far.
  std::string Counts() const {
    return absl::StrCat("accepted=", accepted_, " duplicates=", duplicates_,
                        " rejected=", rejected_,
                        " created_customers=", created_,
                        force_ ? " force" : "");
  }

  absl::Status Audit(absl::string_view outcome, std::string details) {
    return deps_.store->WriteAuditEvent(
        {.time_us = absl::ToUnixMicros(deps_.clock()),
         .actor = actor_,
         .rpc = Traits::kRpc,
         .resource = absl::StrCat("imports/", import_id_),
         .outcome = std::string(outcome),
         .details = std::move(details)});
  }

  absl::StatusOr<Response> Import(Request& request,
                                  const std::function<bool(Request*)>& next,
                                  const std::function<bool()>& cancelled) {
    RAPPORT_RETURN_IF_ERROR(LoadPrefix());
    RAPPORT_ASSIGN_OR_RETURN(changes_seen_, deps_.store->CustomerChanges());
    do {
      if (!request.import_id().empty() && request.import_id() != import_id_) {
        return imports::RefusedAfter(
            InvalidField(
                "import_id",
                absl::StrCat("changed within the import, from \"", import_id_,
                             "\" to \"", Shorten(request.import_id()), "\"")),
            accepted_);
      }
      if (request.rows_size() > kMaxRowsPerMessage) {
        return imports::RefusedAfter(
            InvalidField("rows", absl::StrCat("has ", request.rows_size(),
                                              " rows in one message; at most ",
                                              kMaxRowsPerMessage,
                                              " are allowed (send more "
                                              "messages)")),
            accepted_);
      }
      // Rows dated after the message arrived are refused (Validate).
      now_us_ = absl::ToUnixMicros(deps_.clock());
      for (const Row& row : request.rows()) RAPPORT_RETURN_IF_ERROR(Add(row));
      if (pending_.size() >= deps_.batch_rows) RAPPORT_RETURN_IF_ERROR(Flush());
      request.Clear();
    } while (next(&request));
    if (cancelled && cancelled()) return imports::CancelledImport();
    RAPPORT_RETURN_IF_ERROR(Flush());

    std::stable_sort(
        rejects_.begin(), rejects_.end(),
        [](const auto& a, const auto& b) { return a.first < b.first; });
    Response response;
    response.set_accepted(accepted_);
    response.set_duplicates(duplicates_);
    response.set_created_customers(created_);
    for (auto& [row, reject] : rejects_) {
      v1::RowError* error = response.add_rejected();
      error->set_row(row);
      error->set_field(std::move(reject.field));
      error->set_message(std::move(reject.message));
    }
    return response;
  }

  // What one attempt at storing the pending batch did.
  struct Outcome {
    int64_t accepted = 0;
    int64_t duplicates = 0;
    std::vector<std::pair<int64_t, Reject>> rejects;
    // Refs whose customers this attempt created: ref key -> customer id.
    absl::flat_hash_map<std::string, std::string> created;
  };

  // Sets prefix_ to the import's id prefix, stored by the first call of the
  // import (a retry gets the same one, so its rows get the same ids).
  absl::Status LoadPrefix() {
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<std::string> prefix = deps_.store->ImportPrefix(
          Traits::kKind, import_id_,
          deps_.ids->Next().substr(0, kRowIdPrefixSize));
      if (prefix.ok()) {
        prefix_ = *std::move(prefix);
        return absl::OkStatus();
      }
      if (!absl::IsAlreadyExists(prefix.status()) ||
          attempt >= BulkImportLogic::kMaxAttempts) {
        return prefix.status();
      }
    }
  }

  void RejectRow(int64_t row, Reject reject) {
    ++rejected_;
    metrics::CountImportRows(Traits::kImport, 0, 0, 1);
    if (rejects_.size() < BulkImportLogic::kMaxListedRejects) {
      rejects_.emplace_back(row, std::move(reject));
    }
  }

  // Validates one row and queues it, or records why not. Fails only for
  // errors that are not the row's fault.
  absl::Status Add(const Row& row) {
    if (row.row() <= 0 || row.row() > kMaxRowIdRow) {
      RejectRow(
          row.row(),
          {"row", absl::StrCat("must be the row's line number, from 1 to ",
                               kMaxRowIdRow)});
      return absl::OkStatus();
    }
    if (row.customer_ref().empty()) {
      RejectRow(row.row(), {"customer_ref", "is required"});
      return absl::OkStatus();
    }
    RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const Ref> ref,
                             ParseRef(row.customer_ref()));
    if (ref->error != nullptr) {
      RejectRow(row.row(), *ref->error);
      return absl::OkStatus();
    }
    PendingRow<Record> pending;
    pending.row = row.row();
    std::string content = absl::StrCat(ref->key, kSep);
    if (std::optional<Reject> reject = Traits::Validate(
            row, deps_.options, now_us_, pending.record, content)) {
      RejectRow(row.row(), *std::move(reject));
      return absl::OkStatus();
    }
    if (absl::Status s = CheckRequestId(row.request_id()); !s.ok()) {
      RejectRow(row.row(), FromStatus(s, "request_id"));
      return absl::OkStatus();
    }
    pending.ref = std::move(ref);
    pending.ref_text = row.customer_ref();
    pending.id = row.request_id().empty()
                     ? RowId(prefix_, row.row())
                     : KeyedId(Traits::kRequestScope, row.request_id());
    pending.record.request.id = row.request_id();
    pending.record.request.hash = Fingerprint(content);
    pending_.push_back(std::move(pending));
    return absl::OkStatus();
  }

  // The parsed form of a ref, from the cache or
  // CustomerLogic::ParseCustomerRef.
  absl::StatusOr<std::shared_ptr<const Ref>> ParseRef(const std::string& text) {
    if (auto it = refs_.find(text); it != refs_.end()) return it->second;
    auto ref = std::make_shared<Ref>();
    absl::StatusOr<std::variant<std::string, IdentityQuery>> parsed =
        deps_.customers->ParseCustomerRef(text, "customer_ref");
    if (!parsed.ok()) {
      if (!absl::IsInvalidArgument(parsed.status())) return parsed.status();
      ref->error = std::make_shared<const Reject>(
          FromStatus(parsed.status(), "customer_ref"));
    } else if (std::holds_alternative<std::string>(*parsed)) {
      ref->is_id = true;
      ref->details = std::make_unique<RefDetails>();
      ref->details->id = std::get<std::string>(*parsed);
      ref->key = absl::StrCat("id", kSep, ref->details->id);
    } else {
      IdentityQuery& query = std::get<IdentityQuery>(*parsed);
      auto details = std::make_unique<RefDetails>();
      if (!query.email.empty()) {
        details->identity = {Identity::Kind::kEmail, "", EmailKey(query.email)};
        details->display_name = query.email;
        query.phone.clear();
        query.external_ids.clear();
      } else if (!query.phone.empty()) {
        details->identity = {Identity::Kind::kPhone, "", query.phone};
        details->display_name = query.phone;
        query.external_ids.clear();
      } else if (!query.external_ids.empty()) {
        const ExternalIdRecord& e = query.external_ids.front();
        details->identity = {Identity::Kind::kExternalId, e.source, e.id};
        details->display_name = absl::StrCat(e.source, ":", e.id);
        query.external_ids.resize(1);
      } else {
        ref->error = RejectOf("customer_ref", "names no customer");
      }
      details->display_name =
          Truncate(details->display_name, kMaxDisplayNameBytes);
      ref->key = IdentityKey(details->identity);
      details->query = std::move(query);
      ref->details = std::move(details);
    }
    refs_.emplace(text, ref);
    return std::shared_ptr<const Ref>(std::move(ref));
  }

  // Stores the pending batch, re-running it when a concurrent writer took a
  // unique key (an identity, a request id) first.
  absl::Status Flush() {
    if (pending_.empty()) return absl::OkStatus();
    const size_t limit = std::min(kMaxCacheEntries, share_.limit());
    if (refs_.size() > limit || resolved_.size() > limit) {
      RAPPORT_RETURN_IF_ERROR(ForgetRefs());
    }
    // The first attempt writes without looking up the batch's keys: a
    // retried row fails the write on its unique key, and the attempts after
    // that look the keys up first.
    bool check_keys = false;
    // A batch that loses the race to create its new customers to concurrent
    // imports of the same ones (or to the other streams of its own import),
    // each time with fewer left to create, is getting on: such a run is not
    // an attempt lost.
    size_t fewest_to_create = std::numeric_limits<size_t>::max();
    int free_runs = 0;
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<Outcome> outcome = TryFlush(check_keys);
      if (outcome.ok()) {
        accepted_ += outcome->accepted;
        duplicates_ += outcome->duplicates;
        // Counted as stored, so that a scrape sees a long import move, and
        // one cut short counts what it stored.
        metrics::CountImportRows(Traits::kImport, outcome->accepted,
                                 outcome->duplicates, 0);
        created_ += static_cast<int64_t>(outcome->created.size());
        for (auto& [row, reject] : outcome->rejects)
          RejectRow(row, std::move(reject));
        if (created_here_.size() + outcome->created.size() > kMaxCreatedHere) {
          created_here_.clear();  // they are then asked about, as any
        }
        for (auto& [key, id] : outcome->created) {
          if (recent_.has_value()) created_here_.insert(id);
          resolved_[key] = Resolution{id, nullptr};
        }
        SlimResolvedRefs();
        pending_.clear();
        // A change since the cached refs were resolved (an identity moved
        // anywhere) would send every later batch through the write's
        // checks: the cache starts afresh from the count now. (A failed
        // read keeps the older count, and the checks with it.)
        if (absl::StatusOr<int64_t> now = deps_.store->CustomerChanges();
            now.ok() && *now != changes_seen_) {
          ForgetRefs().IgnoreError();
        }
        return absl::OkStatus();
      }
      if (policy_failed_) return outcome.status();
      if (absl::IsFailedPrecondition(outcome.status()) &&
          attempt < BulkImportLogic::kMaxAttempts) {
        // A customer changed under the batch: look every ref up again.
        RAPPORT_RETURN_IF_ERROR(ForgetRefs());
        continue;
      }
      if (!absl::IsAlreadyExists(outcome.status())) return outcome.status();
      if (!check_keys) {
        check_keys = true;
        --attempt;  // not a lost race
        fewest_to_create = to_create_;
        continue;
      }
      if (to_create_ < fewest_to_create && ++free_runs < imports::kMaxRuns) {
        fewest_to_create = to_create_;
        --attempt;  // fewer to create than before: getting on
      }
      if (attempt < BulkImportLogic::kMaxAttempts) {
        absl::SleepFor(imports::LostRacePause(attempt));
      } else {
        // The collision's own text (the database's, naming another
        // customer's key) goes to the log only.
        LogError(ProcessService(), "import batch kept colliding",
                 {{"import", import_id_},
                  {"attempts", absl::StrCat(attempt)},
                  {"error", outcome.status().ToString()}});
        return absl::AbortedError(
            absl::StrCat("import ", import_id_,
                         ": a batch collided with concurrent writers ", attempt,
                         " times; retry the import"));
      }
    }
  }

  // The reject of a row whose key is stored (or queued) with other content.
  Reject KeyReused(const PendingRow<Record>& p) const {
    if (p.record.request.id.empty()) {
      // The client names the row by its line; this names the import only.
      return {"row",
              absl::StrCat("was imported before under import id \"", import_id_,
                           "\", by an earlier run or earlier in this one, "
                           "with other content (a row number names one row)")};
    }
    return {"request_id", "was already used for other content"};
  }

  absl::StatusOr<Outcome> TryFlush(bool check_keys) {
    policy_failed_ = false;
    Outcome outcome;
    // 1. Idempotency: which row ids are stored already (when asked to look),
    // and with what content; an id twice in the batch is stored once.
    std::vector<StoredRow> stored;
    if (check_keys) {
      std::vector<std::string> ids;
      ids.reserve(pending_.size());
      absl::flat_hash_set<absl::string_view> seen;
      for (const PendingRow<Record>& p : pending_) {
        if (seen.insert(p.id).second) ids.push_back(p.id);
      }
      RAPPORT_ASSIGN_OR_RETURN(stored,
                               deps_.store->FindRows(Traits::kKind, ids));
    }
    absl::flat_hash_map<std::string, std::string> hash_of;
    for (StoredRow& s : stored) hash_of[s.id] = std::move(s.hash);
    std::vector<size_t> fresh_rows;
    for (size_t i = 0; i < pending_.size(); ++i) {
      const std::string& hash = pending_[i].record.request.hash;
      auto [it, inserted] = hash_of.try_emplace(pending_[i].id, hash);
      if (inserted) {
        fresh_rows.push_back(i);
      } else if (it->second == hash) {
        ++outcome.duplicates;
      } else if (it->second == CustomerStore::kErasedHash) {
        outcome.rejects.emplace_back(
            pending_[i].row,
            Reject{pending_[i].record.request.id.empty() ? "row" : "request_id",
                   CustomerStore::kErasedRequest});
      } else {
        outcome.rejects.emplace_back(pending_[i].row, KeyReused(pending_[i]));
      }
    }

    // 2. Customers: resolve the refs not seen before, create unknown
    // identities.
    std::vector<const Ref*> unresolved;
    {
      absl::flat_hash_set<absl::string_view> asked;
      for (size_t i : fresh_rows) {
        const Ref& ref = *pending_[i].ref;
        if (!ref.slim() && !resolved_.contains(ref.key) &&
            asked.insert(ref.key).second) {
          unresolved.push_back(&ref);
        }
      }
    }
    std::vector<CustomerRecord> new_customers;
    RAPPORT_RETURN_IF_ERROR(
        Resolve(unresolved, outcome.created, new_customers));
    to_create_ = new_customers.size();

    // 3. The rows, with their customers, in one transaction with the new
    // customers.
    const int64_t now_us = absl::ToUnixMicros(deps_.clock());
    std::vector<Record> rows;
    rows.reserve(fresh_rows.size());
    // The identities the rows' existing customers were found by: the write
    // checks that they still hold them if anything changed since.
    std::vector<IdentityClaim> claims;
    absl::flat_hash_set<absl::string_view> claimed;
    for (size_t i : fresh_rows) {
      const PendingRow<Record>& p = pending_[i];
      std::string customer_id;
      if (auto it = p.ref->slim() ? outcome.created.end()
                                  : outcome.created.find(p.ref->key);
          it != outcome.created.end()) {
        customer_id = it->second;
      } else {
        const Resolution& resolution =
            p.ref->slim() ? p.ref->resolution : resolved_.at(p.ref->key);
        if (resolution.error != nullptr) {
          outcome.rejects.emplace_back(p.row, *resolution.error);
          continue;
        }
        customer_id = resolution.customer_id;
        // A recent interaction with a customer who has a tier keeps to its
        // contact policy (one this call created has none yet).
        if constexpr (Traits::kKind == ImportKind::kInteractions) {
          if (recent_.has_value() && !created_here_.contains(customer_id)) {
            const InteractionRecord& r = p.record.interaction;
            absl::StatusOr<std::optional<differentiation::PolicyRefusal>>
                checked = recent_->Check(customer_id, r.interaction_time_us,
                                         now_us, r.channel, r.cost);
            if (!checked.ok()) {
              // Its own failure, never taken for a race (Flush).
              policy_failed_ = true;
              return checked.status();
            }
            std::optional<differentiation::PolicyRefusal>& no = *checked;
            // A refused row may be one stored already (by an earlier run,
            // perhaps before the customer's tier changed), which is a
            // duplicate, not a reject: the batch runs again with its keys
            // looked up first (Flush).
            if (no.has_value() && !check_keys) {
              return absl::AlreadyExistsError(
                  "a row the contact policy refuses may be stored already");
            }
            if (no.has_value()) {
              outcome.rejects.emplace_back(
                  p.row, Reject{std::move(no->field), std::move(no->message)});
              continue;
            }
          }
        }
        if (!p.ref->is_id && claimed.insert(p.ref->key).second) {
          claims.push_back(
              {IdentityOfKey(p.ref->key), resolution.merged_holder.empty()
                                              ? resolution.customer_id
                                              : resolution.merged_holder});
        }
      }
      rows.push_back(p.record);
      Traits::Complete(rows.back(), std::move(customer_id), p.id, now_us,
                       actor_);
    }
    RAPPORT_RETURN_IF_ERROR(Traits::Write(*deps_.store, new_customers, rows,
                                          claims, changes_seen_));
    outcome.accepted = static_cast<int64_t>(rows.size());
    if (deps_.rescore && !rows.empty()) {
      std::vector<std::string> customers;
      customers.reserve(rows.size());
      for (const Record& r : rows) customers.push_back(Traits::CustomerOf(r));
      std::sort(customers.begin(), customers.end());
      customers.erase(std::unique(customers.begin(), customers.end()),
                      customers.end());
      deps_.rescore(customers);
    }
    return outcome;
  }

  // Resolves `refs` into resolved_ (existing customers and refusals) and
  // `created` (ref key -> id of a customer to create, listed in `customers`).
  absl::Status Resolve(const std::vector<const Ref*>& refs,
                       absl::flat_hash_map<std::string, std::string>& created,
                       std::vector<CustomerRecord>& customers) {
    if (refs.empty()) return absl::OkStatus();
    absl::flat_hash_map<std::string, CustomerState> states;
    std::vector<std::string> want;
    std::vector<Identity> identities;
    for (const Ref* ref : refs) {
      if (ref->is_id) {
        want.push_back(ref->details->id);
      } else {
        identities.push_back(ref->details->identity);
      }
    }
    absl::flat_hash_map<std::string, std::string>
        holder_of;  // identity key -> customer id
    if (!identities.empty()) {
      RAPPORT_ASSIGN_OR_RETURN(std::vector<IdentityMatch> matches,
                               deps_.store->FindIdentities(identities));
      for (IdentityMatch& m : matches) {
        holder_of[IdentityKey(m.identity)] = m.customer.id;
        if (!m.customer.merged_into.empty())
          want.push_back(m.customer.merged_into);
        states[m.customer.id] = std::move(m.customer);
      }
    }
    // Follow merges, a level per round trip.
    absl::flat_hash_set<std::string> asked;
    for (int hop = 0; hop <= kMaxMergeHops && !want.empty(); ++hop) {
      std::vector<std::string> ask;
      for (std::string& id : want) {
        if (!states.contains(id) && asked.insert(id).second)
          ask.push_back(std::move(id));
      }
      want.clear();
      if (ask.empty()) break;
      RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerState> found,
                               deps_.store->GetCustomerStates(ask));
      for (CustomerState& s : found) {
        if (!s.merged_into.empty()) want.push_back(s.merged_into);
        std::string id = s.id;
        states[id] = std::move(s);
      }
    }

    std::vector<const Ref*> unknown;
    for (const Ref* ref : refs) {
      if (ref->is_id) {
        resolved_[ref->key] = Follow(states, ref->details->id);
      } else if (auto it = holder_of.find(ref->key); it != holder_of.end()) {
        Resolution& r = resolved_[ref->key] = Follow(states, it->second);
        if (r.customer_id != it->second) r.merged_holder = it->second;
      } else {
        unknown.push_back(ref);
      }
    }
    if (unknown.empty()) return absl::OkStatus();

    // An identity that an erase suppressed must not come back.
    std::vector<bool> suppressed(unknown.size(), false);
    if (deps_.options.suppression) {
      std::vector<std::string> hashes;
      absl::flat_hash_map<std::string, std::vector<size_t>> owners;
      for (size_t u = 0; u < unknown.size(); ++u) {
        for (std::string& h :
             deps_.customers->IdentityHashes(unknown[u]->details->query)) {
          owners[h].push_back(u);
          hashes.push_back(std::move(h));
        }
      }
      if (!hashes.empty()) {
        RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> blocked,
                                 deps_.store->SuppressedAmong(hashes));
        for (const std::string& h : blocked) {
          for (size_t u : owners[h]) suppressed[u] = true;
        }
      }
    }
    const int64_t now_us = absl::ToUnixMicros(deps_.clock());
    for (size_t u = 0; u < unknown.size(); ++u) {
      const Ref& ref = *unknown[u];
      if (suppressed[u]) {
        resolved_[ref.key] =
            Resolution{"", RejectOf("customer_ref",
                                    "names an identity of an erased customer, "
                                    "which cannot be added again")};
        continue;
      }
      CustomerRecord c;
      c.id = deps_.ids->Next();
      c.display_name = ref.details->display_name;
      c.email = ref.details->query.email;
      c.phone = ref.details->query.phone;
      c.external_ids = ref.details->query.external_ids;
      c.create_time_us = c.update_time_us = now_us;
      c.created_by = actor_;
      created[ref.key] = c.id;
      customers.push_back(std::move(c));
    }
    return absl::OkStatus();
  }

  // The live customer `start` leads to through merges, or why there is none.
  static Resolution Follow(
      const absl::flat_hash_map<std::string, CustomerState>& states,
      const std::string& start) {
    std::string id = start;
    for (int hop = 0; hop <= kMaxMergeHops; ++hop) {
      auto it = states.find(id);
      if (it == states.end()) {
        return {"", RejectOf("customer_ref",
                             absl::StrCat("customer ", id, " not found"))};
      }
      const CustomerState& s = it->second;
      if (s.merged_into.empty()) {
        if (s.erased)
          return {"", RejectOf("customer_ref",
                               absl::StrCat("customer ", id, " was erased"))};
        return {id, nullptr};
      }
      id = s.merged_into;
    }
    return {"",
            RejectOf("customer_ref",
                     absl::StrCat("customer ", start, " was merged more than ",
                                  kMaxMergeHops, " times over"))};
  }

  // Empties both caches (they go together: a slim ref needs its resolution)
  // and parses the pending rows' slim refs again.
  absl::Status ForgetRefs() {
    refs_.clear();
    resolved_.clear();
    RAPPORT_ASSIGN_OR_RETURN(changes_seen_, deps_.store->CustomerChanges());
    for (PendingRow<Record>& p : pending_) {
      if (p.ref->slim()) {
        RAPPORT_ASSIGN_OR_RETURN(p.ref, ParseRef(p.ref_text));
      }
    }
    return absl::OkStatus();
  }

  // Replaces, in the parse cache, the refs of the batch just stored whose
  // customers are known by slim copies without their details.
  void SlimResolvedRefs() {
    absl::flat_hash_map<const Ref*, std::shared_ptr<const Ref>> slim;
    for (const PendingRow<Record>& p : pending_) {
      const Ref* ref = p.ref.get();
      if (ref->details == nullptr) continue;
      auto resolution = resolved_.find(ref->key);
      if (resolution == resolved_.end()) continue;
      auto [it, inserted] = slim.try_emplace(ref);
      if (inserted) {
        auto copy = std::make_shared<Ref>();
        copy->key = ref->key;
        copy->is_id = ref->is_id;
        copy->resolution = resolution->second;
        it->second = std::move(copy);
      }
      if (auto cached = refs_.find(p.ref_text);
          cached != refs_.end() && cached->second.get() == ref) {
        cached->second = it->second;
      }
    }
  }

  const Deps& deps_;
  const std::string actor_;
  const bool force_;
  // Interactions only, when the service knows contact policies.
  std::optional<differentiation::RecentInteractions> recent_;
  // With recent_, the customers this call created (up to kMaxCreatedHere):
  // no policy holds them back, and none is read (or scored on the spot) for
  // them. And whether reading a policy failed the last attempt.
  static constexpr size_t kMaxCreatedHere = 200000;
  absl::flat_hash_set<std::string> created_here_;
  bool policy_failed_ = false;
  imports::CacheShare share_{kCacheBudget};
  std::string import_id_;
  std::string prefix_;  // the ids of rows known by number start with it
  std::vector<PendingRow<Record>> pending_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Ref>>
      refs_;                                               // by the text given
  absl::flat_hash_map<std::string, Resolution> resolved_;  // by Ref::key
  // The store's CustomerChanges() before anything in resolved_ was looked up.
  int64_t changes_seen_ = 0;
  int64_t now_us_ = 0;  // when the message of the rows being added arrived
  int64_t accepted_ = 0;
  int64_t duplicates_ = 0;
  int64_t created_ = 0;
  // How many customers the last attempt at a batch was to create.
  size_t to_create_ = 0;
  int64_t rejected_ = 0;  // all of them, listed or not
  std::vector<std::pair<int64_t, Reject>> rejects_;
};

}  // namespace

BulkImportLogic::BulkImportLogic(
    ImportStore* store, const CustomerLogic* customers, IdGenerator* ids,
    Clock clock, CustomerLogicOptions options, size_t batch_rows,
    Rescore rescore, differentiation::RecentInteractions::PolicyOf policy_of)
    : deps_{store,
            customers,
            ids,
            std::move(clock),
            std::move(options),
            std::max<size_t>(batch_rows, 1),
            std::move(rescore),
            std::move(policy_of)} {}

absl::StatusOr<v1::ImportPurchasesResponse> BulkImportLogic::ImportPurchases(
    const std::function<bool(v1::ImportPurchasesRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  return Importer<PurchaseTraits>(deps_, actor).Run(next, cancelled);
}

absl::StatusOr<v1::ImportInteractionsResponse>
BulkImportLogic::ImportInteractions(
    const std::function<bool(v1::ImportInteractionsRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled,
    bool force) {
  return Importer<InteractionTraits>(deps_, actor, force).Run(next, cancelled);
}

}  // namespace rapport::customer
