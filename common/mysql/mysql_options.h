// Where a service's database is, parsed from its one URI (--mysql_uri).
//
//   RAPPORT_ASSIGN_OR_RETURN(MysqlOptions o, MysqlOptions::FromUri(
//       "mysql://rapport:secret@127.0.0.1:3306/rapport_customer"));
#ifndef RAPPORT_COMMON_MYSQL_MYSQL_OPTIONS_H_
#define RAPPORT_COMMON_MYSQL_MYSQL_OPTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rapport {

// Where the database is and how to reach it.
struct MysqlOptions {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;  // when set, used instead of host and port
  std::string user = "root";
  std::string password;
  std::string database;
  // A PEM file of the CA that signed the database server's certificate: when
  // set, connections use TLS, and the server's certificate and name (the
  // host, as an IP address or a DNS name in it) are verified; a server that
  // offers no TLS, or another certificate, is not connected to. Empty:
  // plaintext (a database on loopback or a private network).
  std::string ssl_ca;
  int pool_size = 16;
  absl::Duration connect_timeout = absl::Seconds(3);
  // A read or write on the connection that takes longer means the
  // database is gone (UNAVAILABLE).
  absl::Duration io_timeout = absl::Seconds(30);
  // The server ends a statement that runs longer (MariaDB's
  // max_statement_time): the call gets DEADLINE_EXCEEDED, the connection
  // stays usable, and the server stops working for a caller that the
  // io_timeout would have given up on. Below io_timeout; zero: no limit.
  absl::Duration statement_timeout = absl::Seconds(28);
  // How long a statement waits for another transaction's row lock before
  // ABORTED, which transactions retry, three times in all, within a call's
  // deadline (innodb_lock_wait_timeout, whole seconds, below
  // statement_timeout); zero: the server's own (50 s).
  absl::Duration lock_wait_timeout = absl::Seconds(10);
  // How long a statement waits for a table's metadata lock (MariaDB's
  // lock_wait_timeout: a schema change waiting for the transactions on its
  // table, while every later statement on that table queues behind it) before
  // ABORTED; zero: the server's own (a day).
  absl::Duration metadata_lock_wait_timeout = absl::ZeroDuration();
  // How long a caller waits for a free connection before RESOURCE_EXHAUSTED.
  absl::Duration acquire_timeout = absl::Seconds(5);
  // A connection left unused this long may have been closed by the server
  // (its wait_timeout, a restart, a KILL): it is checked, one round trip,
  // before it is used again, and made anew if it is closed. Zero checks it
  // before every use.
  absl::Duration idle_check_after = absl::Seconds(10);

  // Parses "mysql://user:password@host:port/database" or
  // "mysql://user:password@unix(/path/to/socket)/database". User and password
  // are percent-decoded. Errors name the URI's part that is wrong.
  static absl::StatusOr<MysqlOptions> FromUri(const std::string& uri);
  // The URI without the password, for logs.
  std::string Redacted() const;
};

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_MYSQL_OPTIONS_H_
