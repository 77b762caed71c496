// CommunityStore on MySQL/MariaDB (the schema of migrations/).
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_MYSQL_COMMUNITY_STORE_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_MYSQL_COMMUNITY_STORE_H_

#include <vector>

#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/records/records.h"
#include "services/financial_community/community_store.h"

namespace rapport {
// The service's own migrations, embedded at build time.
const std::vector<Migration>& CommunityMigrations();
}  // namespace rapport

namespace rapport::community {

// The child tables of members (contacts, external ids, attributes).
const ChildTables& MemberChildTables();

// Locks the engagements `ids` (their rows of engagement_locks, made when
// missing), in ascending order, until the transaction on `c` ends: whoever
// adds rows to an engagement under a request id takes it first, so that
// concurrent adders take turns and each sees what the other stored. May
// throw sql::SQLException.
void LockEngagements(sql::Connection& c, std::vector<std::string> ids);

// The market value of each of `ids` at `as_of_us`: for each security its
// latest row at or before then, shares * price, summed exactly (SCORING.md
// section 10). Members without holdings are left out. `page`: the ids are
// the members of one range of ids (a refresh's page), read as that range;
// else (ids from all over, a re-score's) as lists.
absl::StatusOr<std::map<std::string, Decimal>> MarketValues(
    sql::Connection& c, const std::vector<std::string>& ids, int64_t as_of_us,
    bool page);

class MysqlCommunityStore final : public CommunityStore {
 public:
  // `visit_chunk`: members read at a time by VisitHoldingsViews (tests make it
  // small to cross chunk boundaries).
  explicit MysqlCommunityStore(MysqlPool* pool, int visit_chunk = 4096)
      : pool_(pool), visit_chunk_(visit_chunk) {}

  absl::StatusOr<MemberRecord> CreateMember(
      const MemberRecord& member, const std::string& fingerprint,
      const audit::Event& event,
      const std::string& identify_email_key) override;
  absl::StatusOr<MemberRecord> GetMember(const std::string& id) override;
  absl::StatusOr<bool> MemberExists(const std::string& id) override;
  absl::StatusOr<std::optional<std::string>> MemberFingerprint(
      const std::string& id) override;
  absl::StatusOr<std::vector<MemberRecord>> ListMembers(
      int kind, int tier, const std::string& segment, bool by_value,
      const std::string& after_id, std::optional<int> after_value,
      int limit) override;
  absl::StatusOr<MemberRecord> UpdateMember(
      const std::string& id, const Mutation<MemberRecord>& mutate,
      const audit::Event& event) override;
  absl::Status DeleteMember(
      const std::string& id, bool force,
      const std::function<absl::Status(const MemberRecord&)>& check,
      const audit::Event& event) override;
  absl::StatusOr<std::vector<std::string>> FindMembers(
      const std::vector<ExternalKey>& external_ids,
      const std::string& email_key) override;
  absl::StatusOr<std::vector<DuplicateMemberGroupRecord>> FindDuplicates(
      const std::string& after, int limit) override;

  absl::StatusOr<HoldingRecord> RecordHolding(
      const HoldingRecord& holding, const std::string& fingerprint, bool keyed,
      const audit::Event& correction) override;
  absl::StatusOr<RegisterPage> Register(int64_t as_of_us,
                                        const std::string& security,
                                        const std::optional<PositionKey>& after,
                                        int limit) override;
  absl::StatusOr<std::vector<HoldingRecord>> PositionHistory(
      const std::string& member_id, const std::string& security,
      const std::string& after_security, int64_t after_time_us,
      int limit) override;
  absl::StatusOr<std::vector<PositionChangeRecord>> PositionChanges(
      int64_t from_us, int64_t to_us, const std::string& security,
      const std::optional<PositionKey>& after, int limit) override;

  absl::StatusOr<std::vector<EngagementRecord>> LogEngagement(
      const std::vector<EngagementRecord>& rows,
      const std::string& fingerprint) override;
  absl::StatusOr<std::vector<EngagementRecord>> ListEngagements(
      const std::string& member_id, const TimeCursor& after,
      int limit) override;

  absl::StatusOr<CoverageRecord> RecordCoverage(
      const CoverageRecord& coverage, const std::string& fingerprint) override;
  absl::StatusOr<std::vector<CoverageRecord>> CoverageOf(
      const std::string& security, int64_t as_of_us) override;

  absl::Status VisitHoldingsViews(int64_t as_of_us,
                                  const HoldingsVisitor& visit) override;
  absl::StatusOr<std::map<std::string, std::string>> NamesOf(
      const std::vector<std::string>& ids) override;

 private:
  MysqlPool* const pool_;
  const int visit_chunk_;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_MYSQL_COMMUNITY_STORE_H_
