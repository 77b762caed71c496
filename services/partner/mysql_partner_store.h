// PartnerStore on MySQL/MariaDB (the schema of migrations/).
#ifndef RAPPORT_SERVICES_PARTNER_MYSQL_PARTNER_STORE_H_
#define RAPPORT_SERVICES_PARTNER_MYSQL_PARTNER_STORE_H_

#include <string>
#include <vector>

#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/records/records.h"
#include "services/partner/partner_store.h"

namespace rapport {
// The partner service's own migrations (migrations/), embedded at build time.
const std::vector<Migration>& PartnerMigrations();
}  // namespace rapport

namespace rapport::partner {

// The child tables of partners (contacts, external ids, attributes).
const ChildTables& PartnerChildTables();

// Locks the accounts that open registrations claim, by their normalised
// domains (empty ones skipped) and names, in one order for every caller (the
// rows of deal_account_locks, made on first use). A registration, filed or
// imported, takes them before it reads the account's earlier claims, so that
// two registrations of one account racing each other are checked one after
// the other and the second finds the first. The reader must then see what
// was committed before the locks were granted: a read in a READ COMMITTED
// transaction (a locking read would, but deadlocks with an import holding
// uncommitted rows of the account).
void LockDealAccounts(sql::Connection& c,
                      const std::vector<std::string>& domain_keys,
                      const std::vector<std::string>& name_keys);

// The condition on a row of `deals` that it holds its account, for the
// claims that a registration, an approval or a won deal meets: it is in
// conflict with no claim that is still open or won (it was first, or what it
// yielded to has closed), or it was approved over that claim with force, or
// it was won (an imported won deal over another's claim is what was won). A
// registration that yields to another's protects nothing by itself: a later
// one of the partner it yields to does not conflict with it.
inline constexpr char kDealHoldsItsAccount[] =
    "(deals.conflict_with IS NULL OR deals.approved_in_conflict OR "
    "deals.state = 4 OR NOT EXISTS (SELECT 1 FROM deals r WHERE r.id = "
    "deals.conflict_with AND r.state IN (1, 2, 4)))";

// The columns of a deal, in the order ReadDeal reads them from `first`.
extern const char kDealColumns[];
absl::StatusOr<DealRecord> ReadDeal(sql::ResultSet& rows, int first = 1);

class MysqlPartnerStore final : public PartnerStore {
 public:
  explicit MysqlPartnerStore(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<PartnerRecord> CreatePartner(
      const PartnerRecord& partner, const std::string& fingerprint,
      const audit::Event& event,
      const std::string& identify_email_key) override;
  absl::StatusOr<PartnerRecord> GetPartner(const std::string& id) override;
  absl::StatusOr<bool> PartnerExists(const std::string& id) override;
  absl::StatusOr<std::optional<std::string>> PartnerFingerprint(
      const std::string& id) override;
  absl::StatusOr<std::vector<PartnerRecord>> ListPartners(
      const PartnerFilter& filter, const PageCursor& after, int limit) override;
  absl::StatusOr<PartnerRecord> UpdatePartner(
      const std::string& id, const Mutation<PartnerRecord>& mutate,
      const audit::Event& event, int64_t window_us) override;
  absl::Status DeletePartner(const std::string& id, bool force,
                             int64_t window_us,
                             const Check<PartnerRecord>& check,
                             const audit::Event& event) override;
  absl::StatusOr<std::vector<std::string>> FindPartners(
      const std::vector<ExternalKey>& external_ids,
      const std::string& email_key) override;
  absl::StatusOr<std::vector<DuplicateGroupRecord>> FindDuplicates(
      const std::string& after, int limit) override;

  absl::StatusOr<ProgramRecord> CreateProgram(
      const ProgramRecord& program, const std::string& fingerprint,
      const audit::Event& event) override;
  absl::StatusOr<ProgramRecord> GetProgram(const std::string& id) override;
  absl::StatusOr<std::vector<ProgramRecord>> ListPrograms(
      const std::string& after, int limit) override;
  absl::StatusOr<AgreementRecord> CreateAgreement(
      const AgreementRecord& agreement, const std::string& fingerprint,
      const audit::Event& event) override;
  absl::StatusOr<AgreementRecord> GetAgreement(const std::string& id) override;
  absl::StatusOr<std::vector<AgreementRecord>> ListAgreements(
      const std::string& partner_id, const std::string& program_id, int state,
      const std::string& after, int limit, int64_t now_us) override;
  absl::StatusOr<AgreementRecord> UpdateAgreement(
      const std::string& id, const Mutation<AgreementRecord>& mutate,
      const audit::Event& event) override;

  absl::StatusOr<DealRecord> RegisterDeal(const DealRecord& deal,
                                          const std::string& fingerprint,
                                          int64_t window_us,
                                          const audit::Event& event) override;
  absl::StatusOr<DealRecord> GetDeal(const std::string& id) override;
  absl::StatusOr<std::string> OpenClaimBefore(const DealRecord& deal,
                                              int64_t window_us) override;
  absl::StatusOr<std::vector<DealRecord>> ListDeals(
      const std::string& partner_id, int state, const std::string& after,
      int limit) override;
  absl::StatusOr<DealRecord> UpdateDeal(const std::string& id,
                                        const Mutation<DealRecord>& mutate,
                                        const audit::Event& event,
                                        int64_t window_us) override;
  absl::StatusOr<std::vector<DealConflictRecord>> ListConflicts(
      const std::string& after, int limit, bool undecided_only) override;

  absl::StatusOr<OrderRecord> RecordOrder(
      const OrderRecord& order, const std::string& fingerprint) override;
  absl::StatusOr<std::vector<OrderRecord>> ListOrders(
      const std::string& partner_id, const TimeCursor& after,
      int limit) override;
  absl::StatusOr<FundRecord> RequestFunds(const FundRecord& fund,
                                          const std::string& fingerprint,
                                          const audit::Event& event) override;
  absl::StatusOr<FundRecord> GetFundRequest(const std::string& id) override;
  absl::StatusOr<std::vector<FundRecord>> ListFundRequests(
      const std::string& partner_id, int state, const std::string& after,
      int limit) override;
  absl::StatusOr<FundRecord> UpdateFundRequest(
      const std::string& id, const Mutation<FundRecord>& mutate,
      const audit::Event& event) override;
  absl::StatusOr<InteractionRecord> LogInteraction(
      const InteractionRecord& interaction, const std::string& fingerprint,
      const std::optional<audit::Event>& forced,
      const std::function<absl::Status()>& admit) override;
  absl::StatusOr<std::vector<InteractionRecord>> ListInteractions(
      const std::string& partner_id, const TimeCursor& after,
      int limit) override;

  absl::StatusOr<PartnerTotals> TotalsOf(const std::string& id) override;

 private:
  MysqlPool* const pool_;
};

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_MYSQL_PARTNER_STORE_H_
