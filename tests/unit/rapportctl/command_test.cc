// The listing helpers of rapportctl: how --all and --page-size shape the
// requests, with a fake in place of the service.
#include "tools/rapportctl/command.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/paging.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "rapport/financial_community/v1/financial_community_service.pb.h"
#include "tools/rapportctl/args.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/output.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::customer::v1;

Context ContextOf(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  absl::StatusOr<Args> args =
      Args::Parse(static_cast<int>(argv.size()), argv.data(), {"all"});
  EXPECT_TRUE(args.ok()) << args.status();
  Context ctx;
  if (args.ok()) ctx.args = *std::move(args);
  return ctx;
}

// Lists the page sizes `FetchPages` asks for from a service with `pages`
// pages of one customer each; `listed` gets how many customers it kept.
std::vector<int> PageSizesAskedFor(const Context& ctx, int requested_size,
                                   int pages, int* listed) {
  std::vector<int> sizes;
  v1::ListCustomersRequest request;
  request.set_page_size(requested_size);
  v1::ListCustomersResponse all;
  grpc::Status s = FetchPages(
      ctx, request,
      [&](grpc::ClientContext*, const v1::ListCustomersRequest& r,
          v1::ListCustomersResponse* out) {
        sizes.push_back(r.page_size());
        const int page = r.page_token().empty() ? 0 : std::stoi(r.page_token());
        out->add_customers()->set_id(std::to_string(page));
        if (page + 1 < pages)
          out->set_next_page_token(std::to_string(page + 1));
        return grpc::Status::OK;
      },
      &all);
  EXPECT_TRUE(s.ok()) << s.error_message();
  *listed = all.customers_size();
  EXPECT_EQ(all.next_page_token().empty(), ctx.args.Has("all") || pages == 1);
  return sizes;
}

TEST(Args, ASwitchSetToFalseIsNotGiven) {
  auto parse = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    return Args::Parse(static_cast<int>(argv.size()), argv.data(), {"force"});
  };
  absl::StatusOr<Args> off = parse({"rapportctl", "--force=false", "x"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->Has("force"));
  EXPECT_EQ(off->positional(), std::vector<std::string>{"x"});
  absl::StatusOr<Args> on = parse({"rapportctl", "--force=true"});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->Has("force"));
  absl::StatusOr<Args> last = parse({"rapportctl", "--force", "--force=false"});
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_FALSE(last->Has("force"));
  last = parse({"rapportctl", "--force=false", "--force"});
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(last->Has("force"));
  EXPECT_EQ(parse({"rapportctl", "--force=yes"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Args, AFlagOfOneValueGivenTwoIsRefusedByName) {
  auto check = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    absl::StatusOr<Args> args =
        Args::Parse(static_cast<int>(argv.size()), argv.data(), {"force"});
    EXPECT_TRUE(args.ok()) << args.status();
    return args.ok() ? args->CheckSingle({"external-id"})
                     : absl::InternalError("unparsed");
  };
  absl::Status twice = check({"rapportctl", "--amount", "10", "--amount=100"});
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(twice.message().find("--amount"), std::string::npos) << twice;
  EXPECT_EQ(twice.message().find("100"), std::string::npos) << twice;
  EXPECT_TRUE(check({"rapportctl", "--amount", "10", "--amount", "10"}).ok());
  EXPECT_TRUE(
      check({"rapportctl", "--external-id", "a:1", "--external-id", "b:2"})
          .ok());
  EXPECT_TRUE(check({"rapportctl", "--force", "--force"}).ok());
}

// Text that is not UTF-8 is refused before any call (a service could not
// read the request, and would answer INTERNAL), naming the flag or the
// argument; a path to a file that exists may be any bytes.
TEST(Args, TextThatIsNotUtf8IsRefusedByFlagOrPosition) {
  auto parse = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    return Args::Parse(static_cast<int>(argv.size()), argv.data(), {"force"});
  };
  absl::StatusOr<Args> flag =
      parse({"rapportctl", "customers", "create", "--display-name", "x\xff"});
  EXPECT_EQ(flag.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(flag.status().message(), "--display-name: is not valid UTF-8");
  absl::StatusOr<Args> word = parse({"rapportctl", "customers", "get", "\xc3"});
  EXPECT_EQ(word.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(word.status().message(),
            "argument 3 is not valid UTF-8 (nor a file that exists)");
  EXPECT_TRUE(parse({"rapportctl", "--out", "r\xe9sum\xe9.csv"}).ok());
  EXPECT_EQ(parse({"rapportctl", "--out", ""}).status().message(),
            "--out: give a file name, or - for the standard output");
  EXPECT_TRUE(parse({"rapportctl", "--out", "-"}).ok());
  EXPECT_TRUE(parse({"rapportctl", "--display-name", "Zo\xc3\xab"}).ok());
  EXPECT_TRUE(parse({"rapportctl", "--model-out", "m\xe9.json"}).ok());
  EXPECT_TRUE(parse({"rapportctl", "--transactions", "t\xe9.csv"}).ok());
  const std::string file = ::testing::TempDir() + "/caf\xe9.csv";
  std::ofstream(file) << "customer_ref,timestamp,amount\n";
  EXPECT_TRUE(
      parse({"rapportctl", "customers", "import", "purchases", file}).ok());
  // A text flag is text, whatever file its bytes may name.
  absl::StatusOr<Args> named = parse({"rapportctl", "--display-name", file});
  EXPECT_EQ(named.status().message(), "--display-name: is not valid UTF-8");
  std::remove(file.c_str());
  absl::StatusOr<Args> bad_name = parse({"rapportctl", "--n\xe9", "v", "x"});
  EXPECT_EQ(bad_name.status().message(), "argument 1 is not valid UTF-8");
}

// A table shows control characters as escapes (a display name cannot forge
// a row or send the terminal an escape sequence); CSV keeps the text.
// A call that could not reach its service gets a hint from what gRPC said;
// other failures get none.
TEST(ConnectionHint, NamesWhatToTryForEachWayAConnectionFails) {
  EXPECT_TRUE(absl::StrContains(
      ConnectionHint(absl::UnavailableError(
          "connections to all backends failing; last error: UNKNOWN: "
          "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection "
          "refused")),
      "nothing listens at that address"));
  EXPECT_TRUE(absl::StrContains(
      ConnectionHint(absl::UnavailableError(
          "last error: UNAVAILABLE: ipv4:127.0.0.1:9: Socket closed")),
      "--tls-ca"));
  EXPECT_TRUE(absl::StrContains(
      ConnectionHint(absl::UnavailableError(
          "Tls handshake failed: SSL_ERROR_SSL: error:0A00010B:SSL "
          "routines::wrong version number")),
      "does not speak TLS"));
  EXPECT_TRUE(absl::StrContains(
      ConnectionHint(absl::UnavailableError(
          "ipv4:127.0.0.1:9: connection attempt timed out before receiving "
          "SETTINGS frame")),
      "frozen or hung"));
  EXPECT_EQ(ConnectionHint(absl::UnavailableError("the database is away")), "");
  EXPECT_EQ(ConnectionHint(absl::NotFoundError("Connection refused")), "");
}

TEST(Table, ShowsControlCharactersAsEscapesAndCsvKeepsThem) {
  Table t({"id", "display_name"});
  t.AddRow({"c1", "Ada\nc2  Mallory\x1b[2J\t\x7f"});
  t.AddRow({"c3", "Zoë"});
  std::ostringstream table;
  t.Print(Format::kTable, table);
  EXPECT_EQ(table.str(),
            "ID  DISPLAY_NAME\n"
            "c1  Ada\\nc2  Mallory\\x1b[2J\\t\\x7f\n"
            "c3  Zoë\n");
  std::ostringstream csv;
  t.Print(Format::kCsv, csv);
  EXPECT_NE(csv.str().find("\"Ada\nc2  Mallory\x1b[2J\t\x7f\""),
            std::string::npos)
      << csv.str();
}

// Columns line up by what a terminal shows, not by bytes: an accented
// letter is one column (two bytes, or one and a combining mark), a Chinese
// character two; a row whose last cells are empty ends without spaces.
TEST(Table, AlignsByDisplayWidth) {
  Table t({"name", "city", "note"});
  t.AddRow({"Zo\xc3\xab", "Paris", "a"});          // Zoë, precomposed
  t.AddRow({"Zoe\xcc\x88", "Lyon", "b"});          // Zoë, e + U+0308
  t.AddRow({"\xe6\x9d\x8e\xe5\xb0\x8f", "", ""});  // 李小, 4 columns
  t.AddRow(
      {"a\xe2\x80\x8b"
       "b",
       "", "c"});  // a, zero-width space, b
  std::ostringstream table;
  t.Print(Format::kTable, table);
  EXPECT_EQ(table.str(),
            "NAME  CITY   NOTE\n"
            "Zo\xc3\xab   Paris  a\n"
            "Zoe\xcc\x88   Lyon   b\n"
            "\xe6\x9d\x8e\xe5\xb0\x8f\n"
            "a\xe2\x80\x8b"
            "b           c\n");
}

TEST(FetchPages, AllAsksForTheLargestPagesAndKeepsEveryPage) {
  int listed = 0;
  EXPECT_EQ(PageSizesAskedFor(ContextOf({"rapportctl", "list", "--all"}), 0, 3,
                              &listed),
            (std::vector<int>{kMaxPageSize, kMaxPageSize, kMaxPageSize}));
  EXPECT_EQ(listed, 3);
}

TEST(FetchPages, AGivenPageSizeIsKeptWithAll) {
  int listed = 0;
  EXPECT_EQ(PageSizesAskedFor(ContextOf({"rapportctl", "list", "--all"}), 7, 2,
                              &listed),
            (std::vector<int>{7, 7}));
  EXPECT_EQ(listed, 2);
}

TEST(FetchPages, WithoutAllOnePageOfTheServicesDefaultSize) {
  int listed = 0;
  EXPECT_EQ(PageSizesAskedFor(ContextOf({"rapportctl", "list"}), 0, 3, &listed),
            (std::vector<int>{0}));
  EXPECT_EQ(listed, 1);
}

// --attribute KEY=VALUE and --contact NAME[,EMAIL[,PHONE[,ROLE]]]: anything
// else is refused naming the flag, not sent half read.
TEST(CounterpartFlags, AttributesAndContactsMustHaveTheirShape) {
  Context ok =
      ContextOf({"rapportctl", "partners", "create", "--attribute",
                 "tier=gold=1", "--contact", "Ann,ann@example.com,,buyer"});
  google::protobuf::Map<std::string, std::string> attributes;
  ASSERT_TRUE(AttributeFlags(ok.args, &attributes).ok());
  EXPECT_EQ(attributes.at("tier"), "gold=1");
  google::protobuf::RepeatedPtrField<::rapport::common::v1::Contact> contacts;
  ASSERT_TRUE(ContactFlags(ok.args, &contacts).ok());
  ASSERT_EQ(contacts.size(), 1);
  EXPECT_EQ(contacts[0].email(), "ann@example.com");
  EXPECT_EQ(contacts[0].role(), "buyer");

  Context bad = ContextOf({"rapportctl", "partners", "create", "--attribute",
                           "tier", "--contact", "Ann,a@example.com,,buyer,x"});
  absl::Status attribute = AttributeFlags(bad.args, &attributes);
  EXPECT_EQ(attribute.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(attribute.message().find("--attribute"), std::string::npos);
  absl::Status contact = ContactFlags(bad.args, &contacts);
  EXPECT_EQ(contact.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(contact.message().find("--contact"), std::string::npos);
}

// The issues write "sell-side" and "high net worth"; the flags take them as
// they take "sell_side".
TEST(CounterpartFlags, EnumsTakeDashesAndSpacesForUnderscores) {
  namespace fc = ::rapport::financial_community::v1;
  for (const char* text :
       {"sell_side", "sell-side", "Sell-Side", "sell side"}) {
    EXPECT_EQ(
        ParseEnum<fc::MemberType>(text, "MEMBER_TYPE_", fc::MemberType_Parse),
        fc::MEMBER_TYPE_SELL_SIDE)
        << text;
  }
  EXPECT_EQ(ParseEnum<fc::MemberType>("high net worth", "MEMBER_TYPE_",
                                      fc::MemberType_Parse),
            fc::MEMBER_TYPE_HIGH_NET_WORTH);
  EXPECT_EQ(ParseEnum<fc::MemberType>("sideways", "MEMBER_TYPE_",
                                      fc::MemberType_Parse),
            std::nullopt);
  EXPECT_EQ(ParseEnum<fc::MemberType>("unspecified", "MEMBER_TYPE_",
                                      fc::MemberType_Parse),
            std::nullopt);
}

// The names in `dir`, sorted.
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An output file appears whole on Commit and not before; one abandoned leaves
// nothing; it never touches a file of its own name plus ".tmp" (two runs
// share no temporary file); a link is written through, and a path that is no
// regular file is written directly.
TEST(OutputFile, AppearsWholeOnCommitThroughLinksAndDevices) {
  std::string dir = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                    std::string("/outputfile-XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/scores.csv";
  {
    std::ofstream(path + ".tmp") << "someone else's";
    OutputFile out(path);
    ASSERT_TRUE(out.ok());
    out.stream() << "a,b\n";
    EXPECT_EQ(Names(dir).size(), 2u);  // the .tmp and its own temporary
    ASSERT_TRUE(out.Commit().ok());
  }
  EXPECT_EQ(Read(path), "a,b\n");
  EXPECT_EQ(Read(path + ".tmp"), "someone else's");
  EXPECT_EQ(Names(dir),
            (std::vector<std::string>{"scores.csv", "scores.csv.tmp"}));
  {
    OutputFile abandoned(path);
    abandoned.stream() << "half";
  }
  EXPECT_EQ(Read(path), "a,b\n");
  EXPECT_EQ(Names(dir).size(), 2u);

  const std::string link = dir + "/latest.csv";
  ASSERT_EQ(symlink("scores.csv", link.c_str()), 0);
  {
    OutputFile out(link);
    out.stream() << "c,d\n";
    ASSERT_TRUE(out.Commit().ok());
  }
  struct stat st;
  ASSERT_EQ(lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(Read(path), "c,d\n");

  {
    OutputFile device("/dev/null");
    ASSERT_TRUE(device.ok());
    device.stream() << "gone";
    ASSERT_TRUE(device.Commit().ok());
  }
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // Through /proc (as /dev/stdout reaches a redirect to a file), the file is
  // appended to, not replaced.
  {
    const int fd = open(path.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    OutputFile through(absl::StrCat("/proc/self/fd/", fd));
    ASSERT_TRUE(through.ok());
    through.stream() << "e,f\n";
    ASSERT_TRUE(through.Commit().ok());
    close(fd);
  }
  EXPECT_EQ(Read(path), "c,d\ne,f\n");
  ASSERT_EQ(lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_FALSE(OutputFile(dir + "/no-such-dir/x.csv").ok());
  // A file replaced keeps its mode (a private export stays private).
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  {
    OutputFile out(path);
    out.stream() << "g,h\n";
    ASSERT_TRUE(out.Commit().ok());
  }
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(Read(path), "g,h\n");
  for (const std::string& name : Names(dir)) unlink((dir + "/" + name).c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace rapport::ctl
