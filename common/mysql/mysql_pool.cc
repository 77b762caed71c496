#include "common/mysql/mysql_pool.h"

#include <cppconn/driver.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"

namespace rapport {
namespace {

constexpr char kRetryablePayload[] = "rapport.dev/sql-retryable";

// Decodes %XX escapes, for user names and passwords in URIs.
absl::StatusOr<std::string> PercentDecode(absl::string_view in,
                                          absl::string_view part) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    int value = 0;
    if (i + 2 >= in.size() ||
        !absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("database URI: bad escape in ", part));
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

}  // namespace

absl::StatusOr<MysqlOptions> MysqlOptions::FromUri(const std::string& uri) {
  MysqlOptions o;
  absl::string_view rest = uri;
  if (!absl::ConsumePrefix(&rest, "mysql://")) {
    return absl::InvalidArgumentError("database URI must start with mysql://");
  }
  size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    absl::StatusOr<std::string> user =
        PercentDecode(userinfo.substr(0, colon), "user");
    if (!user.ok()) return user.status();
    o.user = *user;
    if (colon != absl::string_view::npos) {
      absl::StatusOr<std::string> password =
          PercentDecode(userinfo.substr(colon + 1), "password");
      if (!password.ok()) return password.status();
      o.password = *password;
    }
  }
  if (absl::ConsumePrefix(&rest, "unix(")) {
    size_t close = rest.find(')');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("database URI: unix( has no closing )");
    }
    o.socket = std::string(rest.substr(0, close));
    rest.remove_prefix(close + 1);
  } else {
    size_t slash = rest.find('/');
    absl::string_view hostport = rest.substr(0, slash);
    rest.remove_prefix(slash == absl::string_view::npos ? rest.size() : slash);
    size_t colon = hostport.rfind(':');
    if (colon != absl::string_view::npos) {
      if (!absl::SimpleAtoi(hostport.substr(colon + 1), &o.port) ||
          o.port <= 0 || o.port > 65535) {
        return absl::InvalidArgumentError(
            "database URI: port must be 1..65535");
      }
      hostport = hostport.substr(0, colon);
    }
    if (hostport.empty())
      return absl::InvalidArgumentError("database URI: host is empty");
    o.host = std::string(hostport);
  }
  if (!absl::ConsumePrefix(&rest, "/") || rest.empty()) {
    return absl::InvalidArgumentError("database URI: database name is missing");
  }
  o.database = std::string(rest);
  return o;
}

std::string MysqlOptions::Redacted() const {
  std::string where = socket.empty() ? absl::StrCat(host, ":", port)
                                     : absl::StrCat("unix(", socket, ")");
  return absl::StrCat("mysql://", user, "@", where, "/", database);
}

absl::Status SqlErrorToStatus(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  const std::string detail =
      absl::StrCat("database error ", code, " (SQLSTATE ", e.getSQLStateCStr(),
                   "): ", e.what());
  // Every one of these messages holds the server's own text: marked, so that
  // it reaches only the service's log, never a client (see Redacted).
  switch (code) {
    case 1062:
      return MarkInternal(absl::AlreadyExistsError(detail));
    case 1205:
    case 1213: {
      absl::Status s = MarkInternal(absl::AbortedError(detail));
      s.SetPayload(kRetryablePayload, absl::Cord("1"));
      return s;
    }
    default:
      break;
  }
  if (IsConnectionLost(e)) return MarkInternal(absl::UnavailableError(detail));
  return MarkInternal(absl::InternalError(detail));
}

bool IsConnectionLost(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  // 2000..2999 are client errors: cannot connect, server gone, lost connection.
  // 1040 too many connections, 1053 server shutdown, 1927 connection killed,
  // 1045 access denied (the server is up but will not have us).
  return (code >= 2000 && code < 3000) || code == 1040 || code == 1053 ||
         code == 1927 || code == 1045 || code == 4031;
}

bool IsRetryableTransactionError(const absl::Status& status) {
  return status.GetPayload(kRetryablePayload).has_value();
}

absl::StatusOr<std::unique_ptr<MysqlPool>> MysqlPool::Create(
    MysqlOptions options) {
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError("database pool size must be at least 1");
  }
  if (options.database.empty()) {
    return absl::InvalidArgumentError("database name is empty");
  }
  // get_driver_instance is not thread-safe the first time; Create is called at
  // start-up.
  sql::Driver* driver = sql::mysql::get_mysql_driver_instance();
  return std::unique_ptr<MysqlPool>(new MysqlPool(std::move(options), driver));
}

MysqlPool::MysqlPool(MysqlOptions options, sql::Driver* driver)
    : options_(std::move(options)), driver_(driver) {}

MysqlPool::~MysqlPool() {
  absl::MutexLock lock(&mu_);
  for (Idle& idle : idle_) ForgetStatements(idle.connection.get());
  idle_.clear();
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::Connect() {
  sql::ConnectOptionsMap props;
  if (options_.socket.empty()) {
    props["hostName"] = sql::SQLString(absl::StrCat("tcp://", options_.host));
    props["port"] = options_.port;
  } else {
    props["socket"] = sql::SQLString(options_.socket);
  }
  props["userName"] = sql::SQLString(options_.user);
  props["password"] = sql::SQLString(options_.password);
  props["schema"] = sql::SQLString(options_.database);
  props["OPT_CONNECT_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options_.connect_timeout));
  props["OPT_READ_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options_.io_timeout));
  props["OPT_WRITE_TIMEOUT"] =
      static_cast<int>(absl::ToInt64Seconds(options_.io_timeout));
  props["OPT_RECONNECT"] = false;
  props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  try {
    std::unique_ptr<sql::Connection> c(driver_->connect(props));
    std::unique_ptr<sql::Statement> s(c->createStatement());
    s->execute(
        "SET SESSION time_zone = '+00:00', SESSION sql_mode = "
        "'STRICT_ALL_TABLES,"
        "NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_"
        "SUBSTITUTION'");
    return c;
  } catch (const sql::SQLException& e) {
    absl::Status s = SqlErrorToStatus(e);
    // Whatever goes wrong while connecting means the database is not there for
    // us.
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to ", options_.Redacted(), ": ", s.message()));
  }
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::Acquire() {
  const absl::Time deadline = absl::Now() + options_.acquire_timeout;
  {
    absl::MutexLock lock(&mu_);
    auto can_proceed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline)) {
      return absl::UnavailableError(
          "no database connection free: the pool is exhausted");
    }
    while (!idle_.empty()) {
      Idle idle = std::move(idle_.back());
      idle_.pop_back();
      // A connection idle for long may have been closed by the server: check
      // it.
      if (absl::Now() - idle.returned < absl::Seconds(10))
        return std::move(idle.connection);
      mu_.Unlock();
      bool valid = false;
      try {
        valid = idle.connection->isValid();
      } catch (const sql::SQLException&) {
      }
      mu_.Lock();
      if (valid) return std::move(idle.connection);
      ForgetStatements(idle.connection.get());
      --open_;
    }
    ++open_;
  }
  absl::StatusOr<std::unique_ptr<sql::Connection>> c = Connect();
  if (!c.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  return c;
}

void MysqlPool::Release(std::unique_ptr<sql::Connection> connection,
                        bool broken) {
  if (broken) {
    // Drop every idle connection too: when one has lost the server, they all
    // have.
    std::vector<Idle> dropped;
    {
      absl::MutexLock lock(&mu_);
      --open_;
      open_ -= static_cast<int>(idle_.size());
      dropped.swap(idle_);
    }
    // Statements go before their connections, which close outside the lock.
    ForgetStatements(connection.get());
    for (Idle& idle : dropped) ForgetStatements(idle.connection.get());
    return;
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back({std::move(connection), absl::Now()});
}

absl::Status MysqlPool::Ping() {
  return Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    std::unique_ptr<sql::ResultSet> rs(s->executeQuery("SELECT 1"));
    return absl::OkStatus();
  });
}

}  // namespace rapport
