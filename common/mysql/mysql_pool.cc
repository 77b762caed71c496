#include "common/mysql/mysql_pool.h"

#include <cppconn/driver.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"

namespace rapport {
namespace {

constexpr char kRetryablePayload[] = "rapport.dev/sql-retryable";
constexpr char kDuplicateKeyPayload[] = "rapport.dev/sql-duplicate-key";

// The server's text of an error, without the value a duplicate key error
// quotes (an email, a phone number: it would stay in the logs after the
// customer who gave it was erased). The key's name stays.
std::string ServerText(int code, absl::string_view text) {
  constexpr absl::string_view kEntry = "Duplicate entry '";
  constexpr absl::string_view kKey = "' for key '";
  const size_t entry = text.find(kEntry);
  const size_t key = text.rfind(kKey);
  if (code != 1062 || entry == absl::string_view::npos ||
      key == absl::string_view::npos || key < entry + kEntry.size()) {
    return std::string(text);
  }
  return absl::StrCat(text.substr(0, entry + kEntry.size()), "(withheld)",
                      text.substr(key));
}

}  // namespace

absl::Status SqlErrorToStatus(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  const std::string detail =
      absl::StrCat("database error ", code, " (SQLSTATE ", e.getSQLStateCStr(),
                   "): ", ServerText(code, e.what()));
  // Every one of these messages holds the server's own text: marked, so that
  // it reaches only the service's log, never a client (see Redacted).
  switch (code) {
    case 1062: {
      absl::Status s = MarkInternal(absl::AlreadyExistsError(detail));
      s.SetPayload(kDuplicateKeyPayload, absl::Cord("1"));
      return s;
    }
    case 1452:
      // A row refers to one that is not there: checked before the write and
      // deleted since (a member force-deleted while its holding is
      // recorded). A race the caller may be told of, in words of its own
      // (the server's name the tables).
      return absl::NotFoundError(
          "a record this change refers to was deleted meanwhile");
    case 1969:
      // max_statement_time: the server ended the statement; the connection
      // is fine.
      return MarkInternal(absl::DeadlineExceededError(detail));
    case 1205:
    case 1213:
    case 1020:
    case 1412: {
      // Lock wait timeout, deadlock, a row changed since this transaction's
      // snapshot read it (InnoDB's snapshot isolation), and a table made
      // since the snapshot (a value set published meanwhile): the
      // transaction as a whole is to be run again.
      absl::Status s = MarkInternal(absl::AbortedError(detail));
      s.SetPayload(kRetryablePayload, absl::Cord("1"));
      return s;
    }
    case 1317:  // the statement was killed (KILL QUERY, a server stopping)
    case 1637:  // too many transactions at once on the server
      return MarkInternal(absl::UnavailableError(detail));
    case 1021:  // disk full
    case 1114:  // a table is full
      return MarkInternal(absl::ResourceExhaustedError(detail));
    default:
      break;
  }
  if (IsConnectionLost(e)) return MarkInternal(absl::UnavailableError(detail));
  return MarkInternal(absl::InternalError(detail));
}

absl::Status LostConnectionToStatus(const sql::SQLException& e) {
  return MarkInternal(absl::UnavailableError(
      absl::StrCat("on a lost connection: ", SqlErrorToStatus(e).message())));
}

bool IsConnectionLost(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  // 2000..2999 are client errors: cannot connect, server gone, lost connection.
  // 1040 too many connections, 1053 server shutdown, 1927 connection killed,
  // 1045 access denied (the server is up but will not have us). 1290 and
  // 1836 (read-only) and 1047 (a cluster node not ready) are a server that
  // is no longer, or not yet, the one to write to (a failover): its
  // connections go, and new ones find the server that is.
  // 1152 and 1158..1161 are the server's own network errors on this
  // connection (aborted, read or write failed or timed out).
  return (code >= 2000 && code < 3000) || code == 1040 || code == 1053 ||
         code == 1927 || code == 1045 || code == 4031 || code == 1290 ||
         code == 1836 || code == 1047 || code == 1152 ||
         (code >= 1158 && code <= 1161);
}

bool StillConnected(sql::Connection& c) {
  try {
    return !c.isClosed() && c.isValid();
  } catch (const sql::SQLException&) {
    return false;
  }
}

absl::Duration MysqlPool::RetryPause(int n) {
  thread_local absl::BitGen random;
  return absl::Microseconds(
      absl::Uniform<int64_t>(random, 0, int64_t{1000} << std::min(n, 4)));
}

bool IsRetryableTransactionError(const absl::Status& status) {
  return status.GetPayload(kRetryablePayload).has_value();
}

bool IsDuplicateKeyError(const absl::Status& status) {
  return status.GetPayload(kDuplicateKeyPayload).has_value();
}

// The pool's series in the process's registry. Pools of one database share
// them (the gauges move by increments, so they add up).
struct MysqlPool::Metrics {
  prometheus::Gauge& in_use;
  prometheus::Gauge& open;
  prometheus::Gauge& waiting;
  prometheus::Histogram& wait_seconds;
  prometheus::Counter& exhausted;
  prometheus::Counter& lost;
  prometheus::Counter& reconnects;
  prometheus::Gauge& unanswered;
  prometheus::Counter& connect_failures;

  // One set per database for the process's life, shared by every pool of
  // that database (the series are the same ones anyway: a family hands out
  // one series per label set), so that pools made again and again (tests)
  // make no new ones.
  static Metrics* For(const std::string& database) {
    static absl::Mutex mu(absl::kConstInit);
    static auto* const by_database = new std::map<std::string, Metrics*>;
    absl::MutexLock lock(&mu);
    Metrics*& m = (*by_database)[database];
    if (m == nullptr) m = Make(database);
    return m;
  }

 private:
  static Metrics* Make(const std::string& database) {
    static auto& connections =
        prometheus::BuildGauge()
            .Name("rapport_db_pool_connections")
            .Help(
                "Database connections of the pool, by state: in_use "
                "(leased to a call) or open (in use, idle or connecting)")
            .Register(metrics::Registry());
    static auto& waiting =
        prometheus::BuildGauge()
            .Name("rapport_db_pool_waiting")
            .Help("Calls waiting for a free database connection")
            .Register(metrics::Registry());
    static auto& wait_seconds =
        prometheus::BuildHistogram()
            .Name("rapport_db_pool_wait_seconds")
            .Help("Time calls waited for a free database connection")
            .Register(metrics::Registry());
    static auto& exhausted =
        prometheus::BuildCounter()
            .Name("rapport_db_pool_exhausted_total")
            .Help(
                "Calls that found no free database connection in time "
                "(answered RESOURCE_EXHAUSTED)")
            .Register(metrics::Registry());
    static auto& lost =
        prometheus::BuildCounter()
            .Name("rapport_db_pool_connections_lost_total")
            .Help("Database connections dropped because the server went away")
            .Register(metrics::Registry());
    static auto& reconnects =
        prometheus::BuildCounter()
            .Name("rapport_db_pool_reconnects_total")
            .Help("Database connections opened to replace lost ones")
            .Register(metrics::Registry());
    static auto& unanswered =
        prometheus::BuildGauge()
            .Name("rapport_db_pool_unanswered")
            .Help(
                "1 while the last health check found the database hanging "
                "(it answered nothing in time): calls are refused at once "
                "with UNAVAILABLE")
            .Register(metrics::Registry());
    static auto& connect_failures =
        prometheus::BuildCounter()
            .Name("rapport_db_pool_connect_failures_total")
            .Help(
                "Attempts to open a database connection that failed (the "
                "server away, or refusing more connections)")
            .Register(metrics::Registry());
    const prometheus::Labels labels = {{"database", database}};
    prometheus::Labels in_use = labels;
    in_use["state"] = "in_use";
    prometheus::Labels open = labels;
    open["state"] = "open";
    return new Metrics{connections.Add(in_use),
                       connections.Add(open),
                       waiting.Add(labels),
                       wait_seconds.Add(labels, metrics::SecondsBuckets()),
                       exhausted.Add(labels),
                       lost.Add(labels),
                       reconnects.Add(labels),
                       unanswered.Add(labels),
                       connect_failures.Add(labels)};
  }
};

absl::StatusOr<std::unique_ptr<MysqlPool>> MysqlPool::Create(
    MysqlOptions options) {
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError("database pool size must be at least 1");
  }
  if (options.database.empty()) {
    return absl::InvalidArgumentError("database name is empty");
  }
  if (options.statement_timeout > absl::ZeroDuration() &&
      options.statement_timeout >= options.io_timeout) {
    // The client would read a long statement as a lost connection first.
    return absl::InvalidArgumentError(
        "database statement_timeout must be below its io_timeout");
  }
  if (options.statement_timeout > absl::ZeroDuration() &&
      options.lock_wait_timeout >= options.statement_timeout) {
    // A lock wait would end as a slow statement, which is not retried.
    return absl::InvalidArgumentError(
        "database lock_wait_timeout must be below its statement_timeout");
  }
  // get_driver_instance is not thread-safe the first time; Create is called at
  // start-up.
  sql::Driver* driver = sql::mysql::get_mysql_driver_instance();
  return std::unique_ptr<MysqlPool>(new MysqlPool(std::move(options), driver));
}

MysqlPool::MysqlPool(MysqlOptions options, sql::Driver* driver)
    : options_(std::move(options)),
      driver_(driver),
      // Kept for the process's life, like the series it points into.
      metrics_(Metrics::For(options_.database)) {}

MysqlPool::~MysqlPool() {
  absl::MutexLock lock(&mu_);
  for (Idle& idle : idle_) ForgetStatements(idle.connection.get());
  metrics_->open.Decrement(static_cast<double>(idle_.size()));
  idle_.clear();
}

MysqlPool::Kept::~Kept() {
  absl::MutexLock lock(&mu_);
  if (connection_ != nullptr) ForgetStatements(connection_.get());
}

void MysqlPool::Close(Kept& kept) {
  absl::MutexLock lock(&kept.mu_);
  if (kept.connection_ == nullptr) return;
  ForgetStatements(kept.connection_.get());
  kept.connection_.reset();
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::Connect() {
  return Connect(options_);
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::ConnectUnbounded() {
  MysqlOptions unbounded = options_;
  unbounded.io_timeout = kUnboundedIoTimeout;
  unbounded.statement_timeout = absl::ZeroDuration();
  return Connect(unbounded);
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::Connect(
    const MysqlOptions& options) {
  sql::ConnectOptionsMap props;
  if (options.socket.empty()) {
    props["hostName"] = sql::SQLString(absl::StrCat("tcp://", options.host));
    props["port"] = options.port;
  } else {
    props["socket"] = sql::SQLString(options.socket);
  }
  props["userName"] = sql::SQLString(options.user);
  props["password"] = sql::SQLString(options.password);
  props["schema"] = sql::SQLString(options.database);
  props["OPT_CONNECT_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options.connect_timeout));
  props["OPT_READ_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options.io_timeout));
  props["OPT_WRITE_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options.io_timeout));
  props["OPT_RECONNECT"] = false;
  // An UPDATE counts the rows it matched, not only those it changed: code
  // that reads 0 as "no such row" must not be told so by a write of the
  // values the row has already.
  props["CLIENT_FOUND_ROWS"] = true;
  props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  if (!options.ssl_ca.empty()) {
    props["sslCA"] = sql::SQLString(options.ssl_ca);
    // Both checked by MysqlPool.ACertificateAuthorityMakesConnectionsTls...
    props["sslVerify"] = true;   // the certificate and the host's name
    props["sslEnforce"] = true;  // no plaintext fallback
  }
  try {
    std::unique_ptr<sql::Connection> c(driver_->connect(props));
    std::unique_ptr<sql::Statement> s(c->createStatement());
    // GROUP_CONCAT lists (duplicate groups) up to 1 MiB, as MariaDB has by
    // default; MySQL would cut them at 1,024 bytes.
    std::string session =
        "SET SESSION time_zone = '+00:00', SESSION sql_mode = "
        "'STRICT_ALL_TABLES,"
        "NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_"
        "SUBSTITUTION', SESSION group_concat_max_len = 1048576";
    if (options.statement_timeout > absl::ZeroDuration()) {
      absl::StrAppend(&session, ", SESSION max_statement_time = ",
                      absl::ToDoubleSeconds(options.statement_timeout));
    }
    if (options.lock_wait_timeout > absl::ZeroDuration()) {
      absl::StrAppend(&session, ", SESSION innodb_lock_wait_timeout = ",
                      std::max<int64_t>(
                          1, absl::ToInt64Seconds(options.lock_wait_timeout)));
    }
    if (options.metadata_lock_wait_timeout > absl::ZeroDuration()) {
      absl::StrAppend(
          &session, ", SESSION lock_wait_timeout = ",
          std::max<int64_t>(
              1, absl::ToInt64Seconds(options.metadata_lock_wait_timeout)));
    }
    s->execute(session);
    return c;
  } catch (const sql::SQLException& e) {
    absl::Status s = SqlErrorToStatus(e);
    // Whatever goes wrong while connecting means the database is not there for
    // us. Marked: the text names the host and the server's words, for the
    // log only, whatever code a caller turns it into.
    return MarkInternal(absl::UnavailableError(absl::StrCat(
        "cannot connect to ", options.Redacted(), ": ", s.message())));
  }
}

absl::Status MysqlPool::Unanswered() {
  return MarkInternal(absl::UnavailableError(
      "the database did not answer the last health check"));
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::Acquire() {
  if (unanswered_.load(std::memory_order_relaxed)) return Unanswered();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.acquire_timeout;
  std::vector<Idle> dropped;  // closed after the lock is out
  {
    absl::MutexLock lock(&mu_);
    auto can_proceed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    };
    if (!can_proceed()) {
      metrics_->waiting.Increment();
      const bool free =
          mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline);
      metrics_->waiting.Decrement();
      metrics_->wait_seconds.Observe(
          absl::ToDoubleSeconds(absl::Now() - start));
      if (!free) {
        // Every connection is held by a call the server has not answered.
        if (unanswered_.load(std::memory_order_relaxed)) return Unanswered();
        metrics_->exhausted.Increment();
        return absl::ResourceExhaustedError(absl::StrCat(
            "the service is busy: no database connection came free within ",
            absl::FormatDuration(options_.acquire_timeout), "; retry later"));
      }
    } else {
      metrics_->wait_seconds.Observe(0);
    }
    if (!idle_.empty()) {
      Idle idle = std::move(idle_.back());
      idle_.pop_back();
      // A connection idle for long may have been closed by the server: check
      // it.
      bool valid = absl::Now() - idle.returned < options_.idle_check_after;
      if (!valid) {
        mu_.Unlock();
        valid = StillConnected(*idle.connection);
        mu_.Lock();
      }
      if (valid) {
        metrics_->in_use.Increment();
        return std::move(idle.connection);
      }
      // When one has lost the server, the others idle as long have too:
      // they go with it (closed once the lock is released), instead of each
      // costing the next caller a failed check. Those returned while it was
      // checked worked just now, and stay.
      for (auto it = idle_.begin(); it != idle_.end();) {
        if (it->returned <= idle.returned) {
          dropped.push_back(std::move(*it));
          it = idle_.erase(it);
        } else {
          ++it;
        }
      }
      dropped.push_back(std::move(idle));
      const int n = static_cast<int>(dropped.size());
      open_ -= n;
      lost_ = std::min(lost_ + n, options_.pool_size);
      metrics_->open.Decrement(n);
      metrics_->lost.Increment(n);
    }
    ++open_;
    metrics_->open.Increment();
  }
  // Statements go before their connections, outside the lock.
  for (Idle& d : dropped) ForgetStatements(d.connection.get());
  dropped.clear();
  absl::StatusOr<std::unique_ptr<sql::Connection>> c = ConnectCounted();
  if (c.ok()) metrics_->in_use.Increment();
  return c;
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::ConnectCounted() {
  absl::StatusOr<std::unique_ptr<sql::Connection>> c = Connect();
  connect_failing_.store(!c.ok(), std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  if (!c.ok()) {
    --open_;
    metrics_->open.Decrement();
    metrics_->connect_failures.Increment();
    return c;
  }
  if (lost_ > 0) {
    --lost_;
    metrics_->reconnects.Increment();
  }
  return c;
}

void MysqlPool::Release(std::unique_ptr<sql::Connection> connection,
                        Fate fate) {
  metrics_->in_use.Decrement();
  if (fate == Fate::kLost) {
    DropLost(std::move(connection));
    return;
  }
  if (fate == Fate::kReuse) {
    try {
      // Closed by its user (a named lock it could not release). A flag of
      // the connector's (1.1.12 asks the server nothing: measured by the
      // session's Com_admin_commands, which isValid's ping counts).
      if (connection->isClosed()) fate = Fate::kDiscard;
    } catch (const sql::SQLException&) {
      fate = Fate::kDiscard;
    }
  }
  if (fate == Fate::kDiscard) {
    // The server is there: the others stay, and nothing was lost.
    {
      absl::MutexLock lock(&mu_);
      --open_;
      metrics_->open.Decrement();
    }
    ForgetStatements(connection.get());
    return;
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back({std::move(connection), absl::Now()});
}

void MysqlPool::DropLost(std::unique_ptr<sql::Connection> broken) {
  // Every idle connection goes too: when one has lost the server, they all
  // have.
  std::vector<Idle> dropped;
  {
    absl::MutexLock lock(&mu_);
    const int n = (broken != nullptr ? 1 : 0) + static_cast<int>(idle_.size());
    open_ -= n;
    lost_ = std::min(lost_ + n, options_.pool_size);
    metrics_->open.Decrement(n);
    metrics_->lost.Increment(n);
    dropped.swap(idle_);
  }
  // Statements go before their connections, which close outside the lock.
  if (broken != nullptr) ForgetStatements(broken.get());
  for (Idle& idle : dropped) ForgetStatements(idle.connection.get());
}

absl::Status MysqlPool::Ping() {
  // One caller at a time (the health thread): the lock is held across the
  // round trip.
  absl::MutexLock lock(&probe_mu_);
  PingOutcome outcome;
  absl::Status status = PingOnce(&outcome);
  // Only a server that hangs trips the pool: one that refuses connections,
  // or answers with an error, fails the calls at once by itself.
  unanswered_.store(outcome.hung, std::memory_order_relaxed);
  metrics_->unanswered.Set(outcome.hung ? 1 : 0);
  // The idle connections are no better off than the probe's: they go now,
  // so that none fails a call once the server answers (again). A server
  // restarted between two health checks is found so, by the probe's
  // connection lost and a new one answering.
  if (outcome.hung || outcome.kept_lost) DropLost(nullptr);
  if (status.ok() && connect_failing_.load(std::memory_order_relaxed)) {
    status = OpenIdle();
  }
  return status;
}

absl::Status MysqlPool::OpenIdle() {
  {
    absl::MutexLock lock(&mu_);
    // A connection to hand out, or none that may be opened: nothing to try.
    if (!idle_.empty() || open_ >= options_.pool_size) return absl::OkStatus();
    ++open_;
    metrics_->open.Increment();
  }
  absl::StatusOr<std::unique_ptr<sql::Connection>> c = ConnectCounted();
  if (!c.ok()) {
    return MarkInternal(absl::UnavailableError(
        absl::StrCat("the database takes no connection of this service: ",
                     c.status().message())));
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back({*std::move(c), absl::Now()});
  return absl::OkStatus();
}

absl::Status MysqlPool::PingOnce(PingOutcome* outcome) {
  // SELECT 1 needs no time of the server's own: one that does not answer it
  // as soon as it would accept a connection does not answer.
  MysqlOptions probe = options_;
  probe.io_timeout = std::max(absl::Seconds(1), options_.connect_timeout);
  probe.statement_timeout = absl::ZeroDuration();
  // An attempt that ends this late ended by a timeout (both are whole
  // seconds for the client library), not by an answer.
  const absl::Duration waited_out =
      std::min(probe.io_timeout, probe.connect_timeout) * 0.9;
  absl::Status failed;
  // A kept connection that fails at once may only be stale (the server
  // restarted since): a new one decides. One that timed out does not get a
  // second wait as long.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const absl::Time began = absl::Now();
    const bool fresh = probe_ == nullptr;
    if (fresh) {
      absl::StatusOr<std::unique_ptr<sql::Connection>> c = Connect(probe);
      if (!c.ok()) {
        outcome->hung = absl::Now() - began >= waited_out;
        return c.status();
      }
      probe_ = *std::move(c);
    }
    try {
      std::unique_ptr<sql::Statement> s(probe_->createStatement());
      std::unique_ptr<sql::ResultSet> rs(s->executeQuery("SELECT 1"));
      return absl::OkStatus();
    } catch (const sql::SQLException& e) {
      probe_.reset();
      failed = MarkInternal(absl::UnavailableError(absl::StrCat(
          "the database does not answer: ", SqlErrorToStatus(e).message())));
      if (absl::Now() - began >= waited_out) {
        outcome->hung = true;
        break;
      }
      if (fresh) break;
      if (IsConnectionLost(e)) outcome->kept_lost = true;
    }
  }
  return failed;
}

}  // namespace rapport
