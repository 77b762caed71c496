// The row importer (common/import/row_import.h) against a store of our own:
// references resolved once per import, and resolved anew after a lost race.
#include "common/import/row_import.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/import/cache_share.h"
#include "common/metrics/metrics.h"
#include "common/validation.h"
#include "tests/support/names_field.h"

namespace rapport::imports {
namespace {

struct Raw {
  int64_t number = 0;
  std::string ref;
  std::string id;  // the row's request id
  int64_t row() const { return number; }
  const std::string& request_id() const { return id; }
};

struct Request {
  std::string id;
  std::vector<Raw> raw;
  const std::string& import_id() const { return id; }
  int rows_size() const { return static_cast<int>(raw.size()); }
  const std::vector<Raw>& rows() const { return raw; }
  void Clear() {
    id.clear();
    raw.clear();
  }
};

struct Record {};

// Entities "e:N" exist; "ext:N" are created on first write.
class FakeStore : public Store<Record> {
 public:
  absl::StatusOr<std::string> Prefix(const std::string&,
                                     const std::string&) override {
    return std::string("0000000000000000");
  }
  absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> Resolve(
      const std::vector<std::string>& refs, bool) override {
    resolved.insert(resolved.end(), refs.begin(), refs.end());
    absl::flat_hash_map<std::string, Resolved> out;
    for (const std::string& ref : refs) {
      if (ref.starts_with("ext:") && !created.contains(ref)) {
        out[ref] = {.create = true, .id_to_create = "made-" + ref};
      } else {
        out[ref] = {.id = ref.starts_with("ext:") ? created[ref] : ref};
      }
    }
    return out;
  }
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> Stored(
      const std::vector<std::string>&) override {
    return absl::flat_hash_map<std::string, std::string>();
  }
  absl::StatusOr<Written> Write(const std::vector<Row<Record>>& rows,
                                const std::string&) override {
    if (writes++ == fail_write) {
      return absl::NotFoundError("an entity was deleted");
    }
    // A concurrent import creates one of the entities this batch is to
    // create, first.
    if (rival_creates > 0) {
      for (const Row<Record>& r : rows) {
        if (r.entity.create && !created.contains(r.ref)) {
          created[r.ref] = "rival-" + r.ref;
          --rival_creates;
          return absl::AlreadyExistsError("created meanwhile");
        }
      }
    }
    if (races_lost > 0) {
      --races_lost;
      return absl::AbortedError("deadlock");
    }
    Written w;
    for (const Row<Record>& r : rows) {
      if (r.entity.create && !created.contains(r.ref)) {
        created[r.ref] = r.entity.id_to_create;
        ++w.created;
      }
      written.push_back(r.entity.create ? r.entity.id_to_create : r.entity.id);
    }
    return w;
  }
  absl::Status Audit(const audit::Event& e) override {
    outcomes.push_back(e.outcome);
    details.push_back(e.details);
    return absl::OkStatus();
  }

  std::vector<std::string> resolved;  // every reference Resolve was asked
  absl::flat_hash_map<std::string, std::string> created;
  std::vector<std::string> written;   // the entity of every written row
  std::vector<std::string> outcomes;  // of the audited events, in order
  std::vector<std::string> details;   // likewise
  int writes = 0;
  int fail_write = -1;    // the call of Write that fails, from 0
  int rival_creates = 0;  // Writes that lose an entity to a rival import
  int races_lost = 0;     // Writes that lose a race, nothing else changing
};

absl::StatusOr<Totals> RunImport(FakeStore& store,
                                 const std::vector<std::string>& refs,
                                 size_t batch_rows,
                                 const std::function<bool()>& cancelled = {}) {
  Importer<Request, Raw, Record> importer(
      &store,
      {.kind = "things",
       .rpc = "ImportThings",
       .ref_field = "ref",
       .batch_rows = batch_rows},
      [](const Raw& raw) -> absl::StatusOr<Parsed<Record>> {
        return Parsed<Record>{.ref = raw.ref, .content = raw.ref};
      });
  // One message per batch (a batch is stored once a message fills it).
  size_t next = 0;
  return importer.Run(
      [&](Request* r) {
        if (next >= refs.size()) return false;
        r->id = "import-1";
        for (size_t end = std::min(refs.size(), next + batch_rows); next < end;
             ++next) {
          r->raw.push_back(
              {.number = static_cast<int64_t>(next + 1), .ref = refs[next]});
        }
        return true;
      },
      "user:ada", cancelled);
}

// Runs an import of one message of `rows`, each row parsed by `parse`.
absl::StatusOr<Totals> RunMessage(
    FakeStore& store,
    const std::function<absl::StatusOr<Parsed<Record>>(const Raw&)>& parse,
    std::vector<Raw> rows) {
  Importer<Request, Raw, Record> importer(
      &store, {.kind = "things", .rpc = "ImportThings", .ref_field = "ref"},
      parse);
  bool sent = false;
  return importer.Run(
      [&](Request* r) {
        if (sent) return false;
        sent = true;
        r->id = "import-1";
        r->raw = std::move(rows);
        return true;
      },
      "user:ada");
}

// Running imports share one budget of cache entries: each keeps its share
// of it while the others run, and the whole again once alone.
TEST(CacheShare, RunningImportsSplitTheBudget) {
  auto first = std::make_unique<CacheShare>(1200);
  EXPECT_EQ(first->limit(), 1200u);
  {
    CacheShare second(1200), third(1200);
    EXPECT_EQ(first->limit(), 400u);
    EXPECT_EQ(second.limit(), 400u);
  }
  EXPECT_EQ(first->limit(), 1200u);
  first.reset();
  EXPECT_EQ(CacheShare(90).limit(), 90u);
}

// rapport_import_rows_total of the imports of things, with `outcome`.
double RowsCounted(const std::string& outcome) {
  double sum = 0;
  for (const prometheus::MetricFamily& family : metrics::Registry().Collect()) {
    if (family.name != "rapport_import_rows_total") continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      int matched = 0;
      for (const prometheus::ClientMetric::Label& label : m.label) {
        matched += (label.name == "import" && label.value == "things") ||
                   (label.name == "outcome" && label.value == outcome);
      }
      if (matched == 2) sum += m.counter.value;
    }
  }
  return sum;
}

// A stream that ends because the call did (cancelled, or past its deadline)
// is not the end of the import: the rows of the batch still pending are not
// stored, the answer is CANCELLED and the import is audited as failed. The
// rows it stored are counted (as each batch is stored).
TEST(RowImport, AStreamCutShortByItsCallIsNotTheEndOfTheImport) {
  const double accepted_before = RowsCounted("accepted");
  FakeStore store;
  // Batches of 4 over messages of 4, and a last message of 2 rows that waits
  // for the end of the stream to fill its batch.
  absl::StatusOr<Totals> totals =
      RunImport(store, {"e:1", "e:2", "e:3", "e:4", "e:5", "e:6"}, 4,
                [] { return true; });
  EXPECT_TRUE(absl::IsCancelled(totals.status())) << totals.status();
  EXPECT_EQ(store.written.size(), 4u);
  EXPECT_EQ(store.outcomes, (std::vector<std::string>{"started", "failed"}));
  // The audit log says what the caller stored before the call ended.
  EXPECT_EQ(store.details.back(),
            "CANCELLED accepted=4 duplicates=0 rejected=0 created=0");
  EXPECT_EQ(RowsCounted("accepted") - accepted_before, 4);

  FakeStore whole;
  totals = RunImport(whole, {"e:1", "e:2", "e:3", "e:4", "e:5", "e:6"}, 4,
                     [] { return false; });
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(whole.written.size(), 6u);
  EXPECT_EQ(whole.outcomes, (std::vector<std::string>{"started", "ok"}));
}

TEST(RowImport, ReferencesAreResolvedOncePerImportAndCreatedOnce) {
  FakeStore store;
  // Batches of 2: [ext:1 e:1] [ext:1 e:1] [ext:2 ext:1]
  absl::StatusOr<Totals> totals =
      RunImport(store, {"ext:1", "e:1", "ext:1", "e:1", "ext:2", "ext:1"}, 2);
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->accepted, 6);
  EXPECT_EQ(totals->created, 2);
  EXPECT_EQ(store.resolved,
            (std::vector<std::string>{"e:1", "ext:1", "ext:2"}));
  EXPECT_EQ(store.written,
            (std::vector<std::string>{"made-ext:1", "e:1", "made-ext:1", "e:1",
                                      "made-ext:2", "made-ext:1"}));
}

// A batch that keeps losing the race to create its new entities to another
// import creating the same ones, each time with fewer left to create, goes
// on until it wins (here 7 runs lost, more than the 5 a batch may lose
// otherwise); one that loses its races with nothing changing gives up.
TEST(RowImport, LosingNewEntitiesToARivalIsProgressNotDefeat) {
  FakeStore store;
  store.rival_creates = 7;
  absl::StatusOr<Totals> totals = RunImport(
      store,
      {"ext:1", "ext:2", "ext:3", "ext:4", "ext:5", "ext:6", "ext:7", "ext:8"},
      8);
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->accepted, 8);
  EXPECT_EQ(totals->created, 1);  // the rival made the other 7

  FakeStore stuck;
  stuck.races_lost = kMaxAttempts;
  totals = RunImport(stuck, {"ext:1", "e:1"}, 2);
  EXPECT_TRUE(absl::IsAborted(totals.status())) << totals.status();
  EXPECT_TRUE(stuck.written.empty());
}

TEST(RowImport, ABatchThatLostARaceResolvesItsReferencesAnew) {
  FakeStore store;
  store.fail_write = 1;  // the second batch's first attempt
  absl::StatusOr<Totals> totals =
      RunImport(store, {"e:1", "e:2", "e:1", "e:3"}, 2);
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->accepted, 4);
  // The second batch knew e:1 from the first; after it failed (an entity
  // deleted), it resolved both of its references again.
  EXPECT_EQ(store.resolved,
            (std::vector<std::string>{"e:1", "e:2", "e:3", "e:1", "e:3"}));
}

// An import's first message names it: without an import id (or without any
// message) nothing is stored and the answer names import_id.
TEST(RowImport, AnImportWithoutAnIdIsRefused) {
  for (const bool any_message : {true, false}) {
    FakeStore store;
    Importer<Request, Raw, Record> importer(
        &store, {.kind = "things", .rpc = "ImportThings", .ref_field = "ref"},
        [](const Raw& raw) -> absl::StatusOr<Parsed<Record>> {
          return Parsed<Record>{.ref = raw.ref, .content = raw.ref};
        });
    absl::StatusOr<Totals> totals = importer.Run(
        [&](Request* r) {
          r->raw.push_back({.number = 2, .ref = "e:1"});
          return any_message;
        },
        "user:ada");
    EXPECT_TRUE(rapport::testing::NamesField(totals.status(), "import_id"))
        << totals.status();
    EXPECT_TRUE(store.written.empty());
  }
}

// A message of more than kMaxRowsPerMessage rows is refused, naming "rows",
// before any of its rows is stored; one of exactly that many is taken.
TEST(RowImport, AMessageOfTooManyRowsIsRefused) {
  for (const int n : {kMaxRowsPerMessage, kMaxRowsPerMessage + 1}) {
    FakeStore store;
    std::vector<Raw> rows;
    for (int i = 1; i <= n; ++i) rows.push_back({.number = i, .ref = "e:1"});
    absl::StatusOr<Totals> totals = RunMessage(
        store,
        [](const Raw& raw) -> absl::StatusOr<Parsed<Record>> {
          return Parsed<Record>{.ref = raw.ref, .content = raw.ref};
        },
        std::move(rows));
    if (n == kMaxRowsPerMessage) {
      ASSERT_TRUE(totals.ok()) << totals.status();
      EXPECT_EQ(totals->accepted, n);
    } else {
      EXPECT_TRUE(absl::IsInvalidArgument(totals.status())) << totals.status();
      EXPECT_TRUE(absl::StrContains(totals.status().message(), "rows"))
          << totals.status();
      EXPECT_TRUE(store.written.empty());
    }
  }
}

// A wrong row is rejected naming its row and field, the message without the
// field in front; a failure of the service while parsing (not the row's
// fault) ends the import instead of rejecting the row for it.
TEST(RowImport, AWrongRowIsRejectedNamingItsFieldOnceAndAFailureEndsTheImport) {
  const auto parse = [](const Raw& raw) -> absl::StatusOr<Parsed<Record>> {
    if (raw.ref == "bad") return InvalidField("ref", "is wrong");
    if (raw.ref == "down") return absl::UnavailableError("database lost");
    return Parsed<Record>{.ref = raw.ref, .content = raw.ref};
  };
  const auto run = [&](FakeStore& store, const std::vector<Raw>& rows) {
    return RunMessage(store, parse, rows);
  };
  FakeStore store;
  absl::StatusOr<Totals> totals =
      run(store, {{.number = 1, .ref = "e:1"},
                  {.number = 2, .ref = "bad"},
                  {.number = 3, .ref = "e:1", .id = std::string(129, 'r')}});
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->accepted, 1);
  ASSERT_EQ(totals->rejects.size(), 2u);
  EXPECT_EQ(totals->rejects[0].row, 2);
  EXPECT_EQ(totals->rejects[0].field, "ref");
  EXPECT_EQ(totals->rejects[0].message, "is wrong");
  EXPECT_EQ(totals->rejects[1].row, 3);
  EXPECT_EQ(totals->rejects[1].field, "request_id");
  EXPECT_FALSE(absl::StrContains(totals->rejects[1].message, "request_id"))
      << totals->rejects[1].message;

  FakeStore failing;
  totals =
      run(failing, {{.number = 1, .ref = "e:1"}, {.number = 2, .ref = "down"}});
  EXPECT_TRUE(absl::IsUnavailable(totals.status())) << totals.status();
  EXPECT_TRUE(failing.written.empty());
}

// Past kMaxListedRejects, the rejects listed are the first by row, however
// late the early rows were found wrong (here the file's rows come in reverse
// order, over two messages).
TEST(RowImport, TheRejectsListedAreTheFirstByRow) {
  const int64_t n = static_cast<int64_t>(kMaxListedRejects) + 5;
  FakeStore store;
  Importer<Request, Raw, Record> importer(
      &store, {.kind = "things", .rpc = "ImportThings", .ref_field = "ref"},
      [](const Raw&) -> absl::StatusOr<Parsed<Record>> {
        return InvalidField("ref", "is wrong");
      });
  int64_t next = n;
  absl::StatusOr<Totals> totals = importer.Run(
      [&](Request* r) {
        if (next == 0) return false;
        r->id = "import-1";
        for (int k = 0; k < kMaxRowsPerMessage && next > 0; ++k, --next) {
          r->raw.push_back({.number = next, .ref = "x"});
        }
        return true;
      },
      "user:ada");
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->rejected, n);
  ASSERT_EQ(totals->rejects.size(), kMaxListedRejects);
  EXPECT_EQ(totals->rejects.front().row, 1);
  EXPECT_EQ(totals->rejects.back().row,
            static_cast<int64_t>(kMaxListedRejects));
  EXPECT_TRUE(std::is_sorted(
      totals->rejects.begin(), totals->rejects.end(),
      [](const Reject& a, const Reject& b) { return a.row < b.row; }));
}

// Two rejects of one row number keep the order they were found in.
TEST(RowImport, RejectsOfOneRowKeepTheOrderFound) {
  FakeStore store;
  absl::StatusOr<Totals> totals =
      RunMessage(store,
                 [](const Raw& raw) -> absl::StatusOr<Parsed<Record>> {
                   return InvalidField("ref", raw.ref);
                 },
                 {{.number = 5, .ref = "first"},
                  {.number = 5, .ref = "second"},
                  {.number = 3, .ref = "third"},
                  {.number = 5, .ref = "fourth"}});
  ASSERT_TRUE(totals.ok()) << totals.status();
  std::vector<std::string> order;
  for (const Reject& r : totals->rejects) {
    order.push_back(absl::StrCat(r.row, " ", r.message));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"3 third", "5 first", "5 second",
                                             "5 fourth"}));
}

}  // namespace
}  // namespace rapport::imports
