// What the financial-community service keeps, and the storage interface its
// logic uses (MysqlCommunityStore implements it). Every change to a member is
// written with its audit event in one transaction; register rows,
// engagements and ratings carry who recorded them.
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_STORE_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/audit/audit.h"
#include "common/base/decimal.h"
#include "common/paging.h"
#include "common/records/records.h"

namespace rapport::community {

struct MemberRecord {
  std::string id;
  std::string display_name;
  int kind = 0;  // rapport.financial_community.v1.MemberKind
  int type = 0;  // MemberType
  std::string organisation;
  std::vector<ContactInfo> contacts;
  std::vector<ExternalKey> external_ids;
  std::map<std::string, std::string> attributes;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 0;
  std::string created_by;  // the subject of the token that created it
  // In a listing by value: the stored value it was sorted by (the next
  // page's cursor).
  int listed_value_hundredths = 0;
  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

struct HoldingRecord {
  std::string id;
  std::string member_id;
  std::string security;
  int64_t end_time_us = 0;  // the last microsecond of its date
  int64_t shares = 0;
  Decimal price;
  std::string recorded_by;
  int64_t create_time_us = 0;  // when it was first recorded (written only)
};

struct EngagementRecord {
  std::string id;
  std::string engagement_id;
  std::string member_id;
  int kind = 0;
  int64_t time_us = 0;
  Decimal cost;
  std::string outcome;
  std::string note;
  std::string recorded_by;
};

struct CoverageRecord {
  std::string id;
  std::string member_id;
  std::string security;
  int64_t end_time_us = 0;
  int64_t create_time_us = 0;  // when it was recorded (written only)
  int rating = 0;
  std::string rating_text;
  std::optional<Decimal> target_price;
  std::string recorded_by;
};

// A member's position in a security: its latest row at or before a time.
struct PositionRecord {
  std::string member_id;
  std::string display_name;
  std::string security;
  int64_t end_time_us = 0;
  int64_t shares = 0;
  Decimal price;
  Decimal market_value;  // shares * price
};

// A position whose shares changed between two dates: as it was `from`, as
// it is `to` (shares and market value 0, no price or date, where there was
// no row), and the value of the shares bought or sold, at the price of the
// row in force at `to` (the sell-out's price for an exit).
struct PositionChangeRecord {
  PositionRecord from;
  PositionRecord to;
  Decimal traded_value;
};

struct DuplicateMemberGroupRecord {
  std::string reason;
  std::string key;
  std::vector<std::string> member_ids;
};

// What targeting and early warning read of every member that holds (or held)
// anything: per security its last two rows at or before as_of, and the time
// of its last engagement at or before as_of.
struct MemberHoldingsView {
  std::string member_id;
  std::string display_name;
  int kind = 0;
  struct Security {
    std::string security;
    HoldingRecord last;
    std::optional<HoldingRecord> previous;
  };
  std::vector<Security> securities;
  std::optional<int64_t> last_engagement_us;
};

template <typename Record>
using Mutation = std::function<absl::Status(Record& row)>;

class CommunityStore {
 public:
  virtual ~CommunityStore() = default;

  // Members (a create under a stored request id returns the stored member
  // when `fingerprint` matches, else ALREADY_EXISTS). With
  // `identify_email_key` (an identify by contact email creating the member),
  // a member with a contact of that key is ALREADY_EXISTS, checked and
  // created under a lock on the key (see CreateClaimingEmail).
  virtual absl::StatusOr<MemberRecord> CreateMember(
      const MemberRecord& member, const std::string& fingerprint,
      const audit::Event& event, const std::string& identify_email_key) = 0;
  // The member with its children, read in one snapshot.
  virtual absl::StatusOr<MemberRecord> GetMember(const std::string& id) = 0;
  // Whether member `id` exists (one statement, for checks).
  virtual absl::StatusOr<bool> MemberExists(const std::string& id) = 0;
  // The fingerprint the create of member `id` stored, if it exists.
  virtual absl::StatusOr<std::optional<std::string>> MemberFingerprint(
      const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<MemberRecord>> ListMembers(
      int kind, int tier, const std::string& segment, bool by_value,
      const std::string& after_id, std::optional<int> after_value,
      int limit) = 0;
  // Applies `mutate` to the stored member (locked) and stores the result;
  // when `mutate` changes nothing, nothing is written or audited.
  virtual absl::StatusOr<MemberRecord> UpdateMember(
      const std::string& id, const Mutation<MemberRecord>& mutate,
      const audit::Event& event) = 0;
  virtual absl::Status DeleteMember(
      const std::string& id, bool force,
      const std::function<absl::Status(const MemberRecord&)>& check,
      const audit::Event& event) = 0;
  virtual absl::StatusOr<std::vector<std::string>> FindMembers(
      const std::vector<ExternalKey>& external_ids,
      const std::string& email_key) = 0;
  virtual absl::StatusOr<std::vector<DuplicateMemberGroupRecord>>
  FindDuplicates(const std::string& after, int limit) = 0;

  // Register. A row for a member, security and date that has one already
  // replaces its shares, price and recorded_by (a correction), and
  // `correction` is audited with what it changed. With a request id
  // (`keyed`: holding.id is KeyedId of it) the request is kept, so that its
  // retry returns the position it wrote (as it stands) and changes nothing.
  virtual absl::StatusOr<HoldingRecord> RecordHolding(
      const HoldingRecord& holding, const std::string& fingerprint, bool keyed,
      const audit::Event& correction) = 0;
  // Positions with shares at `as_of_us` (of `security`, or all), largest
  // market value first, then by member and security, after the position
  // `after` of an earlier page (when given); and the totals of all of them.
  struct RegisterPage {
    std::vector<PositionRecord> positions;
    Decimal total;
    int64_t holders = 0;
  };
  struct PositionKey {
    Decimal value;
    std::string member_id;
    std::string security;
  };
  virtual absl::StatusOr<RegisterPage> Register(
      int64_t as_of_us, const std::string& security,
      const std::optional<PositionKey>& after, int limit) = 0;
  // A member's holding rows (of `security`, or all) by security and date,
  // after the row of (after_security, after_time_us) when after_security is
  // not empty.
  virtual absl::StatusOr<std::vector<HoldingRecord>> PositionHistory(
      const std::string& member_id, const std::string& security,
      const std::string& after_security, int64_t after_time_us, int limit) = 0;
  // The positions (of `security`, or all) whose shares at `to_us` differ
  // from those at `from_us`, with the member's name, the largest traded
  // value first, then by member and security, after the change `after` of
  // an earlier page (its traded value, member and security) when given.
  // OUT_OF_RANGE naming the member when a traded value does not fit the
  // exact decimal.
  virtual absl::StatusOr<std::vector<PositionChangeRecord>> PositionChanges(
      int64_t from_us, int64_t to_us, const std::string& security,
      const std::optional<PositionKey>& after, int limit) = 0;

  // Engagements: all rows of one engagement in one transaction (a retry
  // under the same ids returns the stored rows).
  virtual absl::StatusOr<std::vector<EngagementRecord>> LogEngagement(
      const std::vector<EngagementRecord>& rows,
      const std::string& fingerprint) = 0;
  // A member's engagements in time order (then id), after `after`.
  virtual absl::StatusOr<std::vector<EngagementRecord>> ListEngagements(
      const std::string& member_id, const TimeCursor& after, int limit) = 0;

  // Coverage.
  virtual absl::StatusOr<CoverageRecord> RecordCoverage(
      const CoverageRecord& coverage, const std::string& fingerprint) = 0;
  // Every rating of `security` at or before `as_of_us` by members who are
  // analysts now (a member changed to another kind no longer counts), by
  // member and time.
  virtual absl::StatusOr<std::vector<CoverageRecord>> CoverageOf(
      const std::string& security, int64_t as_of_us) = 0;

  // Targeting and early warning: calls `visit` with the view of every member
  // that holds or held a position, or was engaged, at or before `as_of_us`,
  // in member id order; the first error `visit` returns stops it. Members are
  // read a few thousand at a time, so that memory follows that, not the size
  // of the register.
  using HoldingsVisitor =
      std::function<absl::Status(const MemberHoldingsView& view)>;
  virtual absl::Status VisitHoldingsViews(int64_t as_of_us,
                                          const HoldingsVisitor& visit) = 0;
  // The members' display names, by id.
  virtual absl::StatusOr<std::map<std::string, std::string>> NamesOf(
      const std::vector<std::string>& ids) = 0;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_STORE_H_
