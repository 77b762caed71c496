// Reproduces the published CDNOW figures of SCORING.md section 7 from the raw
// log in ../shared/data/cdnow (see its README).

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/base/csv.h"
#include "common/base/decimal.h"
#include "common/base/timestamp.h"
#include "gtest/gtest.h"
#include "services/scoring/engine/bgnbd.h"
#include "services/scoring/engine/gamma_gamma.h"

namespace rapport::scoring {
namespace {

std::string DataDir() {
#ifdef RAPPORT_SHARED_DIR
  return std::string(RAPPORT_SHARED_DIR) + "/data/cdnow";
#else
  return "";
#endif
}

struct Log {
  std::vector<std::string> ids;
  std::vector<ActivityEvent> events;
};

// Parses CDNOW_sample.txt: master id, sample id, YYYYMMDD, cds, dollars.
bool ReadSample(const std::string& path, Log* log) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string line;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> cols =
        absl::StrSplit(line, absl::ByAnyChar(" \r\t"), absl::SkipEmpty());
    if (cols.empty()) continue;
    EXPECT_EQ(cols.size(), 5u) << line;
    if (cols.size() != 5) return false;
    rows.push_back(cols);
  }
  log->ids.reserve(rows.size());
  for (const auto& cols : rows) {
    log->ids.push_back(cols[1]);
    const std::string& d = cols[2];
    int y = 0, m = 0, day = 0;
    EXPECT_TRUE(absl::SimpleAtoi(d.substr(0, 4), &y) &&
                absl::SimpleAtoi(d.substr(4, 2), &m) &&
                absl::SimpleAtoi(d.substr(6, 2), &day));
    absl::StatusOr<Decimal> amount = Decimal::Parse(cols[4]);
    EXPECT_TRUE(amount.ok()) << cols[4];
    if (!amount.ok()) return false;
    log->events.push_back(
        {log->ids.back(), DaysFromCivil(y, m, day) * kMicrosPerDay, *amount});
  }
  // Views point into ids, which no longer reallocates.
  for (size_t i = 0; i < log->events.size(); ++i) {
    log->events[i].entity_id = log->ids[i];
  }
  return true;
}

struct SummaryCsvRow {
  int64_t x;
  double t_x, T, zbar;
};

std::vector<SummaryCsvRow> ReadSummaryCsv(const std::string& path,
                                          bool with_zbar) {
  std::ifstream in(path, std::ios::binary);
  CsvReader reader(&in);
  std::vector<SummaryCsvRow> out;
  absl::StatusOr<bool> more = reader.Next();  // header
  EXPECT_TRUE(more.ok() && *more);
  while (true) {
    more = reader.Next();
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    SummaryCsvRow r{0, 0, 0, 0};
    EXPECT_TRUE(absl::SimpleAtoi(reader.field(1), &r.x));
    EXPECT_TRUE(absl::SimpleAtod(reader.field(2), &r.t_x));
    EXPECT_TRUE(absl::SimpleAtod(reader.field(3), &r.T));
    if (with_zbar) {
      EXPECT_TRUE(absl::SimpleAtod(reader.field(4), &r.zbar));
    }
    out.push_back(r);
  }
  return out;
}

class Cdnow : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = DataDir();
    if (dir_.empty() || !std::ifstream(dir_ + "/CDNOW_sample.txt")) {
      GTEST_SKIP() << "needs ../shared/data/cdnow next to the source tree "
                      "(CDNOW_sample.txt not found in '"
                   << dir_ << "')";
    }
    ASSERT_TRUE(ReadSample(dir_ + "/CDNOW_sample.txt", &log_));
    const int64_t as_of =
        *ParseRfc3339Micros("1997-09-30T00:00:00Z");  // end of week 39
    absl::StatusOr<SummaryTable> s =
        BuildSummaries(log_.events, as_of, TimeUnit::kWeek);
    ASSERT_TRUE(s.ok()) << s.status();
    summaries_ = *std::move(s);
  }

  std::string dir_;
  Log log_;
  SummaryTable summaries_;
};

TEST_F(Cdnow, RebuildsTheSummaryFilesFromTheRawLog) {
  ASSERT_EQ(log_.events.size(), 6919u);
  std::vector<SummaryCsvRow> file =
      ReadSummaryCsv(dir_ + "/cdnow_customers_summary.csv", false);
  std::vector<SummaryCsvRow> with_zbar = ReadSummaryCsv(
      dir_ + "/cdnow_customers_summary_with_transactions.csv", true);
  ASSERT_EQ(file.size(), 2357u);
  ASSERT_EQ(with_zbar.size(), 2357u);
  ASSERT_EQ(summaries_.size(), 2357u);
  int64_t repeat = 0;
  for (size_t i = 0; i < file.size(); ++i) {
    const CustomerSummary& s = summaries_.rows[i];
    int64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(summaries_.id(i), &id));
    ASSERT_EQ(id, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(s.x, file[i].x) << "ID " << id;
    EXPECT_EQ(std::round(s.t_x * 100), std::round(file[i].t_x * 100))
        << "ID " << id;
    EXPECT_EQ(std::round(s.T * 100), std::round(file[i].T * 100))
        << "ID " << id;
    // zbar is rounded half-up to cents in the file.
    EXPECT_NEAR(std::floor(s.avg_repeat_spend * 100 + 0.5 + 1e-9) / 100,
                with_zbar[i].zbar, 1e-9)
        << "ID " << id;
    repeat += s.x;
  }
  EXPECT_EQ(repeat, 2457);
}

TEST_F(Cdnow, BgNbdFitMatchesThePublishedEstimates) {
  absl::StatusOr<BgNbdFit> fit = FitBgNbd(summaries_.rows);
  ASSERT_TRUE(fit.ok()) << fit.status();
  const BgNbdParams& p = fit->params;
  EXPECT_LT(std::fabs(p.r - 0.243), 5e-4) << p.r;
  EXPECT_LT(std::fabs(p.alpha - 4.414), 5e-4) << p.alpha;
  EXPECT_LT(std::fabs(p.a - 0.793), 5e-4) << p.a;
  EXPECT_LT(std::fabs(p.b - 2.426), 5e-4) << p.b;
  EXPECT_NEAR(fit->log_likelihood, -9582.4, 0.1);
  EXPECT_GE(fit->log_likelihood, -9582.45);
  // The maximum: no nearby point is better.
  for (int k = 0; k < 4; ++k) {
    for (double step : {-1e-3, 1e-3}) {
      BgNbdParams q = p;
      double* v[] = {&q.r, &q.alpha, &q.a, &q.b};
      *v[k] *= 1 + step;
      EXPECT_LT(BgNbdLogLikelihood(q, summaries_.rows), fit->log_likelihood);
    }
  }
  // The summary file gives the same fit.
  std::vector<SummaryCsvRow> file =
      ReadSummaryCsv(dir_ + "/cdnow_customers_summary.csv", false);
  std::vector<CustomerSummary> rounded;
  for (const SummaryCsvRow& r : file) rounded.push_back({r.x, r.t_x, r.T, 0});
  absl::StatusOr<BgNbdFit> fit2 = FitBgNbd(rounded);
  ASSERT_TRUE(fit2.ok());
  EXPECT_NEAR(fit2->params.r, 0.242593, 2e-6);
  EXPECT_NEAR(fit2->params.alpha, 4.413532, 2e-5);
  EXPECT_NEAR(fit2->params.a, 0.792886, 2e-6);
  EXPECT_NEAR(fit2->params.b, 2.425753, 2e-5);
  EXPECT_NEAR(fit2->log_likelihood, -9582.4256, 1e-3);
}

TEST_F(Cdnow, GammaGammaFitMatchesThePublishedEstimates) {
  absl::StatusOr<GammaGammaFit> fit = FitGammaGamma(summaries_.rows);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->customers, 946);
  EXPECT_EQ(fit->excluded_nonpositive, 0);
  EXPECT_LT(std::fabs(fit->params.p - 6.25), 5e-3) << fit->params.p;
  EXPECT_LT(std::fabs(fit->params.q - 3.74), 5e-3) << fit->params.q;
  EXPECT_LT(std::fabs(fit->params.gamma - 15.44), 5e-3) << fit->params.gamma;
  // To the digits shown, and the maximum: no lower than the figure, and no
  // nearby point better.
  EXPECT_NEAR(fit->log_likelihood, -4055.92, 0.005);
  EXPECT_GE(fit->log_likelihood, -4055.925);
  for (int k = 0; k < 3; ++k) {
    for (double step : {-1e-3, 1e-3}) {
      GammaGammaParams q = fit->params;
      double* v[] = {&q.p, &q.q, &q.gamma};
      *v[k] *= 1 + step;
      EXPECT_LT(GammaGammaLogLikelihood(q, summaries_.rows),
                fit->log_likelihood);
    }
  }
  // On the file's averages, rounded to cents, gamma prints as 15.45.
  std::vector<SummaryCsvRow> file = ReadSummaryCsv(
      dir_ + "/cdnow_customers_summary_with_transactions.csv", true);
  std::vector<CustomerSummary> rounded;
  for (const SummaryCsvRow& r : file)
    rounded.push_back({r.x, r.t_x, r.T, r.zbar});
  absl::StatusOr<GammaGammaFit> fit2 = FitGammaGamma(rounded);
  ASSERT_TRUE(fit2.ok());
  EXPECT_NEAR(fit2->params.p, 6.248802, 1e-4);
  EXPECT_NEAR(fit2->params.q, 3.744589, 1e-4);
  EXPECT_NEAR(fit2->params.gamma, 15.447748, 1e-3);
  // Conditional expected spend of customers 1..10, as published.
  const double expected[] = {24.65, 18.91, 35.17, 35.17, 35.17,
                             71.46, 18.91, 35.17, 27.28, 35.17};
  for (int i = 0; i < 10; ++i) {
    // Published to cents; lifetimes checks them with atol 0.01.
    EXPECT_NEAR(ConditionalExpectedSpend(fit2->params, rounded[i]), expected[i],
                0.01)
        << "customer " << i + 1;
  }
}

TEST(CdnowPublished, PredictionsAtTheFittedParameters) {
  // The maximum-likelihood estimates (README: independent fit).
  const BgNbdParams mle{0.242593, 4.413532, 0.792886, 2.425753};
  const double t[] = {0.1429, 1, 3, 31.8571, 32, 78};
  // Hardie's spreadsheet figures, to the 4 digits shown (its t = 78 value
  // differs from the exact one at the MLE by 3.7e-4).
  const double published[] = {0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576};
  // The exact values at the MLE to 12 digits (mpmath, 30 digits, checked
  // against direct numerical integration over the Beta mixing density).
  const double exact[] = {0.00781607427807, 0.0531847558857, 0.150631973255,
                          1.04049462336,    1.04373754701,   1.85797237973};
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(ExpectedPurchases(mle, t[i]), published[i], 5e-4)
        << "t=" << t[i];
    EXPECT_NEAR(ExpectedPurchases(mle, t[i]) / exact[i], 1.0, 1e-10)
        << "t=" << t[i];
  }
  EXPECT_NEAR(ConditionalExpectedPurchases(mle, 39, {2, 30.43, 38.86, 0}),
              1.226, 5e-4);
  EXPECT_NEAR(ConditionalExpectedPurchases(mle, 39, {2, 30.43, 38.86, 0}),
              1.22591052015799, 1e-11);
}

TEST(CdnowPublished, PurchaseCountProbabilitiesAtTheRoundedParameters) {
  const BgNbdParams p{0.243, 4.414, 0.793, 2.426};
  EXPECT_NEAR(ProbabilityOfPurchases(p, 39, 0), 0.5737864, 1e-6);
  EXPECT_NEAR(ProbabilityOfPurchases(p, 2, 10) / 1.07869e-07, 1.0, 1e-4);
  // Probabilities over n sum to 1.
  double total = 0;
  for (int n = 0; n < 400; ++n) total += ProbabilityOfPurchases(p, 39, n);
  EXPECT_NEAR(total, 1.0, 1e-6);
}

}  // namespace
}  // namespace rapport::scoring
