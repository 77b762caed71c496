// rapportctl scoring rfm|clv: differentiation values from CSV files, computed
// by the scoring service. The file formats are a contract (see `rapportctl
// help`).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "common/validation.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/csv_input.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::scoring::v1;

constexpr char kEnv[] = "RAPPORT_SCORING_ADDR";
constexpr char kDefaultAddr[] = "localhost:50054";
constexpr int kBatchRows = 10000;
constexpr int64_t kMicrosPerDay = 86'400'000'000;

// Progress on stderr for runs longer than a second, at most once a second.
class Progress {
 public:
  explicit Progress(std::string what)
      : what_(std::move(what)), start_(absl::Now()) {}
  void Update(int64_t done, const char* unit) {
    const absl::Time now = absl::Now();
    if (now - start_ < absl::Seconds(1) || now - last_ < absl::Seconds(1))
      return;
    last_ = now;
    shown_ = true;
    const double rate =
        static_cast<double>(done) / absl::ToDoubleSeconds(now - start_);
    std::cerr << absl::StrFormat("rapportctl: %s: %d %s (%.0f/s)\n", what_,
                                 done, unit, rate);
  }
  void Done(const std::string& summary) {
    if (shown_) {
      std::cerr << absl::StrFormat("rapportctl: %s: %s in %.1f s\n", what_,
                                   summary,
                                   absl::ToDoubleSeconds(absl::Now() - start_));
    }
  }

 private:
  std::string what_;
  absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  bool shown_ = false;
};

std::unique_ptr<grpc::ClientContext> StreamCall(const Context& ctx) {
  auto call = std::make_unique<grpc::ClientContext>();
  ctx.Authorize(call.get());
  absl::Duration timeout = absl::Hours(1);  // long runs; --timeout overrides
  if (ctx.args.Has("timeout")) timeout = ctx.timeout;
  call->set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  return call;
}

absl::StatusOr<int64_t> ParseTime(const CsvInput& in, size_t column) {
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(in.Get(column));
  if (!t.ok()) return in.Error(column, t.status().message());
  return *t;
}

absl::StatusOr<Decimal> ParseDecimal(const CsvInput& in, size_t column) {
  absl::StatusOr<Decimal> d = Decimal::Parse(in.Get(column));
  if (!d.ok()) return in.Error(column, d.status().message());
  return *d;
}

absl::Status ParseId(const CsvInput& in, size_t column) {
  if (in.Get(column).empty()) return in.Error(column, "is empty");
  if (!IsValidUtf8(in.Get(column))) {
    return in.Error(column, "is not valid UTF-8 (save the file as UTF-8)");
  }
  // What the scoring service takes (named here by the file's line).
  if (in.Get(column).size() > 256) {
    return in.Error(column, "is longer than 256 bytes");
  }
  return absl::OkStatus();
}

absl::Status SetMoney(const Decimal& d, google::type::Money* out,
                      const CsvInput& in, size_t column) {
  absl::StatusOr<google::type::Money> m = ToMoney(d, "", "amount");
  if (!m.ok()) return in.Error(column, "is too large");
  *out = *m;
  return absl::OkStatus();
}

// Reads a transactions file (entity_id,timestamp,amount) and hands each batch
// of events to `send`; stops at the first bad row.
template <typename Send>
absl::Status ReadEvents(const std::string& path, Progress& progress,
                        Send send) {
  RAPPORT_ASSIGN_OR_RETURN(
      auto in,
      CsvInput::Open(path, {{{"entity_id"}}, {{"timestamp"}}, {{"amount"}}}));
  google::protobuf::RepeatedPtrField<v1::ActivityEvent> batch;
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(bool more, in->Next());
    if (!more) break;
    RAPPORT_RETURN_IF_ERROR(ParseId(*in, 0));
    RAPPORT_ASSIGN_OR_RETURN(int64_t t, ParseTime(*in, 1));
    RAPPORT_ASSIGN_OR_RETURN(Decimal amount, ParseDecimal(*in, 2));
    v1::ActivityEvent* e = batch.Add();
    e->set_entity_id(std::string(in->Get(0)));
    *e->mutable_time() = ToTimestamp(t);
    RAPPORT_RETURN_IF_ERROR(SetMoney(amount, e->mutable_amount(), *in, 2));
    if (batch.size() == kBatchRows) {
      RAPPORT_RETURN_IF_ERROR(send(batch));
      batch.Clear();
      progress.Update(in->rows(), "rows sent");
    }
  }
  if (!batch.empty()) RAPPORT_RETURN_IF_ERROR(send(batch));
  return absl::OkStatus();
}

absl::StatusOr<double> DoubleFlag(const Args& args, const std::string& name,
                                  double fallback) {
  std::optional<std::string> v = args.Get(name);
  if (!v) return fallback;
  double out = 0;
  if (!absl::SimpleAtod(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": want a number, not \"", *v, "\""));
  }
  return out;
}

absl::StatusOr<int64_t> AsOfFlag(const Args& args) {
  std::optional<std::string> v = args.Get("as-of");
  if (!v) return absl::ToUnixMicros(absl::Now());
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(*v);
  if (!t.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--as-of: ", t.status().message()));
  return *t;
}

// Usage errors (exit 2) versus failures of files or calls (exit 1).
struct Failure {
  absl::Status status;
  bool usage = false;
};

int Report(const Failure& f) {
  if (f.usage) return UsageError(std::string(f.status.message()), "");
  return ReportError(f.status);
}

// --- rfm -----------------------------------------------------------------

absl::Status RunRfm(const Context& ctx, v1::ScoringService::Stub& stub,
                    bool* usage) {
  *usage = true;
  std::optional<std::string> transactions = ctx.args.Get("transactions");
  if (!transactions)
    return absl::InvalidArgumentError("--transactions FILE is required");
  v1::ScorePopulationRequest first;
  v1::ScoringConfig* config = first.mutable_config();
  RAPPORT_ASSIGN_OR_RETURN(int64_t as_of, AsOfFlag(ctx.args));
  *config->mutable_as_of() = ToTimestamp(as_of);
  RAPPORT_ASSIGN_OR_RETURN(int window, IntFlag(ctx.args, "window-days", 0));
  if (ctx.args.Has("window-days") && (window < 1 || window > 1000000)) {
    return absl::InvalidArgumentError(
        "--window-days: must be 1..1000000 days (leave it out for no window)");
  }
  config->set_window_days(window);
  RAPPORT_ASSIGN_OR_RETURN(int bins, IntFlag(ctx.args, "bins", 5));
  if (bins < 2 || bins > 10)
    return absl::InvalidArgumentError("--bins: must be 2..10");
  config->set_bins(bins);
  *usage = false;

  OutputFile out(ctx.args.GetOr("out", ""));
  if (!out.ok())
    return absl::InvalidArgumentError("--out: cannot create the file");
  Progress progress("scoring rfm");
  auto call = StreamCall(ctx);
  auto stream = stub.ScorePopulation(call.get());
  bool first_sent = false;
  bool broken = false;
  auto send = [&](v1::ScorePopulationRequest& request) -> absl::Status {
    if (!first_sent) {
      *request.mutable_config() = first.config();
      first_sent = true;
    }
    if (!stream->Write(request)) broken = true;
    return absl::OkStatus();
  };
  auto fail_stream = [&](absl::Status s) {
    call->TryCancel();
    stream->Finish();
    return s;
  };
  if (std::optional<std::string> entities = ctx.args.Get("entities")) {
    absl::StatusOr<std::unique_ptr<CsvInput>> in =
        CsvInput::Open(*entities, {{{"entity_id"}}});
    if (!in.ok()) return fail_stream(in.status());
    v1::ScorePopulationRequest request;
    for (;;) {
      absl::StatusOr<bool> more = (*in)->Next();
      if (!more.ok()) return fail_stream(more.status());
      if (!*more) break;
      if (absl::Status s = ParseId(**in, 0); !s.ok()) return fail_stream(s);
      request.add_entity_ids(std::string((*in)->Get(0)));
      if (request.entity_ids_size() == kBatchRows) {
        send(request).IgnoreError();
        request.Clear();
      }
    }
    if (request.entity_ids_size() > 0) send(request).IgnoreError();
  }
  absl::Status events = ReadEvents(
      *transactions, progress,
      [&](google::protobuf::RepeatedPtrField<v1::ActivityEvent>& batch)
          -> absl::Status {
        v1::ScorePopulationRequest request;
        request.mutable_events()->Swap(&batch);
        return send(request);
      });
  if (!events.ok()) return fail_stream(events);
  if (std::optional<std::string> interactions = ctx.args.Get("interactions")) {
    absl::StatusOr<std::unique_ptr<CsvInput>> in = CsvInput::Open(
        *interactions, {{{"entity_id"}}, {{"timestamp"}}, {{"cost"}}});
    if (!in.ok()) return fail_stream(in.status());
    v1::ScorePopulationRequest request;
    for (;;) {
      absl::StatusOr<bool> more = (*in)->Next();
      if (!more.ok()) return fail_stream(more.status());
      if (!*more) break;
      CsvInput& row = **in;
      if (absl::Status s = ParseId(row, 0); !s.ok()) return fail_stream(s);
      absl::StatusOr<int64_t> t = ParseTime(row, 1);
      if (!t.ok()) return fail_stream(t.status());
      absl::StatusOr<Decimal> cost = ParseDecimal(row, 2);
      if (!cost.ok()) return fail_stream(cost.status());
      if (cost->is_negative())
        return fail_stream(row.Error(2, "must not be negative"));
      v1::InteractionCost* c = request.add_costs();
      c->set_entity_id(std::string(row.Get(0)));
      *c->mutable_time() = ToTimestamp(*t);
      if (absl::Status s = SetMoney(*cost, c->mutable_cost(), row, 2);
          !s.ok()) {
        return fail_stream(s);
      }
      if (request.costs_size() == kBatchRows) {
        send(request).IgnoreError();
        request.Clear();
      }
    }
    if (request.costs_size() > 0) send(request).IgnoreError();
  }
  if (!first_sent) {
    v1::ScorePopulationRequest empty;
    send(empty).IgnoreError();
  }
  stream->WritesDone();

  CsvWriter writer(&out.stream());
  // The header goes out with the first answer (or once the call has
  // succeeded), so that a call refused outright writes nothing.
  bool headed = false;
  const auto head = [&] {
    if (!headed) writer.WriteRow(ScoreCsvHeader());
    headed = true;
  };
  v1::ScorePopulationResponse response;
  int64_t rows = 0;
  std::vector<std::string> fields;
  while (stream->Read(&response)) {
    head();
    for (const v1::EntityScore& s : response.scores()) {
      ScoreCsvFields(s.entity_id(), s, &fields);
      writer.WriteRow(fields);
    }
    rows += response.scores_size();
    progress.Update(rows, "scores received");
  }
  grpc::Status status = stream->Finish();
  (void)broken;  // a broken stream's reason comes from Finish
  if (!status.ok()) return FromGrpcStatus(status);
  head();
  if (!writer.ok()) return absl::InternalError("cannot write the output");
  progress.Done(absl::StrCat(rows, " entities scored"));
  return out.Commit();
}

// --- clv -----------------------------------------------------------------

struct ClvInputs {
  std::optional<std::string> summary;
  std::optional<std::string> transactions;
  int64_t calibration_end = 0;  // with transactions
  bool has_spend = false;
};

// Streams the customers (summaries or events) to `send`, in batches.
template <typename Request, typename Send>
absl::Status SendCustomers(const ClvInputs& inputs, Progress& progress,
                           Send send) {
  if (inputs.transactions) {
    return ReadEvents(
        *inputs.transactions, progress,
        [&](google::protobuf::RepeatedPtrField<v1::ActivityEvent>& batch) {
          Request request;
          request.mutable_events()->Swap(&batch);
          return send(request);
        });
  }
  RAPPORT_ASSIGN_OR_RETURN(
      auto in, CsvInput::Open(*inputs.summary,
                              {{{"entity_id", "ID", "id", "customer_id"}},
                               {{"frequency", "x"}},
                               {{"recency", "t_x"}},
                               {{"T"}},
                               {{"monetary_value", "zbar"}, false}}));
  Request request;
  // The service's checks of a summary, made here so that an error names the
  // file's line (the service can name only a batch and an index).
  absl::flat_hash_set<std::string> seen;
  auto number = [](absl::string_view text, double* v) {
    return absl::SimpleAtod(text, v) && std::isfinite(*v);
  };
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(bool more, in->Next());
    if (!more) break;
    RAPPORT_RETURN_IF_ERROR(ParseId(*in, 0));
    if (!seen.insert(std::string(in->Get(0))).second) {
      return in->Error(0, "is given twice; one row per customer");
    }
    v1::CustomerSummary* s = request.add_summaries();
    s->set_entity_id(std::string(in->Get(0)));
    int64_t x = 0;
    double t_x = 0, T = 0, spend = 0;
    if (!absl::SimpleAtoi(in->Get(1), &x) || x < 0) {
      return in->Error(
          1, "must be a whole number of repeat purchases, at least 0");
    }
    if (!number(in->Get(2), &t_x) || !(t_x >= 0)) {
      return in->Error(2, "must be a finite number at least 0");
    }
    if (x == 0 && t_x != 0) {
      return in->Error(2, "must be 0 when frequency is 0");
    }
    if (!number(in->Get(3), &T) || !(T >= t_x)) {
      return in->Error(3, "must be a finite number at least recency");
    }
    if (in->Has(4) && (!number(in->Get(4), &spend) || !(spend >= 0))) {
      return in->Error(4, "must be a finite number at least 0");
    }
    s->set_frequency(x);
    s->set_recency(t_x);
    s->set_age(T);
    s->set_monetary_value(spend);
    if (request.summaries_size() == kBatchRows) {
      RAPPORT_RETURN_IF_ERROR(send(request));
      request.Clear();
      progress.Update(in->rows(), "rows sent");
    }
  }
  if (request.summaries_size() > 0) RAPPORT_RETURN_IF_ERROR(send(request));
  return absl::OkStatus();
}

absl::StatusOr<bool> SummaryHasSpend(const std::string& path) {
  RAPPORT_ASSIGN_OR_RETURN(
      auto in, CsvInput::Open(path, {{{"monetary_value", "zbar"}, false}}));
  return in->Has(0);
}

// Repeat-purchase days in (calibration end, as_of] of customers first seen by
// the end.
absl::StatusOr<int64_t> HoldoutPurchases(const std::string& path,
                                         int64_t calibration_end,
                                         int64_t as_of) {
  RAPPORT_ASSIGN_OR_RETURN(
      auto in,
      CsvInput::Open(path, {{{"entity_id"}}, {{"timestamp"}}, {{"amount"}}}));
  auto day = [](int64_t micros) {
    return micros >= 0 ? micros / kMicrosPerDay
                       : -((-micros + kMicrosPerDay - 1) / kMicrosPerDay);
  };
  absl::flat_hash_set<std::string> calibrated;
  absl::flat_hash_set<std::string> holdout_days;
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(bool more, in->Next());
    if (!more) break;
    RAPPORT_ASSIGN_OR_RETURN(int64_t t, ParseTime(*in, 1));
    const int64_t d = day(t);
    std::string id(in->Get(0));
    if (d <= day(calibration_end)) {
      calibrated.insert(id);
    } else if (d <= day(as_of)) {
      holdout_days.insert(absl::StrCat(id, "\n", d));
    }
  }
  int64_t count = 0;
  for (const std::string& key : holdout_days) {
    if (calibrated.contains(key.substr(0, key.rfind('\n')))) ++count;
  }
  return count;
}

std::string Num(double v) { return absl::StrFormat("%.10g", v); }
// The same in JSON, which has no NaN or infinity: null.
std::string JsonNum(double v) { return std::isfinite(v) ? Num(v) : "null"; }

absl::Status RunClv(const Context& ctx, v1::ScoringService::Stub& stub,
                    bool* usage) {
  *usage = true;
  ClvInputs inputs;
  inputs.summary = ctx.args.Get("summary");
  inputs.transactions = ctx.args.Get("transactions");
  if (inputs.summary.has_value() == inputs.transactions.has_value()) {
    return absl::InvalidArgumentError(
        "give one of --summary FILE or --transactions FILE");
  }
  const std::string unit_name = ctx.args.GetOr("unit", "day");
  if (unit_name != "day" && unit_name != "week") {
    return absl::InvalidArgumentError("--unit: must be day or week");
  }
  const int days_per_unit = unit_name == "week" ? 7 : 1;
  RAPPORT_ASSIGN_OR_RETURN(int holdout,
                           IntFlag(ctx.args, "holdout-periods", 0));
  // At most 10,000 years of periods, so that as_of minus the holdout is a
  // time.
  if (holdout < 0 || int64_t{holdout} * days_per_unit > 3'652'425)
    return absl::InvalidArgumentError(
        "--holdout-periods: must be 0 or more, and less than 10,000 years");
  if (holdout > 0 && !inputs.transactions) {
    return absl::InvalidArgumentError("--holdout-periods needs --transactions");
  }
  RAPPORT_ASSIGN_OR_RETURN(
      double predict,
      DoubleFlag(ctx.args, "predict-periods", holdout > 0 ? holdout : 1));
  if (!(predict >= 0) || !std::isfinite(predict))
    return absl::InvalidArgumentError(
        "--predict-periods: must be a finite number, not negative");
  RAPPORT_ASSIGN_OR_RETURN(int horizon,
                           IntFlag(ctx.args, "horizon-months", 12));
  if (horizon < 1 || horizon > 120)
    return absl::InvalidArgumentError("--horizon-months: must be 1..120");
  RAPPORT_ASSIGN_OR_RETURN(double discount,
                           DoubleFlag(ctx.args, "discount-monthly", 0.01));
  if (!(discount >= 0 && discount < 1)) {
    return absl::InvalidArgumentError("--discount-monthly: must be in [0, 1)");
  }
  int64_t as_of = 0;
  if (inputs.transactions) {
    if (!ctx.args.Has("as-of"))
      return absl::InvalidArgumentError("--transactions needs --as-of");
    RAPPORT_ASSIGN_OR_RETURN(as_of, AsOfFlag(ctx.args));
    inputs.calibration_end =
        as_of - int64_t{holdout} * days_per_unit * kMicrosPerDay;
    // The calibration's end is a time too (year 1 on).
    if (inputs.calibration_end < *ParseRfc3339Micros("0001-01-01T00:00:00Z")) {
      return absl::InvalidArgumentError(
          "--holdout-periods: reaches back before year 1 from --as-of");
    }
    inputs.has_spend = true;
  }
  *usage = false;
  if (inputs.summary) {
    RAPPORT_ASSIGN_OR_RETURN(inputs.has_spend,
                             SummaryHasSpend(*inputs.summary));
  }
  const v1::TimeUnit unit =
      days_per_unit == 7 ? v1::TIME_UNIT_WEEK : v1::TIME_UNIT_DAY;

  // 1. Fit.
  Progress progress("scoring clv");
  v1::FitClvModelResponse fitted;
  {
    auto call = StreamCall(ctx);
    auto writer = stub.FitClvModel(call.get(), &fitted);
    bool first = true;
    absl::Status sent = SendCustomers<v1::FitClvModelRequest>(
        inputs, progress, [&](v1::FitClvModelRequest& request) {
          if (first) {
            v1::ClvConfig* config = request.mutable_config();
            config->set_unit(unit);
            config->set_fit_spend(inputs.has_spend);
            if (inputs.transactions)
              *config->mutable_as_of() = ToTimestamp(inputs.calibration_end);
            first = false;
          }
          writer->Write(request);
          return absl::OkStatus();
        });
    if (!sent.ok()) {
      call->TryCancel();
      writer->Finish();
      return sent;
    }
    if (first) return absl::InvalidArgumentError("no customers in the input");
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return FromGrpcStatus(status);
  }

  // 2. Predict.
  OutputFile out(ctx.args.GetOr("out", ""));
  if (!out.ok())
    return absl::InvalidArgumentError("--out: cannot create the file");
  std::optional<OutputFile> model_file;
  if (std::optional<std::string> model_out = ctx.args.Get("model-out")) {
    model_file.emplace(*model_out);
    if (!model_file->ok())
      return absl::InvalidArgumentError("--model-out: cannot create the file");
  }
  CsvWriter csv(&out.stream());
  csv.WriteRow({"entity_id", "frequency", "recency", "T", "p_alive",
                "expected_purchases", "expected_avg_spend", "clv"});
  double expected_total = 0;
  double population_expected = 0;  // E[X(t)], from the last message
  int64_t predicted = 0;
  {
    auto call = StreamCall(ctx);
    auto stream = stub.PredictClv(call.get());
    bool first = true;
    absl::Status sent = SendCustomers<v1::PredictClvRequest>(
        inputs, progress, [&](v1::PredictClvRequest& request) {
          if (first) {
            v1::PredictionConfig* config = request.mutable_config();
            *config->mutable_model() = fitted.model();
            config->set_predict_periods(predict);
            config->set_horizon_months(horizon);
            config->set_discount_monthly(discount);
            if (inputs.transactions)
              *config->mutable_as_of() = ToTimestamp(inputs.calibration_end);
            first = false;
          }
          stream->Write(request);
          return absl::OkStatus();
        });
    if (!sent.ok()) {
      call->TryCancel();
      stream->Finish();
      return sent;
    }
    stream->WritesDone();
    v1::PredictClvResponse response;
    const bool spend = fitted.model().has_gamma_gamma();
    while (stream->Read(&response)) {
      for (const v1::CustomerPrediction& p : response.predictions()) {
        csv.WriteRow({p.entity_id(), absl::StrCat(p.frequency()),
                      Num(p.recency()), Num(p.age()), Num(p.p_alive()),
                      Num(p.expected_purchases()),
                      spend ? Num(p.expected_avg_spend()) : "",
                      spend ? Num(p.clv()) : ""});
        expected_total += p.expected_purchases();
      }
      predicted += response.predictions_size();
      if (response.has_population_expected_purchases())
        population_expected = response.population_expected_purchases();
    }
    grpc::Status status = stream->Finish();
    if (!status.ok()) return FromGrpcStatus(status);
  }
  if (!csv.ok()) return absl::InternalError("cannot write the output");

  // 3. The model, as JSON.
  const v1::ClvModel& m = fitted.model();
  std::string json = absl::StrCat(
      "{\n  \"unit\": \"", unit_name,
      "\",\n  \"customers\": ", m.bgnbd().customers(),
      ",\n  \"r\": ", JsonNum(m.bgnbd().r()),
      ",\n  \"alpha\": ", JsonNum(m.bgnbd().alpha()),
      ",\n  \"a\": ", JsonNum(m.bgnbd().a()),
      ",\n  \"b\": ", JsonNum(m.bgnbd().b()),
      ",\n  \"log_likelihood\": ", JsonNum(m.bgnbd().log_likelihood()));
  if (m.has_gamma_gamma()) {
    absl::StrAppend(&json, ",\n  \"p\": ", JsonNum(m.gamma_gamma().p()),
                    ",\n  \"q\": ", JsonNum(m.gamma_gamma().q()),
                    ",\n  \"gamma\": ", JsonNum(m.gamma_gamma().gamma()),
                    ",\n  \"gg_log_likelihood\": ",
                    JsonNum(m.gamma_gamma().log_likelihood()),
                    ",\n  \"gg_customers\": ", m.gamma_gamma().customers());
  }
  absl::StrAppend(
      &json, ",\n  \"predict_periods\": ", JsonNum(predict),
      ",\n  \"horizon_months\": ", horizon,
      ",\n  \"discount_monthly\": ", JsonNum(discount),
      ",\n  \"expected_purchases_total\": ", JsonNum(expected_total),
      ",\n  \"population_expected_purchases\": ", JsonNum(population_expected));
  if (holdout > 0) {
    RAPPORT_ASSIGN_OR_RETURN(
        int64_t actual,
        HoldoutPurchases(*inputs.transactions, inputs.calibration_end, as_of));
    absl::StrAppend(&json, ",\n  \"holdout_periods\": ", holdout,
                    ",\n  \"calibration_end\": \"",
                    FormatRfc3339Micros(inputs.calibration_end),
                    "\",\n  \"holdout_actual_purchases\": ", actual);
  }
  absl::StrAppend(&json, "\n}\n");
  // Both files are whole on disk before either takes its name.
  if (model_file) {
    model_file->stream() << json;
    RAPPORT_RETURN_IF_ERROR(model_file->Flush());
  } else if (ctx.args.Has("out")) {
    std::cerr << json;
  }
  RAPPORT_RETURN_IF_ERROR(out.Flush());
  if (model_file) RAPPORT_RETURN_IF_ERROR(model_file->Commit());
  progress.Done(absl::StrCat(predicted, " customers predicted"));
  return out.Commit();
}

}  // namespace

int RunScoring(Context& ctx) {
  const auto& words = ctx.args.positional();
  if (words.size() != 2)
    return UsageError("want: rapportctl scoring rfm|clv ...", "");
  std::set<std::string> known = {"out", "transactions"};
  if (words[1] == "rfm") {
    known.insert({"entities", "interactions", "as-of", "window-days", "bins"});
  } else if (words[1] == "clv") {
    known.insert({"summary", "as-of", "unit", "holdout-periods",
                  "predict-periods", "horizon-months", "discount-monthly",
                  "model-out"});
  } else {
    return UsageError(
        absl::StrCat("unknown scoring command \"", words[1], "\""), "");
  }
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.Channel(kEnv, kDefaultAddr);
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  auto stub = v1::ScoringService::NewStub(*channel);
  bool usage = false;
  absl::Status s = words[1] == "rfm" ? RunRfm(ctx, *stub, &usage)
                                     : RunClv(ctx, *stub, &usage);
  if (s.ok()) return kExitOk;
  return Report({s, usage});
}

}  // namespace rapport::ctl
