// The financial-community service's answers on its real store (MariaDB), on
// a population small enough to work out by hand (docs/TARGETING.md):
//
//   ACME holdings      2024-03-31      2024-06-30     2024-09-30
//   Ann (shareholder)  1000 @ 10.00    1500 @ 12.00
//   Bob (shareholder)  2000 @ 10.00       0 @ 12.00   (sold out)
//   Eve (shareholder)   800 @ 10.00     600 @ 12.00
//   Fay (shareholder)   400 @ 10.00     100 @ 12.00
//   Dan (investor)                                    3000 @ 15.00 (after
//   as_of) Cat (investor)     PEER: 500 @ 40.00 on 2024-06-30
//
//   engagements: Ann 2024-06-01, Eve 2024-06-15, Fay 2024-07-01T00:00Z
//   (= as_of), Dan 2024-06-20; Bob and Cat never.
//   ACME coverage: Gus buy 15 (01-15), neutral 13 (04-10), underperform 9
//   (06-20); Hal outperform 16 (05-01); Ivy buy 20 (08-01, after as_of).
//
// Also: every RPC's bad input names its field, not-found names the id,
// retries store nothing twice, and the member's facts follow SCORING.md
// section 10 (market value at as_of, only with a counted engagement).
#include "services/financial_community/community_logic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/base/timestamp.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/ids.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "services/financial_community/community_import.h"
#include "services/financial_community/community_rules.h"
#include "services/financial_community/community_values.h"
#include "services/financial_community/mysql_community_store.h"
#include "tests/support/at_once.h"
#include "tests/support/database.h"
#include "tests/support/names_field.h"
#include "tests/support/rescore_recorder.h"
#include "tests/support/streams.h"

namespace rapport::community {
namespace {

namespace cv1 = ::rapport::common::v1;
namespace d = ::rapport::differentiation;

int64_t At(const std::string& rfc3339) { return *ParseRfc3339Micros(rfc3339); }

const int64_t kAsOf = At("2024-07-01T00:00:00Z");

google::type::Money Usd(const std::string& amount) {
  return *ToMoney(*Decimal::Parse(amount), "USD", "amount");
}

google::type::Date Date(int y, int m, int day) {
  google::type::Date out;
  out.set_year(y);
  out.set_month(m);
  out.set_day(day);
  return out;
}

std::string Text(const google::type::Money& m) {
  return FromMoney(m, "m")->ToString();
}

using testing::NamesField;

class CommunityLogicTest : public ::testing::Test {
 protected:
  CommunityLogicTest()
      : db_(CommunitySchema()),
        store_(&db_.pool()),
        logic_(
            &store_, &ids_, [this] { return absl::FromUnixMicros(now_); },
            {.currency = "USD"}, nullptr) {}

  std::string Create(const std::string& name, v1::MemberKind kind) {
    v1::CreateMemberRequest r;
    r.mutable_member()->set_display_name(name);
    r.mutable_member()->set_kind(kind);
    absl::StatusOr<v1::Member> m = logic_.CreateMember(r, "user:ada");
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->id() : "";
  }

  // What `record` answers when it runs at the end of `date`, if that is later
  // than the clock: a position or a rating is reported once its day has come,
  // and the population has some after kAsOf.
  template <typename Record>
  auto ReportedOnItsDay(const google::type::Date& date, Record record) {
    const int64_t clock = now_;
    now_ = std::max(now_, *DateEnd(date, "date"));
    auto answer = record();
    now_ = clock;
    return answer;
  }

  void Hold(const std::string& member, const std::string& security,
            google::type::Date date, int64_t shares, const std::string& price) {
    v1::RecordHoldingRequest r;
    v1::Holding* h = r.mutable_holding();
    h->set_member_id(member);
    h->set_security(security);
    *h->mutable_date() = date;
    h->set_shares(shares);
    *h->mutable_price() = Usd(price);
    absl::StatusOr<v1::Holding> stored = ReportedOnItsDay(
        date, [&] { return logic_.RecordHolding(r, "user:ada"); });
    ASSERT_TRUE(stored.ok()) << stored.status();
  }

  void Meet(const std::vector<std::string>& members, const std::string& time,
            const std::string& cost = "300", const std::string& request = "") {
    v1::LogEngagementRequest r;
    for (const std::string& m : members) r.add_member_ids(m);
    r.set_kind(v1::ENGAGEMENT_KIND_MEETING);
    *r.mutable_time() = ToTimestamp(At(time));
    *r.mutable_cost() = Usd(cost);
    r.set_request_id(request);
    absl::StatusOr<v1::LogEngagementResponse> e =
        logic_.LogEngagement(r, "user:ada");
    ASSERT_TRUE(e.ok()) << e.status();
  }

  void Rate(const std::string& analyst, google::type::Date date,
            const std::string& words, const std::string& target) {
    v1::RecordCoverageRequest r;
    v1::Coverage* c = r.mutable_coverage();
    c->set_member_id(analyst);
    c->set_security("ACME");
    *c->mutable_date() = date;
    c->set_rating_text(words);
    *c->mutable_target_price() = Usd(target);
    absl::StatusOr<v1::Coverage> stored = ReportedOnItsDay(
        date, [&] { return logic_.RecordCoverage(r, "user:ada"); });
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->recorded_by(), "user:ada");
  }

  // The population of the file comment.
  void Populate() {
    ann_ = Create("Ann Holdings", v1::MEMBER_KIND_SHAREHOLDER);
    bob_ = Create("Bob Capital", v1::MEMBER_KIND_SHAREHOLDER);
    cat_ = Create("Cat Partners", v1::MEMBER_KIND_INVESTOR);
    dan_ = Create("Dan Fund", v1::MEMBER_KIND_INVESTOR);
    eve_ = Create("Eve Advisors", v1::MEMBER_KIND_SHAREHOLDER);
    fay_ = Create("Fay Trust", v1::MEMBER_KIND_SHAREHOLDER);
    gus_ = Create("Gus Research", v1::MEMBER_KIND_ANALYST);
    hal_ = Create("Hal Securities", v1::MEMBER_KIND_ANALYST);
    ivy_ = Create("Ivy Bank", v1::MEMBER_KIND_ANALYST);
    const google::type::Date q1 = Date(2024, 3, 31), q2 = Date(2024, 6, 30);
    Hold(ann_, "ACME", q1, 1000, "10");
    Hold(ann_, "ACME", q2, 1500, "12");
    Hold(bob_, "ACME", q1, 2000, "10");
    Hold(bob_, "ACME", q2, 0, "12");
    Hold(eve_, "ACME", q1, 800, "10");
    Hold(eve_, "ACME", q2, 600, "12");
    Hold(fay_, "ACME", q1, 400, "10");
    Hold(fay_, "ACME", q2, 100, "12");
    Hold(dan_, "ACME", Date(2024, 9, 30), 3000, "15");
    Hold(cat_, "PEER", q2, 500, "40");
    Meet({ann_}, "2024-06-01T10:00:00Z");
    Meet({eve_}, "2024-06-15T10:00:00Z");
    Meet({fay_}, "2024-07-01T00:00:00Z");
    Meet({dan_}, "2024-06-20T10:00:00Z");
    Rate(gus_, Date(2024, 1, 15), "buy", "15");
    Rate(gus_, Date(2024, 4, 10), "Neutral", "13");
    Rate(gus_, Date(2024, 6, 20), "Underperform", "9");
    Rate(hal_, Date(2024, 5, 1), "Outperform", "16");
    Rate(ivy_, Date(2024, 8, 1), "buy", "20");
  }

  int64_t now_ = kAsOf;
  IdGenerator ids_;
  testing::MigratedDatabase db_;
  MysqlCommunityStore store_;
  CommunityLogic logic_;
  std::string ann_, bob_, cat_, dan_, eve_, fay_, gus_, hal_, ivy_;
};

// NOT_FOUND, naming the id that was asked for.
bool NotFoundNaming(const absl::Status& s, const std::string& id) {
  return absl::IsNotFound(s) && absl::StrContains(s.message(), id);
}

// A member's engagements list oldest first, page after page, whatever their
// ids (made from request ids, which have no time order).
TEST_F(CommunityLogicTest, EngagementsListOldestFirstAcrossPages) {
  const std::string m = Create("Max Holdings", v1::MEMBER_KIND_SHAREHOLDER);
  const std::vector<std::string> times = {
      "2024-05-03T10:00:00Z", "2024-01-09T10:00:00Z", "2024-06-30T10:00:00Z",
      "2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z"};
  for (size_t i = 0; i < times.size(); ++i) {
    Meet({m}, times[i], "10", absl::StrCat("crm-", i));
  }
  v1::ListEngagementsRequest list;
  list.set_member_id(m);
  list.set_page_size(2);
  std::vector<int64_t> seen;
  std::vector<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<v1::ListEngagementsResponse> r =
        logic_.ListEngagements(list);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const v1::Engagement& e : r->engagements()) {
      seen.push_back(FromTimestamp(e.time(), "t").value());
      ids.push_back(e.id());
    }
    if (r->next_page_token().empty()) break;
    list.set_page_token(r->next_page_token());
  }
  std::vector<int64_t> want;
  for (const std::string& t : times) want.push_back(At(t));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);
  // Two at one time: by id, and each once.
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_LT(ids[1], ids[2]);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 5u);
}

TEST_F(CommunityLogicTest, TheRegisterShowsHoldersAsOfADateLargestFirst) {
  Populate();
  v1::GetRegisterRequest r;
  *r.mutable_as_of() = Date(2024, 6, 30);
  absl::StatusOr<v1::GetRegisterResponse> reg = logic_.GetRegister(r);
  ASSERT_TRUE(reg.ok()) << reg.status();
  // Bob sold out (0 shares: not a holder); Dan buys only in September.
  ASSERT_EQ(reg->positions_size(), 4);
  EXPECT_EQ(reg->positions(0).member_id(), cat_);
  EXPECT_EQ(Text(reg->positions(0).market_value()), "20000.00");
  EXPECT_EQ(reg->positions(1).member_id(), ann_);
  EXPECT_EQ(Text(reg->positions(1).market_value()), "18000.00");
  EXPECT_EQ(reg->positions(1).display_name(), "Ann Holdings");
  EXPECT_EQ(reg->positions(2).member_id(), eve_);
  EXPECT_EQ(reg->positions(3).member_id(), fay_);
  EXPECT_EQ(Text(reg->total_market_value()), "46400.00");
  EXPECT_EQ(reg->holders(), 4);

  // One security, in pages of two: the totals are the whole register's.
  r.set_security("acme");
  r.set_page_size(2);
  reg = logic_.GetRegister(r);
  ASSERT_TRUE(reg.ok()) << reg.status();
  ASSERT_EQ(reg->positions_size(), 2);
  EXPECT_EQ(Text(reg->total_market_value()), "26400.00");
  EXPECT_EQ(reg->holders(), 3);
  ASSERT_FALSE(reg->next_page_token().empty());
  r.set_page_token(reg->next_page_token());
  reg = logic_.GetRegister(r);
  ASSERT_TRUE(reg.ok()) << reg.status();
  ASSERT_EQ(reg->positions_size(), 1);
  EXPECT_EQ(reg->positions(0).member_id(), fay_);
  EXPECT_EQ(Text(reg->total_market_value()), "26400.00");
  EXPECT_EQ(reg->holders(), 3);
  EXPECT_TRUE(reg->next_page_token().empty());

  // Corrections between two pages leave the second one past the end: no
  // positions, and the totals of what is left.
  r.clear_page_token();
  reg = logic_.GetRegister(r);
  ASSERT_TRUE(reg.ok()) << reg.status();
  const std::string second_page = reg->next_page_token();
  Hold(eve_, "ACME", Date(2024, 6, 30), 0, "12");
  Hold(fay_, "ACME", Date(2024, 6, 30), 0, "12");
  r.set_page_token(second_page);
  reg = logic_.GetRegister(r);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->positions_size(), 0);
  EXPECT_EQ(Text(reg->total_market_value()), "18000.00");
  EXPECT_EQ(reg->holders(), 1);
  // Put back as they were, for the dates below.
  Hold(eve_, "ACME", Date(2024, 6, 30), 600, "12");
  Hold(fay_, "ACME", Date(2024, 6, 30), 100, "12");
  // A page goes on after the last position of the one before: Ann's sell-out
  // recorded between the two pages (one position fewer ahead) passes over
  // nobody, and a position recorded ahead of it shows nobody twice.
  for (const bool ahead : {false, true}) {
    r.clear_page_token();
    reg = logic_.GetRegister(r);
    ASSERT_TRUE(reg.ok()) << reg.status();
    ASSERT_EQ(reg->positions_size(), 2);
    EXPECT_EQ(reg->positions(1).member_id(), eve_);
    r.set_page_token(reg->next_page_token());
    if (ahead) {
      Hold(dan_, "ACME", Date(2024, 6, 29), 5000, "12");
    } else {
      Hold(ann_, "ACME", Date(2024, 6, 30), 0, "12");
    }
    reg = logic_.GetRegister(r);
    ASSERT_TRUE(reg.ok()) << reg.status();
    ASSERT_EQ(reg->positions_size(), 1) << ahead;
    EXPECT_EQ(reg->positions(0).member_id(), fay_);
    EXPECT_TRUE(reg->next_page_token().empty());
    if (ahead) {
      Hold(dan_, "ACME", Date(2024, 6, 29), 0, "12");
    } else {
      Hold(ann_, "ACME", Date(2024, 6, 30), 1500, "12");
    }
  }
  r.clear_page_token();
  // A token is for the day it was issued on: one made up for another day
  // (tokens are not signed) is refused, not read as of that day.
  {
    reg = logic_.GetRegister(r);
    ASSERT_TRUE(reg.ok()) << reg.status();
    const std::string filter =
        absl::StrCat("register/", *DateEnd(r.as_of(), "as_of"), "/",
                     absl::AsciiStrToUpper(r.security()));
    absl::StatusOr<std::string> key =
        DecodePageToken(reg->next_page_token(), filter);
    ASSERT_TRUE(key.ok()) << key.status();
    const std::string position = key->substr(0, key->rfind('@'));
    for (const int64_t other :
         {*DateEnd(Date(2024, 3, 31), "as_of"), int64_t{12345}}) {
      v1::GetRegisterRequest forged = r;
      forged.set_page_token(
          EncodePageToken(absl::StrCat(position, "@", other), filter));
      EXPECT_TRUE(NamesField(logic_.GetRegister(forged).status(), "page_token"))
          << other;
    }
  }

  // At the end of March Bob was the largest holder; at the end of the year,
  // Dan.
  v1::GetRegisterRequest march;
  *march.mutable_as_of() = Date(2024, 3, 31);
  reg = logic_.GetRegister(march);
  ASSERT_TRUE(reg.ok()) << reg.status();
  ASSERT_EQ(reg->positions_size(), 4);
  EXPECT_EQ(reg->positions(0).member_id(), bob_);
  EXPECT_EQ(Text(reg->total_market_value()), "42000.00");
  v1::GetRegisterRequest december;
  *december.mutable_as_of() = Date(2024, 12, 31);
  reg = logic_.GetRegister(december);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->positions(0).member_id(), dan_);
  EXPECT_EQ(Text(reg->positions(0).market_value()), "45000.00");
}

TEST_F(CommunityLogicTest, ChangesBetweenTwoDatesAreNewBoughtSoldAndExited) {
  Populate();
  // Gil sold 10 of 5,000 shares while the price rose from 10 to 12: its
  // position's value rose by 9,880, but it traded 120, the least of all.
  const std::string gil = Create("Gil Pension", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(gil, "ACME", Date(2024, 3, 31), 5000, "10");
  Hold(gil, "ACME", Date(2024, 6, 30), 4990, "12");
  // Kim sold out, reported at a price of 0: 3,000 shares at the 11 of its
  // previous row.
  const std::string kim = Create("Kim Fund", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(kim, "ACME", Date(2024, 3, 31), 3000, "11");
  Hold(kim, "ACME", Date(2024, 6, 30), 0, "0");
  v1::ListPositionChangesRequest r;
  *r.mutable_from() = Date(2024, 3, 31);
  *r.mutable_to() = Date(2024, 6, 30);
  absl::StatusOr<v1::ListPositionChangesResponse> changes =
      logic_.ListPositionChanges(r);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->changes_size(), 7);
  std::map<std::string, const v1::PositionChange*> by_member;
  for (const v1::PositionChange& c : changes->changes()) {
    by_member[c.member_id()] = &c;
  }
  // Largest traded value first: Kim's exit (3,000 at 11), Bob's exit (2,000
  // shares at 12), Cat's new
  // position (500 at 40), Ann's purchase (500 at 12), then the sales of Fay
  // (300 at 12), Eve (200 at 12) and Gil (10 at 12).
  std::vector<std::string> order, traded;
  for (const v1::PositionChange& c : changes->changes()) {
    order.push_back(c.member_id());
    traded.push_back(Text(c.traded_value()));
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{kim, bob_, cat_, ann_, fay_, eve_, gil}));
  EXPECT_EQ(traded, (std::vector<std::string>{"33000.00", "24000.00",
                                              "20000.00", "6000.00", "3600.00",
                                              "2400.00", "120.00"}));
  EXPECT_EQ(by_member[kim]->change(), "exited");
  EXPECT_EQ(Text(by_member[kim]->value_to()), "0.00");
  EXPECT_EQ(by_member[bob_]->change(), "exited");
  EXPECT_EQ(by_member[bob_]->shares_from(), 2000);
  EXPECT_EQ(by_member[bob_]->shares_to(), 0);
  EXPECT_EQ(by_member[cat_]->change(), "new");
  EXPECT_EQ(by_member[cat_]->security(), "PEER");
  EXPECT_EQ(by_member[ann_]->change(), "bought");
  EXPECT_EQ(Text(by_member[ann_]->value_from()), "10000.00");
  EXPECT_EQ(Text(by_member[ann_]->value_to()), "18000.00");
  EXPECT_EQ(by_member[fay_]->change(), "sold");
  EXPECT_EQ(by_member[eve_]->change(), "sold");
  EXPECT_EQ(by_member[eve_]->display_name(), "Eve Advisors");
  EXPECT_EQ(by_member[gil]->change(), "sold");
  EXPECT_EQ(Text(by_member[gil]->value_from()), "50000.00");
  EXPECT_EQ(Text(by_member[gil]->value_to()), "59880.00");

  // In pages of four: the same changes in the same order, then no token.
  v1::ListPositionChangesRequest paged = r;
  paged.set_page_size(4);
  std::vector<std::string> seen;
  for (int page = 0; page < 2; ++page) {
    absl::StatusOr<v1::ListPositionChangesResponse> p =
        logic_.ListPositionChanges(paged);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ(p->changes_size(), page == 0 ? 4 : 3) << "page " << page;
    for (const v1::PositionChange& c : p->changes()) {
      seen.push_back(c.member_id());
      EXPECT_EQ(c.display_name(), by_member[c.member_id()]->display_name());
    }
    EXPECT_EQ(p->next_page_token().empty(), page == 1) << "page " << page;
    paged.set_page_token(p->next_page_token());
  }
  std::vector<std::string> whole;
  for (const v1::PositionChange& c : changes->changes()) {
    whole.push_back(c.member_id());
  }
  EXPECT_EQ(seen, whole);

  // A page goes on after the last change of the one before: the largest
  // change corrected away between the pages (its position at `to` reported
  // as it was at `from`) passes over nothing of the second page.
  paged.clear_page_token();
  absl::StatusOr<v1::ListPositionChangesResponse> first =
      logic_.ListPositionChanges(paged);
  ASSERT_TRUE(first.ok()) << first.status();
  const v1::PositionChange top = first->changes(0);
  Hold(top.member_id(), top.security(), r.to(), top.shares_from(), "12");
  paged.set_page_token(first->next_page_token());
  absl::StatusOr<v1::ListPositionChangesResponse> second =
      logic_.ListPositionChanges(paged);
  ASSERT_TRUE(second.ok()) << second.status();
  std::vector<std::string> rest;
  for (const v1::PositionChange& c : second->changes()) {
    rest.push_back(c.member_id());
  }
  EXPECT_EQ(rest, std::vector<std::string>(whole.begin() + 4, whole.end()));

  // The reverse order of dates is refused, naming the field.
  std::swap(*r.mutable_from(), *r.mutable_to());
  EXPECT_TRUE(NamesField(logic_.ListPositionChanges(r).status(), "to"));
  v1::ListPositionChangesRequest bad_security = paged;
  bad_security.set_security("AC ME");
  EXPECT_TRUE(NamesField(logic_.ListPositionChanges(bad_security).status(),
                         "security"));
}

// The mean and the median of an even count round halves up, to the
// billionth: targets of 1, 2, 3 and 4 billionths have both at 3, not 2.
TEST_F(CommunityLogicTest, TheConsensusRoundsHalvesUpToTheBillionth) {
  for (const char* target :
       {"0.000000001", "0.000000002", "0.000000003", "0.000000004"}) {
    Rate(Create(absl::StrCat("Analyst ", target), v1::MEMBER_KIND_ANALYST),
         Date(2024, 6, 1), "buy", target);
  }
  v1::GetConsensusRequest r;
  r.set_security("ACME");
  *r.mutable_as_of() = Date(2024, 6, 30);
  absl::StatusOr<v1::GetConsensusResponse> c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 4);
  EXPECT_EQ(Text(c->mean_target()), "0.000000003");
  EXPECT_EQ(Text(c->median_target()), "0.000000003");
}

TEST_F(CommunityLogicTest, TheConsensusTakesEachAnalystsLatestRatingAsOfADate) {
  Populate();
  v1::GetConsensusRequest r;
  r.set_security("ACME");
  *r.mutable_as_of() = Date(2024, 6, 30);
  absl::StatusOr<v1::GetConsensusResponse> c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  // Gus went buy -> hold -> sell; Hal says buy; Ivy rates only in August.
  EXPECT_EQ(c->buy(), 1);
  EXPECT_EQ(c->hold(), 0);
  EXPECT_EQ(c->sell(), 1);
  EXPECT_EQ(Text(c->mean_target()), "12.50");
  EXPECT_EQ(Text(c->median_target()), "12.50");
  ASSERT_EQ(c->analysts_size(), 2);
  for (const v1::AnalystView& a : c->analysts()) {
    if (a.member_id() == gus_) {
      ASSERT_EQ(a.history_size(), 3);
      EXPECT_EQ(a.history(1).rating(), v1::RATING_HOLD);
      EXPECT_EQ(a.history(1).rating_text(), "Neutral");
      EXPECT_EQ(a.current().rating(), v1::RATING_SELL);
      EXPECT_EQ(Text(a.current().target_price()), "9.00");
      // Who recorded each rating, as read back from the store.
      EXPECT_EQ(a.current().recorded_by(), "user:ada");
      EXPECT_EQ(a.history(1).recorded_by(), "user:ada");
    } else {
      EXPECT_EQ(a.member_id(), hal_);
      EXPECT_EQ(a.current().rating(), v1::RATING_BUY);
    }
  }
  // On May 1st Gus held; at the end of the year Ivy counts too.
  *r.mutable_as_of() = Date(2024, 5, 1);
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 1);
  EXPECT_EQ(c->hold(), 1);
  EXPECT_EQ(Text(c->mean_target()), "14.50");
  *r.mutable_as_of() = Date(2024, 12, 31);
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 2);
  EXPECT_EQ(c->sell(), 1);
  EXPECT_EQ(Text(c->mean_target()), "15.00");
  EXPECT_EQ(Text(c->median_target()), "16.00");

  // Hal drops coverage on October 1st: from then on Hal counts in no figure
  // (the history shows it), and before it, as before. A dropped coverage has
  // no target price.
  v1::RecordCoverageRequest dropped;
  dropped.mutable_coverage()->set_member_id(hal_);
  dropped.mutable_coverage()->set_security("ACME");
  *dropped.mutable_coverage()->mutable_date() = Date(2024, 10, 1);
  dropped.mutable_coverage()->set_rating_text("Coverage dropped");
  *dropped.mutable_coverage()->mutable_target_price() = Usd("16");
  EXPECT_TRUE(NamesField(logic_.RecordCoverage(dropped, "user:ada").status(),
                         "coverage.target_price"));
  dropped.mutable_coverage()->clear_target_price();
  dropped.set_request_id("hal-drops-acme");
  absl::StatusOr<v1::Coverage> stored = ReportedOnItsDay(
      dropped.coverage().date(),
      [&] { return logic_.RecordCoverage(dropped, "user:ada"); });
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->rating(), v1::RATING_DROPPED);
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 1);   // Ivy
  EXPECT_EQ(c->sell(), 1);  // Gus
  EXPECT_EQ(Text(c->mean_target()), "14.50");
  EXPECT_EQ(Text(c->median_target()), "14.50");
  ASSERT_EQ(c->analysts_size(), 3);
  int hals = 0;
  for (const v1::AnalystView& a : c->analysts()) {
    if (a.member_id() != hal_) continue;
    ++hals;
    EXPECT_EQ(a.current().rating(), v1::RATING_DROPPED);
  }
  EXPECT_EQ(hals, 1);
  *r.mutable_as_of() = Date(2024, 9, 30);
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 2);
  EXPECT_EQ(Text(c->mean_target()), "15.00");
  *r.mutable_as_of() = Date(2024, 12, 31);

  // An analyst who became an investor no longer counts: coverage is an
  // analyst's.
  v1::UpdateMemberRequest change;
  change.mutable_member()->set_id(hal_);
  change.mutable_member()->set_kind(v1::MEMBER_KIND_INVESTOR);
  change.mutable_update_mask()->add_paths("kind");
  ASSERT_TRUE(logic_.UpdateMember(change, "user:ada").ok());
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 1);
  EXPECT_EQ(c->sell(), 1);
  ASSERT_EQ(c->analysts_size(), 2);  // Gus and Ivy
  for (const v1::AnalystView& a : c->analysts()) {
    EXPECT_NE(a.member_id(), hal_);
  }
  // A rating recorded while Hal was an analyst, retried, is answered as
  // stored; a new one is refused.
  const int64_t ratings = db_.Count("SELECT COUNT(*) FROM coverage");
  absl::StatusOr<v1::Coverage> retried = ReportedOnItsDay(
      dropped.coverage().date(),
      [&] { return logic_.RecordCoverage(dropped, "user:ada"); });
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->rating(), v1::RATING_DROPPED);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage"), ratings);
  dropped.set_request_id("hal-drops-acme-again");
  absl::Status refused = ReportedOnItsDay(dropped.coverage().date(), [&] {
                           return logic_.RecordCoverage(dropped, "user:ada");
                         }).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(refused.message(),
            absl::StrCat("member ", hal_,
                         " is an investor; coverage is an analyst's (record "
                         "the analyst as a member of kind analyst)"));
}

// Migration 0005 numbers the ratings stored before it in the order they were
// recorded (their create time, then id), and new ones after them.
TEST(CommunityUpgrade, To0005NumbersRatingsInTheOrderTheyWereRecorded) {
  std::vector<Migration> before;
  for (const Migration& m : CommunitySchema()) {
    if (m.version < 5) before.push_back(m);
  }
  testing::MigratedDatabase db(before);
  db.Exec(
      "INSERT INTO members (id, display_name, name_key, kind, create_time_us, "
      "update_time_us) VALUES ('m', 'Gus', 'gus', ?, 1, 1)",
      {std::to_string(v1::MEMBER_KIND_ANALYST)});
  for (const auto& [id, recorded] :
       std::vector<std::pair<std::string, std::string>>{
           {"a", "30"}, {"b", "10"}, {"c", "20"}, {"d", "10"}}) {
    db.Exec(
        "INSERT INTO coverage (id, member_id, security, end_time_us, rating, "
        "create_time_us) VALUES (?, 'm', 'ACME', 5, 1, ?)",
        {id, recorded});
  }
  absl::StatusOr<int> applied = ApplyMigrations(db.pool(), CommunitySchema());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_GE(*applied, 1);
  db.Exec(
      "INSERT INTO coverage (id, member_id, security, end_time_us, rating, "
      "create_time_us) VALUES ('0', 'm', 'ACME', 5, 1, 0)");
  EXPECT_EQ(db.Strings("SELECT id FROM coverage ORDER BY seq"),
            (std::vector<std::string>{"b", "d", "c", "a", "0"}));
}

// Two ratings of one analyst on one date: the one recorded last is current,
// whatever their ids (ids made from request ids sort in no particular order)
// and whatever the recording replicas' clocks.
TEST_F(CommunityLogicTest, OnOneDateTheRatingRecordedLastIsCurrent) {
  const std::string gus = Create("Gus Research", v1::MEMBER_KIND_ANALYST);
  // Two request ids whose ids sort against the order they are recorded in.
  std::string first = "r0", second;
  for (int i = 1; second.empty(); ++i) {
    const std::string candidate = absl::StrCat("r", i);
    if (KeyedId("coverage", candidate) < KeyedId("coverage", first)) {
      second = candidate;
    }
  }
  for (const auto& [request, words] :
       std::vector<std::pair<std::string, std::string>>{{first, "buy"},
                                                        {second, "sell"}}) {
    v1::RecordCoverageRequest r;
    v1::Coverage* c = r.mutable_coverage();
    c->set_member_id(gus);
    c->set_security("ACME");
    *c->mutable_date() = Date(2024, 6, 20);
    c->set_rating_text(words);
    r.set_request_id(request);
    ASSERT_TRUE(logic_.RecordCoverage(r, "user:ada").ok());
    // The replica that records the second rating has a clock a second
    // behind: the order recorded in is not the clocks'.
    now_ -= 1'000'000;
  }
  v1::GetConsensusRequest r;
  r.set_security("ACME");
  *r.mutable_as_of() = Date(2024, 6, 30);
  absl::StatusOr<v1::GetConsensusResponse> c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->buy(), 0);
  EXPECT_EQ(c->sell(), 1);

  // The same within one import file: the later row is current.
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  v1::ImportCoverageRequest file;
  file.set_import_id("ratings");
  for (const auto& [request, words] :
       std::vector<std::pair<std::string, std::string>>{{first, "sell"},
                                                        {second, "hold"}}) {
    v1::CoverageRow* row = file.add_rows();
    row->set_row(file.rows_size());
    row->set_member_ref(gus);
    row->set_security("ACME");
    row->set_date("2024-06-25");
    row->set_rating(words);
    row->set_request_id("file-" + request);
  }
  ASSERT_LT(KeyedId("coverage", "file-" + second),
            KeyedId("coverage", "file-" + first))
      << "pick request ids whose ids sort against the file's order";
  absl::StatusOr<v1::ImportCoverageResponse> imported =
      imports.ImportCoverage(testing::OneMessage(file), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->accepted(), 2);
  c = logic_.GetConsensus(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sell(), 0);
  EXPECT_EQ(c->hold(), 1);
}

// A member whose positions add up past the largest amount is an error
// naming it, never a wrapped (negative or small) value ranked as a target.
TEST_F(CommunityLogicTest, TargetsRefuseASumPastTheLargestAmount) {
  const std::string whale = Create("Whale", v1::MEMBER_KIND_INVESTOR);
  // A position worth more than 10^14 is refused (its value would not fit
  // the API's Money), through the RPC and an import alike.
  v1::RecordHoldingRequest big;
  big.mutable_holding()->set_member_id(whale);
  big.mutable_holding()->set_security("S0");
  *big.mutable_holding()->mutable_date() = Date(2024, 6, 28);
  big.mutable_holding()->set_shares(100'000'000'001);
  *big.mutable_holding()->mutable_price() = Usd("1000");
  EXPECT_TRUE(NamesField(logic_.RecordHolding(big, "user:ada").status(),
                         "holding.shares"));
  big.mutable_holding()->set_shares(100'000'000'000);
  EXPECT_TRUE(logic_.RecordHolding(big, "user:ada").ok());
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  v1::ImportHoldingsRequest file;
  file.set_import_id("whale");
  // The last, too many for any count: said as past the limit.
  for (const char* shares :
       {"100000000000", "100000000001", "99999999999999999999"}) {
    v1::HoldingRow* row = file.add_rows();
    row->set_row(file.rows_size());
    row->set_member_ref(whale);
    row->set_security("S1");
    row->set_date("2024-06-28");
    row->set_shares(shares);
    row->set_price("1000");
  }
  absl::StatusOr<v1::ImportHoldingsResponse> imported =
      imports.ImportHoldings(testing::OneMessage(file), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  ASSERT_EQ(imported->rejected_size(), 2);
  EXPECT_EQ(imported->rejected(0).row(), 2);
  EXPECT_EQ(imported->rejected(0).field(), "shares");
  EXPECT_EQ(imported->rejected(1).row(), 3);
  EXPECT_EQ(imported->rejected(1).field(), "shares");
  EXPECT_EQ(imported->rejected(1).message(), "is more than 10^15 shares");
  // Rows stored before that limit: 1e15 shares at 1e12 each, 1e27 a
  // position; 200 of them pass the 128-bit count of billionths (1.7e38).
  for (int i = 0; i < 200; ++i) {
    db_.Exec(
        "INSERT INTO holdings (id, member_id, security, end_time_us, shares, "
        "price, create_time_us) VALUES (?, ?, ?, ?, 1000000000000000, "
        "1000000000000, 0) ON DUPLICATE KEY UPDATE shares = VALUES(shares), "
        "price = VALUES(price)",
        {ids_.Next(), whale, absl::StrCat("S", i),
         std::to_string(*DateEnd(Date(2024, 6, 28), "date"))});
  }
  v1::ListEngagementTargetsRequest r;
  *r.mutable_as_of() = ToTimestamp(kAsOf);
  absl::Status s = logic_.ListEngagementTargets(r).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), whale)) << s;
  // One such position in the register is past what an amount carries: an
  // error naming its member, not a zero.
  v1::GetRegisterRequest one;
  *one.mutable_as_of() = Date(2024, 6, 30);
  one.set_security("S7");
  s = logic_.GetRegister(one).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), whale)) << s;
  // Nor is a total past it, of positions that each fit (5e18 each).
  const std::string orca = Create("Orca", v1::MEMBER_KIND_INVESTOR);
  for (const std::string& holder : {whale, orca}) {
    db_.Exec(
        "INSERT INTO holdings (id, member_id, security, end_time_us, shares, "
        "price, create_time_us) VALUES (?, ?, 'T', ?, 5000000, 1000000000000, "
        "0)",
        {ids_.Next(), holder,
         std::to_string(*DateEnd(Date(2024, 6, 28), "date"))});
  }
  one.set_security("T");
  one.set_page_size(1);
  s = logic_.GetRegister(one).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "total market value")) << s;
}

// An amount that fits the exact decimal but not the API's Money (a row
// stored before holdings were limited) fails the answer naming the member,
// never an empty amount.
TEST_F(CommunityLogicTest,
       AnAmountPastWhatMoneyCarriesIsAnErrorNamingTheMember) {
  const std::string giant = Create("Giant", v1::MEMBER_KIND_SHAREHOLDER);
  // 2e8 then 1e8 shares at 1e12: positions of 2e20 and 1e20.
  for (const auto& [date, shares] :
       {std::pair{Date(2024, 3, 31), "200000000"},
        std::pair{Date(2024, 6, 30), "100000000"}}) {
    db_.Exec(
        "INSERT INTO holdings (id, member_id, security, end_time_us, shares, "
        "price, create_time_us) VALUES (?, ?, 'ACME', ?, ?, 1000000000000, 0)",
        {ids_.Next(), giant, std::to_string(*DateEnd(date, "date")), shares});
  }
  v1::ListEngagementTargetsRequest targets;
  *targets.mutable_as_of() = ToTimestamp(kAsOf);
  absl::Status s = logic_.ListEngagementTargets(targets).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), giant)) << s;
  v1::ListAtRiskHoldersRequest risk;
  *risk.mutable_as_of() = ToTimestamp(kAsOf);
  s = logic_.ListAtRiskHolders(risk).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), giant)) << s;
  v1::ListPositionChangesRequest changes;
  *changes.mutable_from() = Date(2024, 3, 31);
  *changes.mutable_to() = Date(2024, 6, 30);
  s = logic_.ListPositionChanges(changes).status();
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), giant)) << s;
}

TEST_F(CommunityLogicTest, TargetsAreRankedByTheValueOfMeetingNowWithReasons) {
  Populate();
  // An as_of given is the one used, the epoch too: nobody held anything
  // then (left out, it is now, and there are targets).
  v1::ListEngagementTargetsRequest epoch;
  *epoch.mutable_as_of() = ToTimestamp(0);
  absl::StatusOr<v1::ListEngagementTargetsResponse> none =
      logic_.ListEngagementTargets(epoch);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->targets_size(), 0);
  absl::StatusOr<v1::ListEngagementTargetsResponse> today =
      logic_.ListEngagementTargets(v1::ListEngagementTargetsRequest());
  ASSERT_TRUE(today.ok()) << today.status();
  EXPECT_GT(today->targets_size(), 0);
  v1::ListEngagementTargetsRequest r;
  *r.mutable_as_of() = ToTimestamp(kAsOf);
  absl::StatusOr<v1::ListEngagementTargetsResponse> t =
      logic_.ListEngagementTargets(r);
  ASSERT_TRUE(t.ok()) << t.status();
  // Without peers PEER is Cat's own: 20,000 never met. Ann: 18,000 met 30
  // days ago, growing: 18000 * 452/1460 * 6/5. Eve: 7,200 met 15 days ago,
  // shrinking: 7200 * 410/1460 * 3/2. Fay: met today, shrinking. Bob holds
  // nothing now; Dan only after as_of.
  ASSERT_EQ(t->targets_size(), 4);
  EXPECT_EQ(t->targets(0).member_id(), cat_);
  EXPECT_EQ(Text(t->targets(0).score()), "20000.00");
  EXPECT_EQ(t->targets(0).reason(),
            "holds 20,000.00 USD of our securities; never met");
  EXPECT_FALSE(t->targets(0).has_days_since_engagement());
  EXPECT_EQ(t->targets(1).member_id(), ann_);
  EXPECT_EQ(Text(t->targets(1).score()), "6687.12");
  EXPECT_EQ(t->targets(1).reason(),
            "holds 18,000.00 USD of our securities; last met 29 days ago; "
            "position growing (1000 -> 1500 shares)");
  EXPECT_EQ(t->targets(2).member_id(), eve_);
  EXPECT_EQ(Text(t->targets(2).score()), "3032.88");
  EXPECT_EQ(t->targets(2).days_since_engagement(), 15);
  EXPECT_DOUBLE_EQ(t->targets(2).trend_factor(), 1.5);
  EXPECT_EQ(t->targets(3).member_id(), fay_);
  EXPECT_EQ(Text(t->targets(3).score()), "450.00");
  EXPECT_EQ(t->targets(3).days_since_engagement(), 0);

  // Naming PEER a peer security: Cat holds none of ours, counted at half.
  r.add_peer_securities("peer");
  r.set_limit(2);
  t = logic_.ListEngagementTargets(r);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->targets_size(), 2);
  EXPECT_EQ(t->targets(0).member_id(), cat_);
  EXPECT_EQ(Text(t->targets(0).score()), "10000.00");
  EXPECT_EQ(Text(t->targets(0).own_value()), "0.00");
  EXPECT_EQ(Text(t->targets(0).peer_value()), "20000.00");
  EXPECT_TRUE(absl::StartsWith(t->targets(0).reason(),
                               "holds none of ours but 20,000.00 USD"));
  r.set_limit(1001);
  EXPECT_TRUE(NamesField(logic_.ListEngagementTargets(r).status(), "limit"));
}

TEST_F(CommunityLogicTest, HoldersWhoSoldAndWereNotMetSinceAreAtRisk) {
  Populate();
  v1::ListAtRiskHoldersRequest r;
  *r.mutable_as_of() = ToTimestamp(kAsOf);
  absl::StatusOr<v1::ListAtRiskHoldersResponse> risk =
      logic_.ListAtRiskHolders(r);
  ASSERT_TRUE(risk.ok()) << risk.status();
  // Bob sold out (2000 * 12.00 at risk), never met; Eve sold 200 (2,400)
  // and was last met before the end of June; Fay was met after it.
  ASSERT_EQ(risk->holders_size(), 2);
  EXPECT_EQ(risk->holders(0).member_id(), bob_);
  EXPECT_EQ(Text(risk->holders(0).value_at_risk()), "24000.00");
  EXPECT_EQ(risk->holders(0).last_shares(), 0);
  EXPECT_EQ(risk->holders(0).reason(),
            "sold out of ACME (2000 -> 0 shares from 2024-03-31 to "
            "2024-06-30); never engaged");
  EXPECT_EQ(risk->holders(1).member_id(), eve_);
  EXPECT_EQ(Text(risk->holders(1).value_at_risk()), "2400.00");
  EXPECT_EQ(risk->holders(1).reason(),
            "sold part of ACME (800 -> 600 shares from 2024-03-31 to "
            "2024-06-30); not engaged since 2024-06-15");
  // Meeting Eve now takes her off the list.
  now_ = kAsOf + 3'600'000'000;
  Meet({eve_}, "2024-07-01T00:30:00Z");
  *r.mutable_as_of() = ToTimestamp(now_);
  risk = logic_.ListAtRiskHolders(r);
  ASSERT_TRUE(risk.ok()) << risk.status();
  ASSERT_EQ(risk->holders_size(), 1);
  EXPECT_EQ(risk->holders(0).member_id(), bob_);
  // A sell-out reported without a price is valued at the previous row's.
  const std::string kim = Create("Kim Fund", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(kim, "ACME", Date(2024, 3, 31), 3000, "11");
  Hold(kim, "ACME", Date(2024, 6, 30), 0, "0");
  risk = logic_.ListAtRiskHolders(r);
  ASSERT_TRUE(risk.ok()) << risk.status();
  ASSERT_EQ(risk->holders_size(), 2);
  EXPECT_EQ(risk->holders(0).member_id(), kim);
  EXPECT_EQ(Text(risk->holders(0).value_at_risk()), "33000.00");
}

// The at-risk list holds the first `limit` holders by value at risk, 20
// when no limit is given.
TEST_F(CommunityLogicTest, TheAtRiskListHoldsTheFirstLimitHolders) {
  std::vector<std::string> sellers;
  for (int i = 0; i < 22; ++i) {
    sellers.push_back(
        Create(absl::StrCat("Seller ", i), v1::MEMBER_KIND_SHAREHOLDER));
    Hold(sellers.back(), "ACME", Date(2024, 3, 31), 100 + i, "10");
    Hold(sellers.back(), "ACME", Date(2024, 6, 30), 0, "10");
  }
  v1::ListAtRiskHoldersRequest r;
  *r.mutable_as_of() = ToTimestamp(kAsOf);
  absl::StatusOr<v1::ListAtRiskHoldersResponse> risk =
      logic_.ListAtRiskHolders(r);
  ASSERT_TRUE(risk.ok()) << risk.status();
  EXPECT_EQ(risk->holders_size(), 20);
  r.set_limit(3);
  risk = logic_.ListAtRiskHolders(r);
  ASSERT_TRUE(risk.ok()) << risk.status();
  std::vector<std::string> first;
  for (const v1::AtRiskHolder& h : risk->holders()) {
    first.push_back(absl::StrCat(h.member_id(), " ", Text(h.value_at_risk())));
  }
  EXPECT_EQ(first, (std::vector<std::string>{sellers[21] + " 1210.00",
                                             sellers[20] + " 1200.00",
                                             sellers[19] + " 1190.00"}));
}

// A holding row counts from the end of its date (23:59:59.999999 UTC): an
// as_of earlier that day sees the row before it, the day's last microsecond
// sees it. A meeting on the row's date is not one since the row.
TEST_F(CommunityLogicTest, AHoldingCountsFromTheLastMicrosecondOfItsDate) {
  Populate();
  auto targets = [&](int64_t as_of) {
    v1::ListEngagementTargetsRequest r;
    *r.mutable_as_of() = ToTimestamp(as_of);
    absl::StatusOr<v1::ListEngagementTargetsResponse> t =
        logic_.ListEngagementTargets(r);
    EXPECT_TRUE(t.ok()) << t.status();
    std::vector<std::string> out;
    if (!t.ok()) return out;
    for (const v1::EngagementTarget& e : t->targets()) {
      out.push_back(absl::StrCat(e.member_id(), " ", Text(e.score())));
    }
    return out;
  };
  // At noon on June 30, the March rows: Bob 20,000 and Fay 4,000 never met
  // (Fay's meeting is on July 1), Ann 10,000 met 29 days before, Eve 8,000
  // met 15 days before; no trend (one row each); Cat holds nothing yet.
  const int64_t noon = At("2024-06-30T12:00:00Z");
  EXPECT_EQ(targets(noon),
            (std::vector<std::string>{bob_ + " 20000.00", fay_ + " 4000.00",
                                      ann_ + " 3095.89", eve_ + " 2246.58"}));
  // At the day's last microsecond, the June rows: Cat's 20,000, Ann's
  // 18,000 growing, Eve's 7,200 and Fay's 1,200 (never met) shrinking; Bob
  // holds nothing.
  const int64_t last = At("2024-06-30T23:59:59.999999Z");
  EXPECT_EQ(targets(last),
            (std::vector<std::string>{cat_ + " 20000.00", ann_ + " 6687.12",
                                      eve_ + " 3032.88", fay_ + " 1800.00"}));

  auto at_risk = [&](int64_t as_of) {
    v1::ListAtRiskHoldersRequest r;
    *r.mutable_as_of() = ToTimestamp(as_of);
    absl::StatusOr<v1::ListAtRiskHoldersResponse> risk =
        logic_.ListAtRiskHolders(r);
    EXPECT_TRUE(risk.ok()) << risk.status();
    std::vector<std::string> out;
    if (!risk.ok()) return out;
    for (const v1::AtRiskHolder& h : risk->holders()) {
      out.push_back(h.member_id());
    }
    return out;
  };
  EXPECT_TRUE(at_risk(noon).empty());  // one row each: nothing shrank yet
  // Bob sold out, Fay (not met by then) and Eve sold part; Eve's meeting on
  // the morning of June 30 is before the row's end, and does not count.
  Meet({eve_}, "2024-06-30T10:00:00Z");
  EXPECT_EQ(at_risk(last), (std::vector<std::string>{bob_, fay_, eve_}));
}

// The holdings views (targets, at-risk) are read in chunks of members: each
// member once, in id order, whatever the chunk size.
TEST_F(CommunityLogicTest, HoldingsViewsReadInChunksSeeEveryMemberOnce) {
  Populate();
  // What one chunk sees, as text: member, securities with their last two
  // rows, last engagement.
  auto views = [&](MysqlCommunityStore& store) {
    std::vector<std::string> out;
    absl::Status s = store.VisitHoldingsViews(
        kAsOf, [&](const MemberHoldingsView& v) -> absl::Status {
          std::string line = absl::StrCat(v.member_id, " ", v.display_name);
          for (const MemberHoldingsView::Security& h : v.securities) {
            absl::StrAppend(&line, " ", h.security, ":", h.last.shares, "@",
                            h.last.end_time_us);
            if (h.previous) {
              absl::StrAppend(&line, "/", h.previous->shares, "@",
                              h.previous->end_time_us);
            }
          }
          absl::StrAppend(&line, " met ", v.last_engagement_us.value_or(-1));
          out.push_back(std::move(line));
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  };
  const std::vector<std::string> whole = views(store_);
  // Ann, Bob, Eve and Fay hold ACME (two dates each), Cat holds PEER, Dan met
  // (his holding is after as_of); the analysts neither hold nor met anyone.
  ASSERT_EQ(whole.size(), 6u);
  EXPECT_TRUE(std::is_sorted(whole.begin(), whole.end()));
  std::set<std::string> members;
  for (const std::string& line : whole) {
    members.insert(line.substr(0, line.find(' ')));
  }
  EXPECT_EQ(members,
            (std::set<std::string>{ann_, bob_, cat_, dan_, eve_, fay_}));
  for (int chunk : {1, 2, 3, 5}) {
    MysqlCommunityStore small(&db_.pool(), chunk);
    EXPECT_EQ(views(small), whole) << "chunks of " << chunk;
  }
  // A visitor's error stops the visit and is returned.
  int seen = 0;
  absl::Status stopped =
      MysqlCommunityStore(&db_.pool(), 2)
          .VisitHoldingsViews(kAsOf, [&](const MemberHoldingsView&) {
            return ++seen == 3 ? absl::CancelledError("enough")
                               : absl::OkStatus();
          });
  EXPECT_TRUE(absl::IsCancelled(stopped)) << stopped;
  EXPECT_EQ(seen, 3);
}

// Market values of ids from all over (a re-score's), more than one list
// holds, are read as lists and come out as one page's range gives them.
TEST_F(CommunityLogicTest, MarketValuesOfManyScatteredIdsAreEachMembers) {
  std::vector<std::string> ids;
  for (int m = 0; m < 150; ++m) {
    ids.push_back(
        Create(absl::StrCat("Fund ", m), v1::MEMBER_KIND_SHAREHOLDER));
    if (m % 3 != 0) {
      Hold(ids.back(), "ACME", Date(2024, 6, 28), 10 + m, "2.50");
    }
  }
  // Every other one asked for, out of order.
  std::vector<std::string> asked;
  for (size_t i = 0; i < ids.size(); i += 2) asked.push_back(ids[i]);
  std::reverse(asked.begin(), asked.end());
  absl::StatusOr<std::map<std::string, Decimal>> listed, ranged;
  ASSERT_TRUE(db_.pool()
                  .Run([&](sql::Connection& c) -> absl::Status {
                    listed = MarketValues(c, asked, kAsOf, false);
                    ranged = MarketValues(c, asked, kAsOf, true);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_TRUE(ranged.ok()) << ranged.status();
  EXPECT_EQ(*listed, *ranged);
  ASSERT_EQ(listed->size(), 50u);  // 75 asked, a third of them hold nothing
  for (size_t i = 0; i < ids.size(); i += 2) {
    auto it = listed->find(ids[i]);
    if (i % 3 == 0) {
      EXPECT_EQ(it, listed->end()) << i;
    } else {
      ASSERT_NE(it, listed->end()) << i;
      // (10 + i) shares at 2.50.
      const size_t cents = (10 + i) * 250;
      EXPECT_EQ(it->second.ToString(),
                absl::StrCat(cents / 100, ".", cents % 100 == 0 ? "00" : "50"))
          << i;
    }
  }
}

// SCORING.md section 10: monetary is the market value at as_of of members
// with a counted engagement; the others are prospects whatever they hold.
TEST_F(CommunityLogicTest, MembersFactsAreEngagementsAndMarketValueAtAsOf) {
  Populate();
  MemberFacts facts(&db_.pool());
  absl::StatusOr<std::vector<d::EntityFacts>> of =
      facts.FactsOf({ann_, bob_, dan_, fay_}, {.as_of_us = kAsOf});
  ASSERT_TRUE(of.ok()) << of.status();
  std::map<std::string, d::EntityFacts> by_id;
  for (const d::EntityFacts& f : *of) by_id[f.entity_id] = f;
  EXPECT_EQ(by_id[ann_].frequency, 1);
  EXPECT_EQ(by_id[ann_].monetary.ToString(), "18000.00");
  EXPECT_EQ(by_id[ann_].cost_to_serve.ToString(), "300.00");
  EXPECT_EQ(by_id[bob_].frequency, 0);  // holds nothing, never met
  EXPECT_EQ(by_id[bob_].monetary.ToString(), "0.00");
  EXPECT_EQ(by_id[dan_].frequency, 1);  // met, but buys after as_of
  EXPECT_EQ(by_id[dan_].monetary.ToString(), "0.00");
  EXPECT_EQ(by_id[fay_].monetary.ToString(), "1200.00");

  // The whole population scanned agrees, and a member that holds but was
  // never met (Cat) is a prospect.
  std::map<std::string, d::EntityFacts> scanned;
  ASSERT_TRUE(facts
                  .ScanFacts({.as_of_us = kAsOf}, 3,
                             [&](std::vector<d::EntityFacts>& batch) {
                               for (const d::EntityFacts& f : batch) {
                                 scanned[f.entity_id] = f;
                               }
                               return absl::OkStatus();
                             })
                  .ok());
  EXPECT_EQ(scanned.size(), 9u);
  EXPECT_EQ(scanned[ann_].monetary.ToString(), "18000.00");
  EXPECT_EQ(scanned[cat_].frequency, 0);
  EXPECT_EQ(scanned[cat_].monetary.ToString(), "0.00");
  // Two scan threads on a pool of two connections: the market values are
  // read while no scan holds a connection (they waited for a third, and the
  // refresh failed RESOURCE_EXHAUSTED).
  std::unique_ptr<MysqlPool> small = db_.SmallPool(2, absl::Seconds(1));
  ASSERT_NE(small, nullptr);
  MemberFacts on_two(small.get(), 2);
  std::map<std::string, std::string> monetary;
  absl::Status scanned_on_two = on_two.ScanFacts(
      {.as_of_us = kAsOf}, 2, [&](std::vector<d::EntityFacts>& batch) {
        for (const d::EntityFacts& f : batch)
          monetary[f.entity_id] = f.monetary.ToString();
        return absl::OkStatus();
      });
  ASSERT_TRUE(scanned_on_two.ok()) << scanned_on_two;
  ASSERT_EQ(monetary.size(), 9u);
  for (const auto& [id, f] : scanned)
    EXPECT_EQ(monetary[id], f.monetary.ToString());
  // As of the end of March, Ann had not been met yet.
  EXPECT_EQ(facts.FactsOf({ann_}, {.as_of_us = At("2024-03-31T23:59:59Z")})
                ->front()
                .frequency,
            0);

  // For the CLV models the market value is one more amount on the last
  // engagement day.
  Meet({ann_}, "2024-06-20T10:00:00Z");
  std::vector<d::EventDay> days;
  ASSERT_TRUE(facts
                  .ScanEventDays({.as_of_us = kAsOf}, 100,
                                 [&](std::vector<d::EventDay>& batch) {
                                   for (const d::EventDay& e : batch) {
                                     if (e.entity_id == ann_) days.push_back(e);
                                   }
                                   return absl::OkStatus();
                                 })
                  .ok());
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].amount.ToString(), "0.00");
  EXPECT_EQ(days[1].amount.ToString(), "18000.00");
}

// Two calls at once under one request id, naming no member in common: one
// stores its engagement, the other is refused; never both into one.
TEST_F(CommunityLogicTest, TwoCallsRacingUnderOneRequestIdStoreOneEngagement) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    const std::vector<std::vector<std::string>> members = {
        {Create("A", v1::MEMBER_KIND_INVESTOR),
         Create("B", v1::MEMBER_KIND_INVESTOR)},
        {Create("C", v1::MEMBER_KIND_INVESTOR)}};
    const std::string request_id = absl::StrCat("race-", round);
    std::vector<absl::Status> got = testing::AtOnce(2, [&](size_t i) {
      v1::LogEngagementRequest r;
      for (const std::string& m : members[i]) r.add_member_ids(m);
      r.set_kind(v1::ENGAGEMENT_KIND_CALL);
      *r.mutable_time() = ToTimestamp(kAsOf);
      *r.mutable_cost() = Usd("10");
      r.set_request_id(request_id);
      return logic_.LogEngagement(r, "u").status();
    });
    ASSERT_NE(got[0].ok(), got[1].ok()) << got[0] << " / " << got[1];
    const size_t won = got[0].ok() ? 0 : 1;
    EXPECT_TRUE(NamesField(got[1 - won], "request_id"));
    EXPECT_EQ(db_.Count(absl::StrCat(
                  "SELECT COUNT(*) FROM engagements WHERE engagement_id = '",
                  KeyedId("engagement", request_id), "'")),
              static_cast<int64_t>(members[won].size()));
  }
}

TEST_F(CommunityLogicTest, AnEngagementWithSeveralMembersSharesItsCostExactly) {
  const std::string a = Create("A", v1::MEMBER_KIND_INVESTOR);
  const std::string b = Create("B", v1::MEMBER_KIND_INVESTOR);
  const std::string c = Create("C", v1::MEMBER_KIND_INVESTOR);
  v1::LogEngagementRequest r;
  r.add_member_ids(a);
  r.add_member_ids(b);
  r.add_member_ids(c);
  r.set_kind(v1::ENGAGEMENT_KIND_ROADSHOW);
  *r.mutable_time() = ToTimestamp(kAsOf);
  *r.mutable_cost() = Usd("100");
  r.set_request_id("roadshow-1");
  absl::StatusOr<v1::LogEngagementResponse> e = logic_.LogEngagement(r, "u");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->engagements_size(), 3);
  EXPECT_EQ(Text(e->engagements(0).cost()), "33.333333334");
  EXPECT_EQ(Text(e->engagements(1).cost()), "33.333333333");
  EXPECT_EQ(e->engagements(0).engagement_id(),
            e->engagements(2).engagement_id());
  EXPECT_EQ(e->engagements(1).recorded_by(), "u");
  // A retry stores nothing twice; the same request id saying something else
  // is refused.
  ASSERT_TRUE(logic_.LogEngagement(r, "u").ok());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 3);
  // Also one that leaves the deployment's currency unsaid.
  r.mutable_cost()->clear_currency_code();
  absl::StatusOr<v1::LogEngagementResponse> unspelled =
      logic_.LogEngagement(r, "u");
  ASSERT_TRUE(unspelled.ok()) << unspelled.status();
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 3);
  *r.mutable_cost() = Usd("90");
  EXPECT_TRUE(NamesField(logic_.LogEngagement(r, "u").status(), "request_id"));
  // So is a call under that request id naming other members: it does not
  // join the engagement the first call stored.
  const std::string d = Create("D", v1::MEMBER_KIND_INVESTOR);
  v1::LogEngagementRequest other = r;
  *other.mutable_cost() = Usd("100");
  other.clear_member_ids();
  other.add_member_ids(d);
  EXPECT_TRUE(
      NamesField(logic_.LogEngagement(other, "u").status(), "request_id"));
  other.add_member_ids(a);
  EXPECT_TRUE(
      NamesField(logic_.LogEngagement(other, "u").status(), "request_id"));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 3);
  // Naming a member twice, or one that does not exist, is refused.
  r.set_request_id("");
  r.add_member_ids(a);
  EXPECT_TRUE(
      NamesField(logic_.LogEngagement(r, "u").status(), "member_ids[3]"));
  r.mutable_member_ids()->RemoveLast();
  const std::string nobody = ids_.Next();
  r.add_member_ids(nobody);
  EXPECT_TRUE(NotFoundNaming(logic_.LogEngagement(r, "u").status(), nobody));
}

TEST_F(CommunityLogicTest, AHoldingForTheSameDateCorrectsTheFirst) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(a, "ACME", Date(2024, 6, 30), 100, "10");
  Hold(a, "ACME", Date(2024, 6, 30), 120, "10.5");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 1);
  v1::ListPositionHistoryRequest h;
  h.set_member_id(a);
  absl::StatusOr<v1::ListPositionHistoryResponse> history =
      logic_.ListPositionHistory(h);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->holdings_size(), 1);
  EXPECT_EQ(history->holdings(0).shares(), 120);
  EXPECT_EQ(Text(history->holdings(0).price()), "10.50");
}

// A correction takes the new writer's name and is audited with what it
// changed; a retry of a request, even after a later correction, returns the
// position as it stands and changes nothing; a request id reused for
// another holding is refused.
TEST_F(CommunityLogicTest, HoldingRetriesNeverUndoALaterCorrection) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  auto record = [&](int64_t shares, const std::string& request,
                    const std::string& actor) {
    v1::RecordHoldingRequest r;
    v1::Holding* h = r.mutable_holding();
    h->set_member_id(a);
    h->set_security("ACME");
    *h->mutable_date() = Date(2024, 6, 30);
    h->set_shares(shares);
    *h->mutable_price() = Usd("10");
    r.set_request_id(request);
    return logic_.RecordHolding(r, actor);
  };
  ASSERT_TRUE(record(100, "r1", "user:alice").ok());
  absl::StatusOr<v1::Holding> second = record(120, "r2", "user:bob");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->shares(), 120);
  EXPECT_EQ(second->recorded_by(), "user:bob");
  ASSERT_TRUE(record(130, "r3", "user:carol").ok());
  // Bob's client retries r2: the answer is the position now, unchanged.
  absl::StatusOr<v1::Holding> retried = record(120, "r2", "user:bob");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->shares(), 130);
  EXPECT_EQ(retried->recorded_by(), "user:carol");
  // r2 for another number of shares is another request: refused.
  EXPECT_TRUE(NamesField(record(140, "r2", "user:bob").status(), "request_id"));
  EXPECT_EQ(db_.Count("SELECT shares FROM holdings"), 130);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'RecordHolding' AND details LIKE "
                      "'corrected ACME 2024-06-30: shares 100 -> 120%'"),
            1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'RecordHolding'"),
            2);
  // The position as it stands, sent again without a request id (a retry
  // of a client that sends none): nothing corrected, written or audited.
  absl::StatusOr<v1::Holding> resent = record(130, "", "user:erin");
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->shares(), 130);
  EXPECT_EQ(resent->recorded_by(), "user:carol");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'RecordHolding'"),
            2);

  // A file row under a request id the RPC used is that request: the same
  // content is a duplicate, other content is refused, and neither changes
  // the position.
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  auto import = [&](const std::string& import_id, const std::string& shares) {
    v1::ImportHoldingsRequest file;
    file.set_import_id(import_id);
    v1::HoldingRow* row = file.add_rows();
    row->set_row(1);
    row->set_member_ref(a);
    row->set_security("ACME");
    row->set_date("2024-06-30");
    row->set_shares(shares);
    row->set_price("10");
    row->set_request_id("r1");
    return imports.ImportHoldings(testing::OneMessage(file), "user:dave");
  };
  absl::StatusOr<v1::ImportHoldingsResponse> same = import("file-1", "100");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->duplicates(), 1);
  EXPECT_EQ(same->accepted(), 0);
  absl::StatusOr<v1::ImportHoldingsResponse> other = import("file-2", "150");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->accepted(), 0);
  ASSERT_EQ(other->rejected_size(), 1);
  EXPECT_EQ(other->rejected(0).field(), "request_id");
  EXPECT_EQ(db_.Count("SELECT shares FROM holdings"), 130);
}

// Two runs of one holdings file at once store each row once and count it
// once: accepted by one run, a duplicate for the other.
TEST_F(CommunityLogicTest, TwoRunsOfOneHoldingsFileAtOnceCountEachRowOnce) {
  std::vector<std::string> members;
  for (int m = 0; m < 10; ++m) {
    members.push_back(
        Create(absl::StrCat("Fund ", m), v1::MEMBER_KIND_SHAREHOLDER));
  }
  // Each batch has a time of its own, as on a real clock.
  std::atomic<int64_t> tick{kAsOf};
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [&] { return absl::FromUnixMicros(++tick); },
                                {.currency = "USD"});
  constexpr int kRows = 100;
  for (int round = 0; round < 5; ++round) {
    v1::ImportHoldingsRequest file;
    file.set_import_id(absl::StrCat("13f-", round));
    for (int i = 0; i < kRows; ++i) {
      v1::HoldingRow* row = file.add_rows();
      row->set_row(i + 1);
      row->set_member_ref(members[i % members.size()]);
      row->set_security(absl::StrCat("S", round, "X", i));
      row->set_date("2024-06-30");
      row->set_shares(absl::StrCat(100 + i));
      row->set_price("10");
    }
    absl::Notification go;
    absl::StatusOr<v1::ImportHoldingsResponse> runs[2];
    std::thread threads[2];
    for (int t = 0; t < 2; ++t) {
      threads[t] = std::thread([&, t] {
        go.WaitForNotification();
        runs[t] = imports.ImportHoldings(testing::OneMessage(file), "user:ada");
      });
    }
    go.Notify();
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(runs[0].ok()) << runs[0].status();
    ASSERT_TRUE(runs[1].ok()) << runs[1].status();
    EXPECT_EQ(runs[0]->accepted() + runs[1]->accepted(), kRows)
        << "round " << round;
    EXPECT_EQ(runs[0]->duplicates() + runs[1]->duplicates(), kRows)
        << "round " << round;
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 5 * kRows);
}

// The same for engagements: a row of one group that the other run stored
// after this one looked is a duplicate, not a member the engagement has
// already.
TEST_F(CommunityLogicTest, TwoRunsOfOneEngagementsFileAtOnceCountEachRowOnce) {
  std::vector<std::string> members;
  for (int m = 0; m < 20; ++m) {
    members.push_back(
        Create(absl::StrCat("Fund ", m), v1::MEMBER_KIND_INVESTOR));
  }
  std::atomic<int64_t> tick{kAsOf};
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [&] { return absl::FromUnixMicros(++tick); },
                                {.currency = "USD"});
  for (int round = 0; round < 5; ++round) {
    v1::ImportEngagementsRequest file;
    file.set_import_id(absl::StrCat("roadshows-", round));
    for (int i = 0; i < static_cast<int>(members.size()); ++i) {
      v1::EngagementRow* row = file.add_rows();
      row->set_row(i + 1);
      row->set_member_ref(members[i]);
      row->set_timestamp("2024-06-10T09:00:00Z");
      row->set_kind("roadshow");
      row->set_cost("1");
      row->set_request_id(absl::StrCat("show-", round, "/", i));
    }
    absl::Notification go;
    absl::StatusOr<v1::ImportEngagementsResponse> runs[2];
    std::thread threads[2];
    for (int t = 0; t < 2; ++t) {
      threads[t] = std::thread([&, t] {
        go.WaitForNotification();
        runs[t] =
            imports.ImportEngagements(testing::OneMessage(file), "user:ada");
      });
    }
    go.Notify();
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(runs[0].ok()) << runs[0].status();
    ASSERT_TRUE(runs[1].ok()) << runs[1].status();
    EXPECT_EQ(runs[0]->rejected_size() + runs[1]->rejected_size(), 0)
        << "round " << round;
    EXPECT_EQ(runs[0]->accepted() + runs[1]->accepted(),
              static_cast<int64_t>(members.size()))
        << "round " << round;
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"),
            5 * static_cast<int64_t>(members.size()));
}

// Without as_of the register is today's; its pages stay on the day of the
// first one, even when the next is asked for after midnight.
TEST_F(CommunityLogicTest, RegisterPagesWithoutADateStayOnTheFirstPagesDay) {
  Populate();
  now_ = At("2024-06-30T23:59:00Z");
  v1::GetRegisterRequest r;
  r.set_page_size(1);
  absl::StatusOr<v1::GetRegisterResponse> first = logic_.GetRegister(r);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->next_page_token().empty());
  now_ = At("2024-07-01T00:01:00Z");
  r.set_page_token(first->next_page_token());
  absl::StatusOr<v1::GetRegisterResponse> second = logic_.GetRegister(r);
  ASSERT_TRUE(second.ok()) << second.status();
  // The same totals as the first page: the register of 2024-06-30.
  EXPECT_EQ(second->holders(), first->holders());
  EXPECT_EQ(Text(second->total_market_value()),
            Text(first->total_market_value()));
  v1::GetRegisterRequest dated;
  *dated.mutable_as_of() = Date(2024, 6, 30);
  absl::StatusOr<v1::GetRegisterResponse> expected = logic_.GetRegister(dated);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_GE(expected->positions_size(), 2);
  ASSERT_EQ(second->positions_size(), 1);
  EXPECT_EQ(second->positions(0).member_id(),
            expected->positions(1).member_id());
  EXPECT_EQ(Text(second->total_market_value()),
            Text(expected->total_market_value()));
}

// Pages follow the order of security, then date, also where one security's
// code begins another's (BRK sorts before BRK.B) and for dates before 1970.
TEST_F(CommunityLogicTest, PositionHistoryPagesThroughEveryRowInOrder) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(a, "BRK", Date(1969, 12, 31), 5, "10");
  Hold(a, "BRK", Date(2024, 3, 31), 10, "10");
  Hold(a, "BRK", Date(2024, 6, 30), 20, "10");
  Hold(a, "BRK.B", Date(2024, 6, 30), 30, "10");
  Hold(a, "BRK-A", Date(2024, 6, 30), 40, "10");
  std::vector<std::string> seen;
  v1::ListPositionHistoryRequest h;
  h.set_member_id(a);
  h.set_page_size(2);
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListPositionHistoryResponse> r =
        logic_.ListPositionHistory(h);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const v1::Holding& row : r->holdings()) {
      seen.push_back(absl::StrCat(row.security(), "/", row.shares()));
    }
    if (r->next_page_token().empty()) break;
    h.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"BRK/5", "BRK/10", "BRK/20",
                                            "BRK-A/40", "BRK.B/30"}));
  h.set_page_token("not a token");
  EXPECT_TRUE(NamesField(logic_.ListPositionHistory(h).status(), "page_token"));
}

TEST_F(CommunityLogicTest, BadInputNamesTheFieldAndNotFoundNamesTheId) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  const std::string missing = ids_.Next();
  {
    v1::CreateMemberRequest r;
    r.mutable_member()->set_display_name("X");
    EXPECT_TRUE(
        NamesField(logic_.CreateMember(r, "u").status(), "member.kind"));
    r.mutable_member()->set_kind(v1::MEMBER_KIND_ANALYST);
    r.mutable_member()->set_display_name("");
    EXPECT_TRUE(NamesField(logic_.CreateMember(r, "u").status(),
                           "member.display_name"));
  }
  {
    v1::GetMemberRequest r;
    r.set_id("nope");
    EXPECT_TRUE(NamesField(logic_.GetMember(r).status(), "id"));
    r.set_id(missing);
    absl::Status s = logic_.GetMember(r).status();
    EXPECT_TRUE(absl::IsNotFound(s));
    EXPECT_TRUE(absl::StrContains(s.message(), missing));
  }
  {
    v1::UpdateMemberRequest r;
    r.mutable_member()->set_id(a);
    r.mutable_update_mask()->add_paths("create_time");
    EXPECT_TRUE(
        NamesField(logic_.UpdateMember(r, "u").status(), "update_mask"));
    r.mutable_update_mask()->set_paths(0, "organisation");
    r.mutable_member()->set_organisation("Fund I");
    r.mutable_member()->set_etag("999");
    EXPECT_TRUE(absl::IsAborted(logic_.UpdateMember(r, "u").status()));
    r.mutable_member()->set_etag("");
    absl::StatusOr<v1::Member> updated = logic_.UpdateMember(r, "u");
    ASSERT_TRUE(updated.ok()) << updated.status();
    EXPECT_EQ(updated->organisation(), "Fund I");
    // The same update again, even under the etag it had before (a retry
    // whose answer was lost), finds nothing to change: nothing is written or
    // audited, and the answer is the first one's.
    const int64_t audited = db_.Count(
        "SELECT COUNT(*) FROM audit_events WHERE rpc = 'UpdateMember'");
    r.mutable_member()->set_etag("1");
    absl::StatusOr<v1::Member> again = logic_.UpdateMember(r, "u");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->etag(), updated->etag());
    EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                        "'UpdateMember'"),
              audited);
    r.mutable_member()->set_etag("");
    r.mutable_member()->set_id(missing);
    EXPECT_TRUE(NotFoundNaming(logic_.UpdateMember(r, "u").status(), missing));
  }
  {
    v1::RecordHoldingRequest r;
    v1::Holding* h = r.mutable_holding();
    h->set_member_id(a);
    h->set_security("AC ME");
    *h->mutable_date() = Date(2024, 2, 30);
    h->set_shares(-1);
    *h->mutable_price() = Usd("-1");
    absl::Status s = logic_.RecordHolding(r, "u").status();
    for (const char* f : {"holding.security", "holding.date", "holding.shares",
                          "holding.price"}) {
      EXPECT_TRUE(NamesField(s, f)) << f << ": " << s;
    }
    h->set_security("ACME");
    *h->mutable_date() = Date(2024, 2, 29);
    h->set_shares(1);
    *h->mutable_price() = Usd("1");
    h->set_member_id(missing);
    EXPECT_TRUE(NotFoundNaming(logic_.RecordHolding(r, "u").status(), missing));
    *h->mutable_price() = *ToMoney(Decimal::FromUnits(1), "EUR", "p");
    h->set_member_id(a);
    EXPECT_TRUE(
        NamesField(logic_.RecordHolding(r, "u").status(), "holding.price"));
    // A position at a day still to come is not known yet.
    *h->mutable_price() = Usd("1");
    const google::type::Date today = DateOf(now_);
    const google::type::Date tomorrow = DateOf(now_ + 86'400'000'000);
    *h->mutable_date() = tomorrow;
    EXPECT_TRUE(
        NamesField(logic_.RecordHolding(r, "u").status(), "holding.date"));
    *h->mutable_date() = today;
    EXPECT_TRUE(logic_.RecordHolding(r, "u").ok());
  }
  {
    v1::RecordCoverageRequest r;
    r.mutable_coverage()->set_member_id(a);
    r.mutable_coverage()->set_security("ACME");
    *r.mutable_coverage()->mutable_date() = Date(2024, 1, 1);
    r.mutable_coverage()->set_rating_text("moon");
    EXPECT_TRUE(NamesField(logic_.RecordCoverage(r, "u").status(),
                           "coverage.rating_text"));
    r.mutable_coverage()->set_rating_text("");
    EXPECT_TRUE(
        NamesField(logic_.RecordCoverage(r, "u").status(), "coverage.rating"));
    // Nor a rating.
    r.mutable_coverage()->set_rating(v1::RATING_BUY);
    *r.mutable_coverage()->mutable_date() = DateOf(now_ + 86'400'000'000);
    EXPECT_TRUE(
        NamesField(logic_.RecordCoverage(r, "u").status(), "coverage.date"));
  }
  {
    v1::GetConsensusRequest r;
    EXPECT_TRUE(NamesField(logic_.GetConsensus(r).status(), "security"));
    v1::ListEngagementsRequest e;
    e.set_member_id(missing);
    EXPECT_TRUE(NotFoundNaming(logic_.ListEngagements(e).status(), missing));
    e.set_member_id("not-an-id");
    EXPECT_TRUE(NamesField(logic_.ListEngagements(e).status(), "member_id"));
    v1::ListPositionHistoryRequest h;
    h.set_member_id(missing);
    EXPECT_TRUE(
        NotFoundNaming(logic_.ListPositionHistory(h).status(), missing));
    v1::DeleteMemberRequest del;
    del.set_id(missing);
    EXPECT_TRUE(NotFoundNaming(logic_.DeleteMember(del, "u"), missing));
    del.set_id("not-an-id");
    EXPECT_TRUE(NamesField(logic_.DeleteMember(del, "u"), "id"));
  }
  {
    v1::IdentifyMemberRequest r;
    EXPECT_TRUE(
        NamesField(logic_.IdentifyMember(r, "u").status(), "external_ids"));
    cv1::ExternalId* e = r.add_external_ids();
    e->set_source("13f");
    e->set_id("0001");
    EXPECT_TRUE(
        NamesField(logic_.IdentifyMember(r, "u").status(), "display_name"));
    r.set_display_name("Some Fund");
    absl::StatusOr<v1::IdentifyMemberResponse> made =
        logic_.IdentifyMember(r, "u");
    ASSERT_TRUE(made.ok()) << made.status();
    EXPECT_TRUE(made->created());
    EXPECT_EQ(made->member().kind(), v1::MEMBER_KIND_INVESTOR);
    EXPECT_EQ(made->member().created_by(), "u");
    EXPECT_EQ(db_.Strings("SELECT rpc FROM audit_events WHERE resource = ?",
                          {"members/" + made->member().id()}),
              std::vector<std::string>{"IdentifyMember"});
    absl::StatusOr<v1::IdentifyMemberResponse> again =
        logic_.IdentifyMember(r, "u");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->created());
    EXPECT_EQ(again->member().id(), made->member().id());
    // Under a request id, its retry gets the first answer again.
    r.clear_external_ids();
    r.add_external_ids()->set_source("13f");
    r.mutable_external_ids(0)->set_id("0002");
    r.set_request_id("identify-2");
    made = logic_.IdentifyMember(r, "u");
    ASSERT_TRUE(made.ok()) << made.status();
    EXPECT_TRUE(made->created());
    again = logic_.IdentifyMember(r, "u");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->created());
    EXPECT_EQ(again->member().id(), made->member().id());
    // The same request id with other content is refused, though its
    // identities find the member.
    {
      v1::IdentifyMemberRequest changed = r;
      changed.set_display_name("Another Fund");
      EXPECT_TRUE(NamesField(logic_.IdentifyMember(changed, "u").status(),
                             "request_id"));
      v1::IdentifyMemberRequest long_name;
      long_name.set_display_name(std::string(300, 'n'));
      long_name.set_contact_email("long@name.example");
      std::vector<FieldViolation> v =
          FieldViolations(logic_.IdentifyMember(long_name, "u").status());
      ASSERT_EQ(v.size(), 1u);
      EXPECT_EQ(v[0].field, "display_name");
    }
    // Errors name the request's fields, not a member's.
    v1::IdentifyMemberRequest bad;
    bad.add_external_ids()->set_id("x");
    std::vector<FieldViolation> named =
        FieldViolations(logic_.IdentifyMember(bad, "u").status());
    ASSERT_EQ(named.size(), 1u);
    EXPECT_EQ(named[0].field, "external_ids[0].source");
  }
  // Calls racing to identify one new member by a contact email alone make
  // it once (no key of the database holds emails unique; a lock on the
  // email does). Several rounds, as one may not race.
  for (int round = 0; round < 10; ++round) {
    v1::IdentifyMemberRequest r;
    r.set_display_name(absl::StrCat("Desk ", round));
    r.set_contact_email(absl::StrCat("ir", round, "@fund.example"));
    const std::vector<absl::StatusOr<v1::IdentifyMemberResponse>> got =
        testing::AtOnce(4,
                        [&](size_t) { return logic_.IdentifyMember(r, "u"); });
    int made_here = 0;
    for (const auto& a : got) {
      ASSERT_TRUE(a.ok()) << a.status();
      EXPECT_EQ(a->member().id(), got[0]->member().id());
      made_here += a->created() ? 1 : 0;
    }
    EXPECT_EQ(made_here, 1) << "round " << round;
    EXPECT_EQ(db_.Count(absl::StrCat("SELECT COUNT(*) FROM members WHERE "
                                     "display_name = 'Desk ",
                                     round, "'")),
              1)
        << "round " << round;
  }
}

TEST_F(CommunityLogicTest, EveryRpcNamesItsBadFieldAndItsUnknownIds) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  const std::string b = Create("B", v1::MEMBER_KIND_SHAREHOLDER);
  const std::string missing = ids_.Next();
  Hold(a, "ACME", Date(2024, 6, 30), 100, "10");
  Hold(b, "ACME", Date(2024, 6, 30), 200, "10");
  {
    v1::ListMembersRequest r;
    r.set_kind(static_cast<v1::MemberKind>(9));
    r.set_tier(static_cast<cv1::Tier>(9));
    r.set_order_by("name");
    absl::Status s = logic_.ListMembers(r).status();
    for (const char* f : {"kind", "tier", "order_by"}) {
      EXPECT_TRUE(NamesField(s, f)) << f << ": " << s;
    }
    // A token is good only with the filters it was issued for.
    r.Clear();
    r.set_kind(v1::MEMBER_KIND_SHAREHOLDER);
    r.set_page_size(1);
    absl::StatusOr<v1::ListMembersResponse> page = logic_.ListMembers(r);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_FALSE(page->next_page_token().empty());
    r.set_page_token(page->next_page_token());
    page = logic_.ListMembers(r);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->members_size(), 1);
    r.set_kind(v1::MEMBER_KIND_INVESTOR);
    EXPECT_TRUE(NamesField(logic_.ListMembers(r).status(), "page_token"));
    r.set_kind(v1::MEMBER_KIND_SHAREHOLDER);
    r.set_order_by("value");
    EXPECT_TRUE(NamesField(logic_.ListMembers(r).status(), "page_token"));
    v1::ListMembersRequest by_segment;
    by_segment.set_segment(std::string(65, 's'));
    EXPECT_TRUE(NamesField(logic_.ListMembers(by_segment).status(), "segment"));
  }
  {
    v1::FindDuplicateMembersRequest r;
    r.set_page_token("not a token");
    EXPECT_TRUE(NamesField(logic_.FindDuplicates(r).status(), "page_token"));
    r.clear_page_token();
    r.set_page_size(-1);
    EXPECT_TRUE(NamesField(logic_.FindDuplicates(r).status(), "page_size"));
    // A token of another listing.
    v1::ListMembersRequest list;
    list.set_page_size(1);
    absl::StatusOr<v1::ListMembersResponse> members = logic_.ListMembers(list);
    ASSERT_TRUE(members.ok()) << members.status();
    ASSERT_FALSE(members->next_page_token().empty());
    r.set_page_size(0);
    r.set_page_token(members->next_page_token());
    EXPECT_TRUE(NamesField(logic_.FindDuplicates(r).status(), "page_token"));
  }
  {
    v1::ListPositionHistoryRequest r;
    r.set_member_id(a);
    r.set_security("AC ME");
    EXPECT_TRUE(NamesField(logic_.ListPositionHistory(r).status(), "security"));
  }
  {
    v1::GetRegisterRequest r;
    *r.mutable_as_of() = Date(2023, 2, 29);
    EXPECT_TRUE(NamesField(logic_.GetRegister(r).status(), "as_of"));
    *r.mutable_as_of() = Date(2024, 6, 30);
    r.set_security("AC ME");
    EXPECT_TRUE(NamesField(logic_.GetRegister(r).status(), "security"));
    r.clear_security();
    r.set_page_size(1);
    absl::StatusOr<v1::GetRegisterResponse> reg = logic_.GetRegister(r);
    ASSERT_TRUE(reg.ok()) << reg.status();
    ASSERT_FALSE(reg->next_page_token().empty());
    r.set_page_token(reg->next_page_token());
    *r.mutable_as_of() = Date(2024, 6, 29);
    EXPECT_TRUE(NamesField(logic_.GetRegister(r).status(), "page_token"));
  }
  {
    v1::LogEngagementRequest r;
    r.add_member_ids(a);
    r.set_kind(static_cast<v1::EngagementKind>(42));
    *r.mutable_time() = ToTimestamp(kAsOf);
    r.mutable_time()->set_nanos(1);  // finer than a microsecond
    *r.mutable_cost() = Usd("-1");
    absl::Status s = logic_.LogEngagement(r, "u").status();
    for (const char* f : {"kind", "time", "cost"}) {
      EXPECT_TRUE(NamesField(s, f)) << f << ": " << s;
    }
    r.clear_kind();
    r.clear_time();
    r.clear_cost();
    s = logic_.LogEngagement(r, "u").status();
    for (const char* f : {"kind", "time", "cost"}) {
      EXPECT_TRUE(NamesField(s, f)) << f << ": " << s;
    }
    EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 0);
  }
  {
    v1::RecordCoverageRequest r;
    v1::Coverage* c = r.mutable_coverage();
    c->set_member_id(missing);
    c->set_security("ACME");
    *c->mutable_date() = Date(2024, 1, 1);
    c->set_rating_text("buy");
    absl::Status s = logic_.RecordCoverage(r, "u").status();
    EXPECT_TRUE(absl::IsNotFound(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), missing)) << s;
    EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage"), 0);
  }
  {
    v1::ListAtRiskHoldersRequest r;
    for (int limit : {-1, 1001}) {
      r.set_limit(limit);
      EXPECT_TRUE(NamesField(logic_.ListAtRiskHolders(r).status(), "limit"))
          << limit;
    }
  }
  {
    v1::ListEngagementTargetsRequest r;
    r.add_peer_securities("");
    EXPECT_TRUE(NamesField(logic_.ListEngagementTargets(r).status(),
                           "peer_securities[0]"));
    r.set_peer_securities(0, "peer");
    r.add_peer_securities("AC ME");
    EXPECT_TRUE(NamesField(logic_.ListEngagementTargets(r).status(),
                           "peer_securities[1]"));
    // A hundred peers at most, each counted once; the hundredth-and-first
    // is refused whole.
    r.clear_peer_securities();
    for (int i = 0; i < 100; ++i) r.add_peer_securities(absl::StrCat("P", i));
    r.add_peer_securities("P7");
    EXPECT_TRUE(logic_.ListEngagementTargets(r).ok());
    r.add_peer_securities("P100");
    absl::Status many = logic_.ListEngagementTargets(r).status();
    EXPECT_TRUE(NamesField(many, "peer_securities")) << many;
    EXPECT_TRUE(absl::StrContains(many.message(), "at most 100")) << many;
    // And a thousand entries at most, repeats included.
    r.clear_peer_securities();
    for (int i = 0; i < 1001; ++i) r.add_peer_securities("P7");
    many = logic_.ListEngagementTargets(r).status();
    EXPECT_TRUE(NamesField(many, "peer_securities")) << many;
  }
  {
    // One member known by an external id, another by a contact email:
    // identities naming both are refused, and nothing is created.
    v1::IdentifyMemberRequest by_id;
    cv1::ExternalId* e = by_id.add_external_ids();
    e->set_source("13f");
    e->set_id("0001");
    by_id.set_display_name("Some Fund");
    absl::StatusOr<v1::IdentifyMemberResponse> one =
        logic_.IdentifyMember(by_id, "u");
    ASSERT_TRUE(one.ok()) << one.status();
    v1::IdentifyMemberRequest by_email;
    by_email.set_contact_email("ir@other.example.com");
    by_email.set_display_name("Other Fund");
    absl::StatusOr<v1::IdentifyMemberResponse> two =
        logic_.IdentifyMember(by_email, "u");
    ASSERT_TRUE(two.ok()) << two.status();
    ASSERT_TRUE(two->created());
    ASSERT_NE(two->member().id(), one->member().id());
    const int64_t members = db_.Count("SELECT COUNT(*) FROM members");
    v1::IdentifyMemberRequest both = by_id;
    both.set_contact_email("IR@other.example.com");
    absl::Status s = logic_.IdentifyMember(both, "u").status();
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), one->member().id())) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), two->member().id())) << s;
    EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM members"), members);
    both.set_kind(static_cast<v1::MemberKind>(9));
    EXPECT_TRUE(NamesField(logic_.IdentifyMember(both, "u").status(), "kind"));
  }
}

// Members are grouped when they share a contact email (by its match key:
// case and "+tag" do not count) or their name (legal forms and case do not
// count) with the same organisation; a member is never its own duplicate.
TEST_F(CommunityLogicTest, DuplicateMembersAreGroupedByEmailOrName) {
  auto create = [&](const std::string& name, const std::string& organisation,
                    const std::vector<std::string>& emails) {
    v1::CreateMemberRequest r;
    v1::Member* m = r.mutable_member();
    m->set_display_name(name);
    m->set_kind(v1::MEMBER_KIND_INVESTOR);
    m->set_organisation(organisation);
    for (const std::string& email : emails) {
      cv1::Contact* c = m->add_contacts();
      c->set_name("IR desk");
      c->set_email(email);
    }
    absl::StatusOr<v1::Member> made = logic_.CreateMember(r, "u");
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? made->id() : "";
  };
  const std::string a =
      create("Acme Capital Inc.", "Fund I", {"IR+q2@Acme.com"});
  const std::string b = create("Zeta Partners", "", {"ir@acme.com"});
  const std::string c = create("ACME CAPITAL", "FUND I", {});  // any case
  create("Acme Capital", "Fund II", {});  // another organisation
  create("Solo Advisors", "", {"solo@example.com", "Solo@example.com"});
  auto sorted = [](std::string x, std::string y) {
    if (y < x) std::swap(x, y);
    return std::vector<std::string>{x, y};
  };
  auto members_of = [](const v1::DuplicateMemberGroup& g) {
    return std::vector<std::string>(g.member_ids().begin(),
                                    g.member_ids().end());
  };

  v1::FindDuplicateMembersRequest r;
  absl::StatusOr<v1::FindDuplicateMembersResponse> d = logic_.FindDuplicates(r);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->groups_size(), 2);
  EXPECT_EQ(d->groups(0).reason(), "contact_email");
  EXPECT_EQ(d->groups(0).key(), "ir@acme.com");
  EXPECT_EQ(members_of(d->groups(0)), sorted(a, b));
  EXPECT_EQ(d->groups(1).reason(), "name_organisation");
  EXPECT_EQ(d->groups(1).key(), "acme capital / fund i");
  EXPECT_EQ(members_of(d->groups(1)), sorted(a, c));
  EXPECT_TRUE(d->next_page_token().empty());

  // In pages of one: the same groups, then no token.
  r.set_page_size(1);
  d = logic_.FindDuplicates(r);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->groups_size(), 1);
  EXPECT_EQ(d->groups(0).reason(), "contact_email");
  ASSERT_FALSE(d->next_page_token().empty());
  r.set_page_token(d->next_page_token());
  d = logic_.FindDuplicates(r);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->groups_size(), 1);
  EXPECT_EQ(d->groups(0).reason(), "name_organisation");
  EXPECT_EQ(members_of(d->groups(0)), sorted(a, c));
  EXPECT_TRUE(d->next_page_token().empty());
}

// A member made again under its deleted predecessor's request id has the
// same id, and none of the predecessor's value: not even one that a re-score
// under way at the delete wrote after it. Likewise for a member made by an
// import's unknown external id that a deleted member had.
TEST_F(CommunityLogicTest, AMemberMadeAgainUnderItsIdHasNoneOfTheOldValue) {
  differentiation::MysqlValueStore values(&db_.pool(), MemberValueTables());
  auto late_value = [&](const std::string& id) {
    differentiation::StoredValue late;
    late.entity_id = id;
    late.model_id = "job-1";
    late.frequency = 3;
    late.segment = "Champions";
    late.value_hundredths = 9000;
    late.tier = 4;
    late.score_time_us = now_;
    ASSERT_TRUE(values.UpsertValues({late}).ok());
    ASSERT_EQ(db_.Count("SELECT COUNT(*) FROM member_scores WHERE "
                        "member_id = ?",
                        {id}),
              1);
  };
  auto remove = [&](const std::string& id) {
    v1::DeleteMemberRequest del;
    del.set_id(id);
    del.set_force(true);
    ASSERT_TRUE(logic_.DeleteMember(del, "user:admin").ok());
  };

  v1::CreateMemberRequest create;
  create.mutable_member()->set_display_name("Some Fund");
  create.mutable_member()->set_kind(v1::MEMBER_KIND_INVESTOR);
  create.set_request_id("create-9");
  absl::StatusOr<v1::Member> first = logic_.CreateMember(create, "user:ada");
  ASSERT_TRUE(first.ok()) << first.status();
  remove(first->id());
  late_value(first->id());
  absl::StatusOr<v1::Member> again = logic_.CreateMember(create, "user:ada");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), first->id());
  EXPECT_FALSE(again->has_value()) << again->value().DebugString();
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM member_scores"), 0);

  // An identify retried under the request id that made a member deleted
  // since identifies anew: the member is made again, without the value.
  v1::IdentifyMemberRequest identify;
  identify.set_display_name("Other Fund");
  identify.add_external_ids()->set_source("13f");
  identify.mutable_external_ids(0)->set_id("0042");
  identify.set_request_id("identify-9");
  absl::StatusOr<v1::IdentifyMemberResponse> made =
      logic_.IdentifyMember(identify, "user:ada");
  ASSERT_TRUE(made.ok()) << made.status();
  remove(made->member().id());
  late_value(made->member().id());
  absl::StatusOr<v1::IdentifyMemberResponse> remade =
      logic_.IdentifyMember(identify, "user:ada");
  ASSERT_TRUE(remade.ok()) << remade.status();
  EXPECT_TRUE(remade->created());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM members WHERE id = ?",
                      {remade->member().id()}),
            1);
  EXPECT_FALSE(remade->member().has_value());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM member_scores"), 0);
}

TEST_F(CommunityLogicTest, AMemberWithHistoryIsDeletedOnlyWithForce) {
  const std::string a = Create("A", v1::MEMBER_KIND_SHAREHOLDER);
  Hold(a, "ACME", Date(2024, 6, 30), 100, "10");
  v1::DeleteMemberRequest r;
  r.set_id(a);
  EXPECT_TRUE(absl::IsFailedPrecondition(logic_.DeleteMember(r, "u")));
  // Refused: the member and its history stay, and nothing is audited.
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM members WHERE id = ?", {a}), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'DeleteMember'"),
            0);
  r.set_force(true);
  ASSERT_TRUE(logic_.DeleteMember(r, "u").ok());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 0);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'DeleteMember' AND details = 'force'"),
            1);
  // Deleted again: NOT_FOUND, unless allow_missing says a retry finding
  // its work done is fine; either way nothing more is audited.
  EXPECT_TRUE(absl::IsNotFound(logic_.DeleteMember(r, "u")));
  r.set_allow_missing(true);
  EXPECT_TRUE(logic_.DeleteMember(r, "u").ok());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'DeleteMember'"),
            1);
}

// Imported holdings and engagements change members' values: their members
// are re-scored once the rows are stored; coverage changes none.
TEST_F(CommunityLogicTest,
       ImportsRescoreTheMembersOfStoredHoldingsAndEngagements) {
  testing::RescoreRecorder values;
  MysqlCommunityImports imports(
      &db_.pool(), &ids_, [this] { return absl::FromUnixMicros(now_); },
      {.currency = "USD"}, &values);
  v1::ImportHoldingsRequest h;
  h.set_import_id("13f");
  v1::HoldingRow* row = h.add_rows();
  row->set_row(1);
  row->set_member_ref("ext:13f:1");
  row->set_security("ACME");
  row->set_date("2024-06-30");
  row->set_shares("100");
  row->set_price("12");
  ASSERT_TRUE(imports.ImportHoldings(testing::OneMessage(h), "user:ada").ok());
  const std::vector<std::string> holder = db_.Strings(
      "SELECT member_id FROM member_external_ids WHERE external_id = '1'");
  ASSERT_EQ(holder.size(), 1u);
  EXPECT_EQ(values.soon, holder);
  // The member an import makes names who made it.
  v1::GetMemberRequest get;
  get.set_id(holder[0]);
  EXPECT_EQ(logic_.GetMember(get)->created_by(), "user:ada");

  const std::string b = Create("B", v1::MEMBER_KIND_INVESTOR);
  v1::ImportEngagementsRequest e;
  e.set_import_id("meetings");
  v1::EngagementRow* met = e.add_rows();
  met->set_row(1);
  met->set_member_ref(b);
  met->set_timestamp("2024-06-10T09:00:00Z");
  met->set_kind("meeting");
  met->set_cost("50");
  ASSERT_TRUE(
      imports.ImportEngagements(testing::OneMessage(e), "user:ada").ok());
  EXPECT_EQ(values.soon, (std::vector<std::string>{holder[0], b}));

  v1::ImportCoverageRequest c;
  c.set_import_id("ratings");
  v1::CoverageRow* rated = c.add_rows();
  rated->set_row(1);
  rated->set_member_ref("ext:broker:77");
  rated->set_security("ACME");
  rated->set_date("2024-06-01");
  rated->set_rating("buy");
  absl::StatusOr<v1::ImportCoverageResponse> rated_import =
      imports.ImportCoverage(testing::OneMessage(c), "user:ada");
  ASSERT_TRUE(rated_import.ok()) << rated_import.status();
  EXPECT_EQ(rated_import->accepted(), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage"), 1);
  EXPECT_EQ(values.soon.size(), 2u);  // coverage re-scores nobody
}

// A quarterly file amended twice: each import corrects the position the one
// before stored, and a retry of an earlier import (whose rows corrected a
// stored one and so were kept under that row's id) finds its rows stored and
// changes nothing, so the latest correction stands.
TEST_F(CommunityLogicTest, ARetriedImportNeverUndoesALaterCorrection) {
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  auto import = [&](const std::string& import_id,
                    const std::vector<int64_t>& shares,
                    const std::string& actor = "user:ada") {
    v1::ImportHoldingsRequest h;
    h.set_import_id(import_id);
    int64_t row = 1;
    for (int64_t n : shares) {
      v1::HoldingRow* r = h.add_rows();
      r->set_row(++row);
      r->set_member_ref("ext:13f:1");
      r->set_security("ACME");
      r->set_date("2024-06-30");
      r->set_shares(absl::StrCat(n));
      r->set_price("12");
    }
    return imports.ImportHoldings(testing::OneMessage(h), actor);
  };
  absl::StatusOr<v1::ImportHoldingsResponse> first = import("q2", {100});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->accepted(), 1);
  // The amendment corrects the position twice in one file: the last row wins.
  absl::StatusOr<v1::ImportHoldingsResponse> amended =
      import("q2-amended", {110, 120});
  ASSERT_TRUE(amended.ok()) << amended.status();
  EXPECT_EQ(amended->accepted(), 2);
  EXPECT_EQ(db_.Count("SELECT shares FROM holdings"), 120);
  ASSERT_TRUE(import("q2-final", {130}).ok());
  EXPECT_EQ(db_.Count("SELECT shares FROM holdings"), 130);

  for (const auto& [id, shares] :
       std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"q2-amended", {110, 120}}, {"q2", {100}}, {"q2-final", {130}}}) {
    absl::StatusOr<v1::ImportHoldingsResponse> retry = import(id, shares);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_EQ(retry->accepted(), 0) << id;
    EXPECT_EQ(retry->duplicates(), static_cast<int64_t>(shares.size())) << id;
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 1);
  EXPECT_EQ(db_.Count("SELECT shares FROM holdings"), 130);
  // The three rows that corrected the first are kept where retries look,
  // and each correction is audited with what it replaced and who had
  // recorded that.
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holding_requests"), 3);
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE rpc = "
                        "'ImportHoldings' AND details LIKE 'corrected %' ORDER "
                        "BY details"),
            (std::vector<std::string>{
                "corrected ACME 2024-06-30 by row 2: shares 100 -> 110, price "
                "12.00 -> 12.00 (recorded by user:ada)",
                "corrected ACME 2024-06-30 by row 2: shares 120 -> 130, price "
                "12.00 -> 12.00 (recorded by user:ada)",
                "corrected ACME 2024-06-30 by row 3: shares 110 -> 120, price "
                "12.00 -> 12.00 (recorded by user:ada)"}));

  // The same position in another file, imported by someone else: a
  // duplicate. It leaves the recorder as it was and audits no correction.
  absl::StatusOr<v1::ImportHoldingsResponse> copy =
      import("q2-copy", {130}, "user:bob");
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->accepted(), 0);
  EXPECT_EQ(copy->duplicates(), 1);
  EXPECT_EQ(db_.Strings("SELECT recorded_by FROM holdings"),
            std::vector<std::string>{"user:ada"});
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE details LIKE "
                      "'corrected %'"),
            3);
  // A correction by him names who recorded what it replaced.
  ASSERT_TRUE(import("q2-late", {90}, "user:bob").ok());
  EXPECT_EQ(db_.Strings("SELECT recorded_by FROM holdings"),
            std::vector<std::string>{"user:bob"});
  EXPECT_EQ(
      db_.Count("SELECT COUNT(*) FROM audit_events WHERE actor = "
                "'user:bob' AND details = 'corrected ACME 2024-06-30 by "
                "row 2: shares 130 -> 90, price 12.00 -> 12.00 (recorded by "
                "user:ada)'"),
      1);
}

// An engagement imported under a request id is not stored again for the
// same member by LogEngagement under that request id.
TEST_F(CommunityLogicTest, AnImportedEngagementIsNotLoggedTwiceForAMember) {
  const std::string ann = Create("Ann", v1::MEMBER_KIND_INVESTOR);
  const std::string bob = Create("Bob", v1::MEMBER_KIND_INVESTOR);
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  v1::ImportEngagementsRequest e;
  e.set_import_id("meetings");
  v1::EngagementRow* row = e.add_rows();
  row->set_row(2);
  row->set_member_ref(ann);
  row->set_timestamp("2024-06-10T09:00:00Z");
  row->set_kind("meeting");
  row->set_cost("50");
  row->set_request_id("meet-42/ann");
  ASSERT_TRUE(
      imports.ImportEngagements(testing::OneMessage(e), "user:ada").ok());
  v1::LogEngagementRequest r;
  r.add_member_ids(ann);
  r.add_member_ids(bob);
  r.set_kind(v1::ENGAGEMENT_KIND_MEETING);
  *r.mutable_time() = ToTimestamp(At("2024-06-10T09:00:00Z"));
  *r.mutable_cost() = Usd("100");
  r.set_request_id("meet-42");
  absl::Status again = logic_.LogEngagement(r, "user:ada").status();
  EXPECT_TRUE(NamesField(again, "request_id"));
  EXPECT_TRUE(absl::StrContains(again.message(), ann)) << again;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 1);
  // A call naming only members the import has not joins its engagement.
  v1::LogEngagementRequest joining = r;
  joining.clear_member_ids();
  joining.add_member_ids(bob);
  ASSERT_TRUE(logic_.LogEngagement(joining, "user:ada").ok());
  EXPECT_EQ(db_.Count("SELECT COUNT(DISTINCT engagement_id) FROM engagements"),
            1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 2);
  // Under a request id of its own the meeting is another engagement.
  r.set_request_id("meet-43");
  ASSERT_TRUE(logic_.LogEngagement(r, "user:ada").ok());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 4);
}

// An engagement counts at most 100 members, imported as logged: the rows of
// one group past that are refused, naming the group.
TEST_F(CommunityLogicTest, AnImportedEngagementCountsAtMostAHundredMembers) {
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  v1::ImportEngagementsRequest e;
  e.set_import_id("conference");
  for (int i = 0; i < 101; ++i) {
    v1::EngagementRow* row = e.add_rows();
    row->set_row(i + 2);
    row->set_member_ref(absl::StrCat("ext:crm:m", i));
    row->set_timestamp("2024-06-10T09:00:00Z");
    row->set_kind("conference");
    row->set_cost("1");
    row->set_request_id(absl::StrCat("conf-1/", i));
  }
  absl::StatusOr<v1::ImportEngagementsResponse> imported =
      imports.ImportEngagements(testing::OneMessage(e), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 100);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 102);
  EXPECT_EQ(imported->rejected(0).field(), "request_id");
  EXPECT_TRUE(absl::StrContains(imported->rejected(0).message(), "conf-1"))
      << imported->rejected(0).message();
  EXPECT_EQ(db_.Count("SELECT COUNT(DISTINCT engagement_id) FROM engagements"),
            1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 100);
  // Not the member of the refused row, the 101st.
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements e JOIN "
                      "member_external_ids x ON x.member_id = e.member_id "
                      "WHERE x.source = 'crm' AND x.external_id = 'm100'"),
            0);
}

// The same, racing: an import and LogEngagement that name one member in one
// engagement at the same moment store it once, whichever commits first.
TEST_F(CommunityLogicTest, AnImportAndALogRacingForOneMemberStoreItOnce) {
  const std::string ann = Create("Ann", v1::MEMBER_KIND_INVESTOR);
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  for (int round = 0; round < 30; ++round) {
    const std::string group = absl::StrCat("race-", round);
    v1::ImportEngagementsRequest e;
    e.set_import_id(group);
    v1::EngagementRow* row = e.add_rows();
    row->set_row(1);
    row->set_member_ref(ann);
    row->set_timestamp("2024-06-10T09:00:00Z");
    row->set_kind("meeting");
    row->set_cost("50");
    row->set_request_id(group + "/ann");
    v1::LogEngagementRequest r;
    r.add_member_ids(ann);
    r.set_kind(v1::ENGAGEMENT_KIND_MEETING);
    *r.mutable_time() = ToTimestamp(At("2024-06-10T09:00:00Z"));
    *r.mutable_cost() = Usd("50");
    r.set_request_id(group);
    absl::Notification go;
    absl::Status imported, logged;
    std::thread importer([&] {
      go.WaitForNotification();
      imported = imports.ImportEngagements(testing::OneMessage(e), "user:ada")
                     .status();
    });
    std::thread logger([&] {
      go.WaitForNotification();
      logged = logic_.LogEngagement(r, "user:ada").status();
    });
    go.Notify();
    importer.join();
    logger.join();
    // The import answers (its row stored or refused); the log is stored or
    // refused as a member already counted.
    EXPECT_TRUE(imported.ok()) << imported;
    EXPECT_TRUE(logged.ok() || NamesField(logged, "request_id")) << logged;
    // One row more each round, whichever of the two stored it.
    ASSERT_EQ(db_.Count("SELECT COUNT(*) FROM engagements WHERE member_id = ?",
                        {ann}),
              round + 1)
        << "round " << round;
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 30);
}

// An engagement an import stored with the most members it may count takes
// no more from LogEngagement under its request id.
TEST_F(CommunityLogicTest, ALogAddsNoMembersPastTheMostOneEngagementCounts) {
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  v1::ImportEngagementsRequest e;
  e.set_import_id("summit");
  for (int i = 0; i < kMaxEngagementMembers; ++i) {
    v1::EngagementRow* row = e.add_rows();
    row->set_row(i + 1);
    row->set_member_ref(absl::StrCat("ext:crm:", i));
    row->set_timestamp("2024-06-10T09:00:00Z");
    row->set_kind("conference");
    row->set_cost("1");
    row->set_request_id(absl::StrCat("summit/", i));
  }
  absl::StatusOr<v1::ImportEngagementsResponse> imported =
      imports.ImportEngagements(testing::OneMessage(e), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->accepted(), kMaxEngagementMembers);
  v1::LogEngagementRequest more;
  more.add_member_ids(Create("Zed", v1::MEMBER_KIND_INVESTOR));
  more.set_kind(v1::ENGAGEMENT_KIND_CONFERENCE);
  *more.mutable_time() = ToTimestamp(At("2024-06-10T09:00:00Z"));
  *more.mutable_cost() = Usd("1");
  more.set_request_id("summit");
  absl::Status s = logic_.LogEngagement(more, "user:ada").status();
  EXPECT_TRUE(NamesField(s, "member_ids")) << s;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"),
            kMaxEngagementMembers);
}

// Two imports adding members to one new engagement at once, saying other
// things of it (its kind): they take turns, so the engagement keeps one kind
// and the later rows that say otherwise are rejected naming the field.
TEST_F(CommunityLogicTest,
       ImportsAddingToOneEngagementAtOnceKeepItOneEngagement) {
  const std::string ann = Create("Ann", v1::MEMBER_KIND_INVESTOR);
  const std::string bob = Create("Bob", v1::MEMBER_KIND_INVESTOR);
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  for (int round = 0; round < 20; ++round) {
    const std::string group = absl::StrCat("roadshow-", round);
    auto import = [&](const std::string& member, const std::string& kind) {
      v1::ImportEngagementsRequest e;
      e.set_import_id(absl::StrCat(group, "-", kind));
      v1::EngagementRow* row = e.add_rows();
      row->set_row(1);
      row->set_member_ref(member);
      row->set_timestamp("2024-06-10T09:00:00Z");
      row->set_kind(kind);
      row->set_cost("50");
      row->set_request_id(absl::StrCat(group, "/", member));
      return imports.ImportEngagements(testing::OneMessage(e), "user:ada");
    };
    std::vector<absl::StatusOr<v1::ImportEngagementsResponse>> got =
        testing::AtOnce(2, [&](size_t i) {
          return i == 0 ? import(ann, "meeting") : import(bob, "call");
        });
    int accepted = 0;
    for (const auto& g : got) {
      ASSERT_TRUE(g.ok()) << "round " << round << ": " << g.status();
      accepted += static_cast<int>(g->accepted());
      for (const auto& r : g->rejected()) EXPECT_EQ(r.field(), "kind");
    }
    EXPECT_EQ(accepted, 1) << "round " << round;
    EXPECT_EQ(db_.Count("SELECT COUNT(DISTINCT kind) FROM engagements WHERE "
                        "engagement_id = ?",
                        {KeyedId("engagement", group)}),
              1)
        << "round " << round;
  }
}

// A retry sent twice at once: both calls answer with what the first stored
// (the second waits for the first's rows, or is the victim of a deadlock
// with it and runs again), never that the request id was used for something
// else, nor the database's duplicate key.
TEST_F(CommunityLogicTest, TwinRetriesSentAtOnceBothGetTheStoredAnswer) {
  const std::string ann = Create("Ann", v1::MEMBER_KIND_INVESTOR);
  const std::string bob = Create("Bob", v1::MEMBER_KIND_INVESTOR);
  for (int round = 0; round < 20; ++round) {
    v1::LogEngagementRequest e;
    e.add_member_ids(ann);
    e.add_member_ids(bob);
    e.set_kind(v1::ENGAGEMENT_KIND_CALL);
    *e.mutable_time() = ToTimestamp(At("2024-06-10T09:00:00Z") + round);
    *e.mutable_cost() = Usd("40");
    e.set_request_id(absl::StrCat("call-", round));
    std::vector<absl::StatusOr<v1::LogEngagementResponse>> met =
        testing::AtOnce(
            2, [&](size_t) { return logic_.LogEngagement(e, "user:ada"); });
    for (const auto& m : met) {
      ASSERT_TRUE(m.ok()) << "round " << round << ": " << m.status();
      ASSERT_EQ(m->engagements_size(), 2);
      EXPECT_EQ(m->engagements(1).member_id(), bob);
    }
    EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 2 * (round + 1));

    v1::RecordHoldingRequest h;
    h.mutable_holding()->set_member_id(ann);
    h.mutable_holding()->set_security(absl::StrCat("S", round));
    *h.mutable_holding()->mutable_date() = Date(2024, 6, 30);
    h.mutable_holding()->set_shares(100 + round);
    *h.mutable_holding()->mutable_price() = Usd("12");
    h.set_request_id(absl::StrCat("hold-", round));
    std::vector<absl::StatusOr<v1::Holding>> held = testing::AtOnce(
        2, [&](size_t) { return logic_.RecordHolding(h, "user:ada"); });
    for (const auto& x : held) {
      ASSERT_TRUE(x.ok()) << "round " << round << ": " << x.status();
      EXPECT_EQ(x->shares(), 100 + round);
    }
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 40);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 20);
}

// Imports: rows rejected by row and column, unknown external ids creating
// members, engagements grouped by request id prefix, and a retried import
// storing nothing twice.
TEST_F(CommunityLogicTest, ImportsRejectBadRowsAndStoreNothingTwice) {
  MysqlCommunityImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
  auto holding = [](int64_t row, const std::string& ref,
                    const std::string& date, const std::string& shares,
                    const std::string& price) {
    v1::HoldingRow r;
    r.set_row(row);
    r.set_member_ref(ref);
    r.set_security("ACME");
    r.set_date(date);
    r.set_shares(shares);
    r.set_price(price);
    return r;
  };
  v1::ImportHoldingsRequest h;
  h.set_import_id("13f-2024q2");
  *h.add_rows() = holding(2, "ext:13f:0001", "2024-06-30", "100", "12");
  *h.add_rows() = holding(3, "ext:13f:0002", "2024-06-31", "100", "12");
  *h.add_rows() = holding(4, "ext:13f:0002", "2024-06-30", "1.5", "12");
  *h.add_rows() = holding(5, "ext:13f:0002", "2024-06-30", "10", "-1");
  *h.add_rows() = holding(6, "ext:13f:0003", "2024-06-30", "0", "12");
  // A day still to come (the clock stands at the start of 2024-07-01).
  *h.add_rows() = holding(7, "ext:13f:0001", "2024-07-02", "5", "12");
  auto run = [&]() {
    return imports.ImportHoldings(testing::OneMessage(h), "user:ada");
  };
  absl::StatusOr<v1::ImportHoldingsResponse> first = run();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->accepted(), 2);
  EXPECT_EQ(first->created_members(), 2);
  ASSERT_EQ(first->rejected_size(), 4);
  EXPECT_EQ(first->rejected(0).row(), 3);
  EXPECT_EQ(first->rejected(0).field(), "date");
  EXPECT_EQ(first->rejected(1).field(), "shares");
  EXPECT_EQ(first->rejected(2).field(), "price");
  EXPECT_EQ(first->rejected(3).row(), 7);
  EXPECT_EQ(first->rejected(3).field(), "date");
  EXPECT_EQ(first->rejected(3).message(), "must not be a day still to come");
  absl::StatusOr<v1::ImportHoldingsResponse> retry = run();
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->accepted(), 0);
  EXPECT_EQ(retry->duplicates(), 2);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM holdings"), 2);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM members WHERE kind = 2"), 2);

  // Two rows of one engagement, one of another; a bad kind.
  auto engagement = [](int64_t row, const std::string& ref,
                       const std::string& kind, const std::string& request) {
    v1::EngagementRow r;
    r.set_row(row);
    r.set_member_ref(ref);
    r.set_timestamp("2024-06-10T09:00:00Z");
    r.set_kind(kind);
    r.set_cost("50");
    r.set_request_id(request);
    return r;
  };
  v1::ImportEngagementsRequest e;
  e.set_import_id("meetings");
  *e.add_rows() = engagement(2, "ext:13f:0001", "meeting", "meet-42/ann");
  *e.add_rows() = engagement(3, "ext:13f:0003", "meeting", "meet-42/bob");
  *e.add_rows() = engagement(4, "ext:13f:0003", "earnings_call", "call-7");
  *e.add_rows() = engagement(5, "ext:13f:0003", "lunch", "x");
  // A member once per engagement.
  *e.add_rows() = engagement(6, "ext:13f:0003", "meeting", "meet-42/again");
  // One engagement has one time and one kind.
  *e.add_rows() = engagement(7, "ext:13f:0002", "call", "meet-42/cy");
  v1::EngagementRow later =
      engagement(8, "ext:13f:0002", "meeting", "meet-42/dee");
  later.set_timestamp("2024-06-11T09:00:00Z");
  *e.add_rows() = later;
  // A request id with nothing before its '/' names no engagement to share.
  *e.add_rows() = engagement(9, "ext:13f:0002", "meeting", "/eve");
  absl::StatusOr<v1::ImportEngagementsResponse> logged =
      imports.ImportEngagements(testing::OneMessage(e), "user:ada");
  ASSERT_TRUE(logged.ok()) << logged.status();
  EXPECT_EQ(logged->accepted(), 3);
  ASSERT_EQ(logged->rejected_size(), 5);
  EXPECT_EQ(logged->rejected(4).row(), 9);
  EXPECT_EQ(logged->rejected(4).field(), "request_id");
  EXPECT_EQ(logged->rejected(0).field(), "kind");
  EXPECT_EQ(logged->rejected(1).row(), 6);
  EXPECT_EQ(logged->rejected(1).field(), "member_ref");
  EXPECT_EQ(logged->rejected(2).row(), 7);
  EXPECT_EQ(logged->rejected(2).field(), "kind");
  EXPECT_EQ(logged->rejected(2).message(),
            "engagement \"meet-42\" is a meeting at 2024-06-10T09:00:00Z; "
            "each of its rows says so");
  EXPECT_EQ(logged->rejected(3).row(), 8);
  EXPECT_EQ(logged->rejected(3).field(), "timestamp");
  EXPECT_EQ(db_.Count("SELECT COUNT(DISTINCT engagement_id) FROM engagements"),
            2);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM engagements"), 3);
  // An engagement logged through LogEngagement under a request id is the
  // one import rows of that id join: a member it has already is refused.
  const std::string ann =
      db_.Strings(
             "SELECT member_id FROM member_external_ids WHERE "
             "external_id = '0001'")
          .at(0);
  Meet({ann}, "2024-06-12T09:00:00Z", "300", "lunch-9");
  e.Clear();
  e.set_import_id("meetings-2");
  *e.add_rows() = engagement(2, "ext:13f:0001", "meeting", "lunch-9/ann");
  *e.add_rows() = engagement(3, "ext:13f:0003", "meeting", "lunch-9/bob");
  for (v1::EngagementRow& r : *e.mutable_rows())
    r.set_timestamp("2024-06-12T09:00:00Z");  // the lunch's
  logged = imports.ImportEngagements(testing::OneMessage(e), "user:ada");
  ASSERT_TRUE(logged.ok()) << logged.status();
  EXPECT_EQ(logged->accepted(), 1);
  ASSERT_EQ(logged->rejected_size(), 1);
  EXPECT_EQ(logged->rejected(0).row(), 2);
  EXPECT_EQ(logged->rejected(0).field(), "member_ref");
  // The other way round: a call under the request id of an imported
  // engagement that says another time is another engagement, refused.
  v1::LogEngagementRequest other_time;
  other_time.add_member_ids(Create("Zed", v1::MEMBER_KIND_INVESTOR));
  other_time.set_kind(v1::ENGAGEMENT_KIND_MEETING);
  *other_time.mutable_time() = ToTimestamp(At("2024-06-11T09:00:00Z"));
  *other_time.mutable_cost() = Usd("10");
  other_time.set_request_id("meet-42");
  absl::Status other_refused =
      logic_.LogEngagement(other_time, "user:ada").status();
  EXPECT_TRUE(NamesField(other_refused, "request_id"));
  EXPECT_TRUE(absl::StrContains(other_refused.message(),
                                "names a meeting at 2024-06-10T09:00:00Z"))
      << other_refused;

  // Coverage from an unknown external id creates an analyst.
  v1::ImportCoverageRequest c;
  c.set_import_id("ratings");
  v1::CoverageRow* row = c.add_rows();
  row->set_row(2);
  row->set_member_ref("ext:broker:77");
  row->set_security("ACME");
  row->set_date("2024-06-01");
  row->set_rating("Overweight");
  row->set_target_price("14.5");
  absl::StatusOr<v1::ImportCoverageResponse> rated =
      imports.ImportCoverage(testing::OneMessage(c), "user:ada");
  ASSERT_TRUE(rated.ok()) << rated.status();
  EXPECT_EQ(rated->accepted(), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM members WHERE kind = 3"), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage WHERE rating = 1"), 1);

  // Coverage is an analyst's: a row naming a shareholder is refused, by
  // import and by RecordCoverage alike.
  const std::string holder = Create("Holder", v1::MEMBER_KIND_SHAREHOLDER);
  c.set_import_id("ratings-2");
  row->set_member_ref(holder);
  rated = imports.ImportCoverage(testing::OneMessage(c), "user:ada");
  ASSERT_TRUE(rated.ok()) << rated.status();
  EXPECT_EQ(rated->accepted(), 0);
  ASSERT_EQ(rated->rejected_size(), 1);
  EXPECT_EQ(rated->rejected(0).row(), 2);
  EXPECT_EQ(rated->rejected(0).field(), "member_ref");
  EXPECT_EQ(rated->rejected(0).message(),
            "names a shareholder; coverage is an analyst's");
  v1::RecordCoverageRequest direct;
  direct.mutable_coverage()->set_member_id(holder);
  direct.mutable_coverage()->set_security("ACME");
  *direct.mutable_coverage()->mutable_date() = Date(2024, 6, 1);
  direct.mutable_coverage()->set_rating(v1::RATING_BUY);
  absl::Status refused = logic_.RecordCoverage(direct, "user:ada").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage"), 1);
  // The store checks the kind again with the member locked: a member whose
  // kind changed after the service looked is refused there too.
  CoverageRecord late;
  late.id = ids_.Next();
  late.member_id = holder;
  late.security = "ACME";
  late.end_time_us = At("2024-06-01T23:59:59.999999Z");
  late.rating = v1::RATING_BUY;
  late.recorded_by = "user:ada";
  refused = store_.RecordCoverage(late, "fingerprint").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  late.member_id = ids_.Next();
  EXPECT_TRUE(absl::IsNotFound(store_.RecordCoverage(late, "f").status()));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM coverage"), 1);
}

}  // namespace
}  // namespace rapport::community
