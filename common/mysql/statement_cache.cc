#include "common/mysql/statement_cache.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace rapport {
namespace {

// Distinct query texts cached per connection; queries built from many filter
// combinations stay well below it, and past it statements are not cached.
constexpr size_t kMaxStatements = 256;

using Statements =
    absl::flat_hash_map<std::string, std::unique_ptr<sql::PreparedStatement>>;

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<sql::Connection*, std::unique_ptr<Statements>>
      by_connection ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static auto* registry = new Registry();
  return *registry;
}

}  // namespace

CachedStatement PrepareCached(sql::Connection& c, const std::string& query,
                              StatementParameters parameters) {
  Registry& registry = TheRegistry();
  Statements* statements;
  {
    absl::MutexLock lock(&registry.mu);
    std::unique_ptr<Statements>& slot = registry.by_connection[&c];
    if (slot == nullptr) slot = std::make_unique<Statements>();
    statements = slot.get();
  }
  // Only the thread holding the connection touches its statements.
  auto it = statements->find(query);
  if (it != statements->end()) {
    if (parameters == StatementParameters::kCleared)
      it->second->clearParameters();
    return CachedStatement(it->second.get(), nullptr);
  }
  std::unique_ptr<sql::PreparedStatement> s(c.prepareStatement(query));
  if (statements->size() >= kMaxStatements)
    return CachedStatement(nullptr, std::move(s));
  sql::PreparedStatement* raw = s.get();
  statements->emplace(query, std::move(s));
  return CachedStatement(raw, nullptr);
}

void ForgetStatements(sql::Connection* c) {
  std::unique_ptr<Statements> statements;
  Registry& registry = TheRegistry();
  {
    absl::MutexLock lock(&registry.mu);
    auto it = registry.by_connection.find(c);
    if (it == registry.by_connection.end()) return;
    statements = std::move(it->second);
    registry.by_connection.erase(it);
  }
  // Closing a statement of a lost connection may throw; it is going anyway.
  for (auto& [query, s] : *statements) {
    try {
      s.reset();
    } catch (const sql::SQLException&) {
    }
  }
}

}  // namespace rapport
