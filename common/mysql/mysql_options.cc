#include "common/mysql/mysql_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace rapport {
namespace {

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
    // Two hex digits, nothing else (SimpleHexAtoi alone takes a sign or a
    // space: "%-1", "% 9").
    if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
        !absl::ascii_isxdigit(in[i + 2]) ||
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

}  // namespace rapport
