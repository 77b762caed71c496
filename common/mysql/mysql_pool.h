// A bounded pool of MySQL Connector/C++ connections that survives the database
// going away and coming back.
//
// This is the one place where the connector's exceptions are caught: code that
// talks to the database runs inside Run() or Transaction(), which turn every
// sql::SQLException into an absl::Status (see SqlErrorToStatus). A connection
// that saw a client/server-gone error is thrown away, so the next call makes a
// fresh one; nothing needs restarting when the server is back.
//
// Its metrics, labelled with the database's name: connections in use and
// open, callers waiting for one and how long they wait, acquisitions that
// timed out, connections lost and reconnections (rapport_db_pool_*).
//
//   RAPPORT_ASSIGN_OR_RETURN(auto pool, MysqlPool::Create(options));
//   absl::StatusOr<int64_t> n = pool->Run([&](sql::Connection& c) ->
//   absl::StatusOr<int64_t> {
//     std::unique_ptr<sql::PreparedStatement> s(c.prepareStatement("SELECT
//     COUNT(*) FROM t")); std::unique_ptr<sql::ResultSet>
//     rs(s->executeQuery()); rs->next(); return rs->getInt64(1);
//   });
#ifndef RAPPORT_COMMON_MYSQL_MYSQL_POOL_H_
#define RAPPORT_COMMON_MYSQL_MYSQL_POOL_H_

#include <cppconn/connection.h>
#include <cppconn/exception.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/mysql/mysql_options.h"
#include "common/mysql/named_lock.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"

namespace sql {
class Driver;
}

namespace rapport {

// Maps a connector exception to a status: 1062 duplicate key is ALREADY_EXISTS,
// 1452 (a foreign key naming a missing row) NOT_FOUND saying so in words
// that name no table, 1205 lock wait, 1213 deadlock and 1020 (a row changed
// under the transaction's snapshot) are ABORTED (retry the transaction),
// 1969 (past max_statement_time) DEADLINE_EXCEEDED, a lost or unreachable
// server, a killed statement (1317) or too many transactions (1637)
// UNAVAILABLE, a full disk or table (1021, 1114) RESOURCE_EXHAUSTED,
// anything else INTERNAL with the SQLSTATE.
absl::Status SqlErrorToStatus(const sql::SQLException& e);
// The same for an error on a connection found closed, whatever its code (a
// network error the list in IsConnectionLost does not name): UNAVAILABLE.
absl::Status LostConnectionToStatus(const sql::SQLException& e);

// True when the error means the connection can no longer be used.
bool IsConnectionLost(const sql::SQLException& e);

// Whether `c` still has the server, after an error whose code does not say
// (the server ends a connection after some errors of its own, a packet too
// large among them). One round trip: for error paths. Connector/C++ 1.1's
// isClosed() alone only knows of close().
bool StillConnected(sql::Connection& c);

// True for a status from SqlErrorToStatus that a new attempt of the whole
// transaction may cure (deadlock, lock wait timeout).
bool IsRetryableTransactionError(const absl::Status& status);

// True for a status from SqlErrorToStatus of a duplicate key (1062).
bool IsDuplicateKeyError(const absl::Status& status);

class MysqlPool {
 public:
  // Makes a pool; connects lazily, so the database may still be down.
  static absl::StatusOr<std::unique_ptr<MysqlPool>> Create(
      MysqlOptions options);
  ~MysqlPool();

  MysqlPool(const MysqlPool&) = delete;
  MysqlPool& operator=(const MysqlPool&) = delete;

  // Runs fn(connection) in autocommit mode. fn returns absl::Status or
  // absl::StatusOr<T>; connector exceptions thrown inside become a status.
  template <typename Fn>
  auto Run(Fn&& fn) -> std::invoke_result_t<Fn, sql::Connection&>;

  // Runs fn(connection) inside a transaction: commits when fn returns OK, rolls
  // back otherwise. A deadlock or lock wait timeout (ABORTED) runs fn again,
  // three times in all, so fn must not have effects outside the database. A
  // duplicate key retries fn once more, after any attempt: a concurrent twin
  // (a retry sent twice at once) committed the row between fn's checks and
  // its insert, and fn's checks, run again, give their own answer (the
  // stored row, or an error that names the conflict) instead of the
  // database's. A connection lost before COMMIT is sent (the server went
  // away, or restarted since the connection was last used) runs fn once more
  // on a new connection; one lost after is UNAVAILABLE, the commit's fate
  // unknown. With kReadCommitted, each statement reads what others had
  // committed when it ran instead of one snapshot: for a transaction that
  // locks what it is about to check and then reads it.
  enum class Isolation { kRepeatableRead, kReadCommitted };
  template <typename Fn>
  auto Transaction(Fn&& fn, Isolation isolation = Isolation::kRepeatableRead)
      -> std::invoke_result_t<Fn, sql::Connection&>;

  // Transaction(fn) on a connection that holds the named lock `name` (see
  // NamedLock) from before the transaction begins until after it commits,
  // so that the lock's next holder sees what fn wrote. ABORTED with `busy`
  // when another holder keeps the lock too long.
  template <typename Fn>
  auto TransactionUnderLock(const std::string& name, absl::string_view busy,
                            Fn&& fn)
      -> std::invoke_result_t<Fn, sql::Connection&>;

  // Runs fn(c) inside one transaction on `c`, a connection the caller holds
  // (inside Run): commits when fn returns OK, rolls back otherwise; no retry.
  // A commit or rollback that fails throws (Run makes it a status).
  // For what must outlive the commit on the same connection, such as a named
  // lock taken before and released after.
  template <typename Fn>
  static auto InTransaction(sql::Connection& c, Fn&& fn,
                            Isolation isolation = Isolation::kRepeatableRead)
      -> std::invoke_result_t<Fn, sql::Connection&>;

  // Runs fn(connection) in autocommit mode on a connection of its own, made
  // for this call and closed after it, without the pool's limits on one
  // statement (io_timeout, statement_timeout): for the rare statements that
  // may run long, such as building the indexes of a large table.
  template <typename Fn>
  auto RunUnbounded(Fn&& fn) -> std::invoke_result_t<Fn, sql::Connection&>;

  // A connection kept for one purpose, outside the pool's count: for the
  // bookkeeping that must not wait behind a pool busy with calls (a refresh
  // job's heartbeat, which other replicas read to tell a running job from a
  // stopped one). Its owner outlives its runs.
  class Kept {
   public:
    Kept() = default;
    Kept(const Kept&) = delete;
    Kept& operator=(const Kept&) = delete;
    ~Kept();

   private:
    friend class MysqlPool;
    absl::Mutex mu_;
    std::unique_ptr<sql::Connection> connection_ ABSL_GUARDED_BY(mu_);
    absl::Time used_ ABSL_GUARDED_BY(mu_);  // its last run's end
  };
  // Runs fn(connection) in autocommit mode on `kept`'s connection (one run at
  // a time), made at its first run and again after it lost the server, with
  // the pool's limits on a statement. Refused at once while the server
  // hangs, as Run is (see Ping).
  template <typename Fn>
  auto RunKept(Kept& kept, Fn&& fn)
      -> std::invoke_result_t<Fn, sql::Connection&>;
  // Closes `kept`'s connection, if it has one; its next run makes another.
  void Close(Kept& kept);

  // One round trip to the server, on a connection of its own (so that a
  // pool busy with calls does not read as a database that is down): OK, or
  // UNAVAILABLE when it cannot be reached or does not answer within
  // connect_timeout. For health checks, which call it every second.
  //
  // While the last Ping found the server hanging (it took the connection, or
  // the query, and answered nothing in that time: stopped, or its disk
  // stuck), calls are refused at once with UNAVAILABLE, and those waiting for
  // a connection when their wait ends: each would otherwise be held until
  // io_timeout, or told that the service is busy. Calls under way end as
  // they would. The next Ping that answers lets calls through again.
  //
  // While the pool's last attempt to open a connection for a call failed
  // (the server refuses more: too many connections, the account's limit)
  // and it holds no idle one, Ping opens one for it, and is UNAVAILABLE
  // when that fails too: a replica whose calls all fail so reports it,
  // and the connection made once the server takes it again serves the
  // next call.
  absl::Status Ping() ABSL_LOCKS_EXCLUDED(probe_mu_, mu_);

  const MysqlOptions& options() const { return options_; }

 private:
  struct Metrics;
  struct Idle {
    std::unique_ptr<sql::Connection> connection;
    absl::Time returned;
  };
  class Lease;

  // How long a read or write may take on RunUnbounded's connection.
  static constexpr absl::Duration kUnboundedIoTimeout = absl::Hours(1);

  MysqlPool(MysqlOptions options, sql::Driver* driver);
  absl::StatusOr<std::unique_ptr<sql::Connection>> Connect();
  absl::StatusOr<std::unique_ptr<sql::Connection>> ConnectUnbounded();
  absl::StatusOr<std::unique_ptr<sql::Connection>> Connect(
      const MysqlOptions& options);
  absl::StatusOr<std::unique_ptr<sql::Connection>> Acquire();
  // What calls get while the last Ping found the server hanging.
  static absl::Status Unanswered();
  struct PingOutcome {
    bool hung = false;       // it failed by waiting out a timeout
    bool kept_lost = false;  // the probe's kept connection had lost the server
  };
  absl::Status PingOnce(PingOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(probe_mu_);
  // Ping's attempt to open an idle connection while connecting fails.
  absl::Status OpenIdle() ABSL_LOCKS_EXCLUDED(mu_);
  // Opens a connection its caller has counted in open_, and settles the
  // counts and metrics: uncounted when it fails, a reconnect when it
  // replaces a lost one.
  absl::StatusOr<std::unique_ptr<sql::Connection>> ConnectCounted()
      ABSL_LOCKS_EXCLUDED(mu_);
  // What becomes of a connection given back.
  enum class Fate {
    kReuse,
    kDiscard,  // its call failed in the program: it alone closes
    kLost,     // it lost the server: it and every idle one close
  };
  void Release(std::unique_ptr<sql::Connection> connection, Fate fate)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Closes `broken` (when given) and every idle connection, counted as lost.
  void DropLost(std::unique_ptr<sql::Connection> broken)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Run, telling whether the connection was lost (and dropped).
  template <typename Fn>
  auto RunTracked(Fn&& fn, bool* lost)
      -> std::invoke_result_t<Fn, sql::Connection&>;
  // fn(c), its exceptions made a status; broken(lost_server) is called when
  // `c` is of no further use: it lost the server (true), or fn threw
  // something other than a database error (false).
  template <typename Fn, typename Broken>
  static auto Guarded(sql::Connection& c, Fn&& fn, Broken&& broken)
      -> std::invoke_result_t<Fn, sql::Connection&>;
  // body(c, committing) on a connection of the pool, as Transaction runs
  // InTransaction: retried as Retrying says, and once more on a new
  // connection when the one it had was lost before *committing was set.
  template <typename Body>
  auto RunTransaction(Body&& body)
      -> std::invoke_result_t<Body, sql::Connection&, bool*>;
  // InTransaction, setting *committing just before COMMIT is sent.
  template <typename Fn>
  static auto InTransaction(sql::Connection& c, Fn&& fn, Isolation isolation,
                            bool* committing)
      -> std::invoke_result_t<Fn, sql::Connection&>;

  // Runs attempt() again after a deadlock or lock wait timeout, three times
  // in all, and once more after a duplicate key (see Transaction).
  template <typename Attempt>
  static auto Retrying(Attempt&& attempt) -> std::invoke_result_t<Attempt>;
  // Up to 2^n ms, random.
  static absl::Duration RetryPause(int n);

  template <typename Result>
  static Result FromException(const sql::SQLException& e) {
    return SqlErrorToStatus(e);
  }

  const MysqlOptions options_;
  sql::Driver* const driver_;
  Metrics* const metrics_;
  absl::Mutex mu_;
  std::vector<Idle> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // leased plus idle plus being opened
  // Connections dropped as lost and not yet replaced: the next ones opened
  // count as reconnections.
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
  // Ping's connection, outside the pool; reopened after a failure.
  absl::Mutex probe_mu_;
  std::unique_ptr<sql::Connection> probe_ ABSL_GUARDED_BY(probe_mu_);
  // Whether the last Ping found the server hanging (see Ping).
  std::atomic<bool> unanswered_{false};
  // Whether the pool's last attempt to open a connection failed.
  std::atomic<bool> connect_failing_{false};
};

// Holds a connection for the duration of one call and gives it back.
class MysqlPool::Lease {
 public:
  Lease(MysqlPool* pool, std::unique_ptr<sql::Connection> connection)
      : pool_(pool), connection_(std::move(connection)) {}
  ~Lease() { pool_->Release(std::move(connection_), fate_); }
  sql::Connection& connection() { return *connection_; }
  void MarkBroken(bool lost_server) {
    fate_ = lost_server ? Fate::kLost : Fate::kDiscard;
  }

 private:
  MysqlPool* pool_;
  std::unique_ptr<sql::Connection> connection_;
  Fate fate_ = Fate::kReuse;
};

template <typename Fn>
auto MysqlPool::Run(Fn&& fn) -> std::invoke_result_t<Fn, sql::Connection&> {
  bool lost = false;
  return RunTracked(fn, &lost);
}

template <typename Fn>
auto MysqlPool::RunTracked(Fn&& fn, bool* lost)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  absl::StatusOr<std::unique_ptr<sql::Connection>> acquired = Acquire();
  if (!acquired.ok()) return Result(acquired.status());
  Lease lease(this, *std::move(acquired));
  return Guarded(lease.connection(), fn, [&](bool lost_server) {
    lease.MarkBroken(lost_server);
    if (lost_server) *lost = true;
  });
}

template <typename Fn, typename Broken>
auto MysqlPool::Guarded(sql::Connection& c, Fn&& fn, Broken&& broken)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  try {
    return fn(c);
  } catch (const sql::SQLException& e) {
    if (IsConnectionLost(e)) {
      broken(true);
    } else if (!StillConnected(c)) {
      broken(true);
      return Result(LostConnectionToStatus(e));
    }
    return FromException<Result>(e);
  } catch (const std::exception& e) {
    broken(false);
    return Result(MarkInternal(absl::InternalError(e.what())));
  }
}

template <typename Body>
auto MysqlPool::RunTransaction(Body&& body)
    -> std::invoke_result_t<Body, sql::Connection&, bool*> {
  using Result = std::invoke_result_t<Body, sql::Connection&, bool*>;
  return Retrying([&] {
    for (int attempt = 0;; ++attempt) {
      bool committing = false;
      bool lost = false;
      Result r = RunTracked(
          [&](sql::Connection& c) { return body(c, &committing); }, &lost);
      // A connection lost before COMMIT was sent committed nothing: the
      // whole transaction runs again, once, on a new connection (the lost
      // one may only have been kept across a restart of the server).
      // After COMMIT was sent, whether it happened is unknown: the caller
      // is told so (UNAVAILABLE, and that the change may be stored), and a
      // retry with its request id finds out.
      if (!r.ok() && lost && committing) {
        constexpr absl::string_view kUnknown =
            "the database was lost as the change was committed, so it may "
            "be stored: read it before making it again, or repeat it with "
            "the same request_id (or import_id) where it had one, which "
            "stores it once";
        if constexpr (std::is_same_v<Result, absl::Status>) {
          return Prefixed(r, kUnknown);
        } else {
          return Result(Prefixed(r.status(), kUnknown));
        }
      }
      if (r.ok() || !lost || attempt > 0) return r;
    }
  });
}

template <typename Fn>
auto MysqlPool::RunUnbounded(Fn&& fn)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  absl::StatusOr<std::unique_ptr<sql::Connection>> c = ConnectUnbounded();
  if (!c.ok()) return Result(c.status());
  // Its cached statements go before it closes.
  struct Forget {
    sql::Connection* c;
    ~Forget() { ForgetStatements(c); }
  } forget{c->get()};
  try {
    return fn(**c);
  } catch (const sql::SQLException& e) {
    return FromException<Result>(e);
  } catch (const std::exception& e) {
    return Result(MarkInternal(absl::InternalError(e.what())));
  }
}

template <typename Fn>
auto MysqlPool::RunKept(Kept& kept, Fn&& fn)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  if (unanswered_.load(std::memory_order_relaxed)) return Result(Unanswered());
  absl::MutexLock lock(&kept.mu_);
  // A connection that lost the server (or, idle for long between two
  // refreshes, may have) is made again.
  auto forget = [&] {
    ForgetStatements(kept.connection_.get());
    kept.connection_.reset();
  };
  if (kept.connection_ != nullptr &&
      absl::Now() - kept.used_ >= options_.idle_check_after &&
      !StillConnected(*kept.connection_)) {
    forget();
  }
  if (kept.connection_ == nullptr) {
    absl::StatusOr<std::unique_ptr<sql::Connection>> made = Connect();
    if (!made.ok()) return Result(made.status());
    kept.connection_ = *std::move(made);
  }
  struct Used {
    absl::Time* used;
    ~Used() { *used = absl::Now(); }
  } used{&kept.used_};
  return Guarded(*kept.connection_, fn, [&](bool) { forget(); });
}

template <typename Attempt>
auto MysqlPool::Retrying(Attempt&& attempt) -> std::invoke_result_t<Attempt> {
  using Result = std::invoke_result_t<Attempt>;
  // Counted apart: a twin's duplicate key may come after a deadlock with it
  // (both took gap locks, one was chosen as the victim and ran again before
  // the other committed), and must still get its one more run.
  int aborted = 0;
  bool duplicate = false;
  while (true) {
    Result result = attempt();
    if (result.ok()) return result;
    absl::Status status;
    if constexpr (std::is_same_v<Result, absl::Status>) {
      status = result;
    } else {
      status = result.status();
    }
    if (IsRetryableTransactionError(status) && ++aborted < 3) {
      // A moment, random, before the next run: two transactions that
      // deadlocked do not meet again in step.
      absl::SleepFor(RetryPause(aborted));
      continue;
    }
    if (IsDuplicateKeyError(status) && !duplicate) {
      duplicate = true;
      continue;
    }
    return result;
  }
}

template <typename Fn>
auto MysqlPool::Transaction(Fn&& fn, Isolation isolation)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  return RunTransaction([&](sql::Connection& c, bool* committing) -> Result {
    return InTransaction(c, fn, isolation, committing);
  });
}

template <typename Fn>
auto MysqlPool::TransactionUnderLock(const std::string& name,
                                     absl::string_view busy, Fn&& fn)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  return RunTransaction([&](sql::Connection& c, bool* committing) -> Result {
    absl::StatusOr<std::unique_ptr<NamedLock>> lock =
        NamedLock::Take(c, name, busy);
    if (!lock.ok()) return Result(lock.status());
    return InTransaction(c, fn, Isolation::kRepeatableRead, committing);
  });
}

template <typename Fn>
auto MysqlPool::InTransaction(sql::Connection& c, Fn&& fn, Isolation isolation)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  bool committing = false;
  return InTransaction(c, fn, isolation, &committing);
}

template <typename Fn>
auto MysqlPool::InTransaction(sql::Connection& c, Fn&& fn, Isolation isolation,
                              bool* committing)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  // Statements rather than the connector's setAutoCommit, commit and
  // rollback: those of Connector/C++ 1.1 do not look at the server's answer,
  // so a COMMIT on a connection lost since fn's statements would read as
  // done, and a stale connection would go unnoticed until fn's first
  // statement.
  //
  // The isolation level is for the next transaction only (MariaDB forgets
  // it at its end).
  if (isolation == Isolation::kReadCommitted) {
    Execute(c, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
  }
  Execute(c, "START TRANSACTION");
  struct Restore {
    sql::Connection& c;
    bool done = false;
    ~Restore() {
      if (done) return;
      try {
        Execute(c, "ROLLBACK");
      } catch (const sql::SQLException&) {
        // The connection is gone: the exception that broke it is on its
        // way to Run(), which marks it broken.
      }
    }
  } restore{c};
  Result r = fn(c);
  // Committed or rolled back here rather than in Restore, so that a
  // connection lost meanwhile reaches Run as an exception, and Run drops it
  // instead of pooling it (the caller then gets UNAVAILABLE, not fn's
  // answer).
  if (r.ok()) {
    *committing = true;
    Execute(c, "COMMIT");
  } else {
    Execute(c, "ROLLBACK");
  }
  restore.done = true;
  return r;
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_MYSQL_POOL_H_
