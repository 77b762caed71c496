// Paging tokens, validation, ids, database URIs, SQL splitting, channel
// targets.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/api_names.h"
#include "common/channel.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport {
namespace {

TEST(Paging, TokenRoundTripsTheLastKey) {
  std::string token = EncodePageToken("01abc|with|bars", "filter-a");
  absl::StatusOr<std::string> key = DecodePageToken(token, "filter-a");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "01abc|with|bars");
  EXPECT_EQ(*DecodePageToken("", "anything"), "");
}

TEST(Paging, TokenForAnotherFilterIsRejectedNamingPageToken) {
  std::string token = EncodePageToken("k", "customer=1");
  absl::StatusOr<std::string> key = DecodePageToken(token, "customer=2");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolations(key.status())[0].field, "page_token");
  EXPECT_FALSE(DecodePageToken("not base64 !!", "f").ok());
  EXPECT_FALSE(DecodePageToken("bm9wZQ", "f").ok());  // "nope"
}

// Every list orders by id or by value, in the same words whatever the
// service: "value desc" (AIP-132) or "value", "id" or nothing.
TEST(Paging, OrderByIsValueOrId) {
  for (const char* value : {"value desc", "value"}) {
    EXPECT_TRUE(*OrderByValue(value)) << value;
  }
  for (const char* id : {"", "id"}) EXPECT_FALSE(*OrderByValue(id)) << id;
  for (const char* bad : {"name", "value asc", "VALUE", " value"}) {
    absl::Status s = OrderByValue(bad).status();
    ASSERT_EQ(FieldViolations(s).size(), 1u) << bad;
    EXPECT_EQ(FieldViolations(s)[0].field, "order_by");
  }
}

TEST(Paging, PageSizeDefaultsCapsAndRejectsNegative) {
  EXPECT_EQ(*PageSize(0), kDefaultPageSize);
  EXPECT_EQ(*PageSize(7), 7);
  EXPECT_EQ(*PageSize(1'000'000), kMaxPageSize);
  EXPECT_EQ(PageSize(-1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Validation, Utf8) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Validation, Utf8PrefixNeverCutsACharacter) {
  const std::string text = "ab\xC3\xA9\xE2\x82\xAC";  // "abé€"
  EXPECT_EQ(Utf8Prefix(text, 100), text);
  EXPECT_EQ(Utf8Prefix(text, 7), text);
  EXPECT_EQ(Utf8Prefix(text, 6), "ab\xC3\xA9");  // not half the euro sign
  EXPECT_EQ(Utf8Prefix(text, 5), "ab\xC3\xA9");
  EXPECT_EQ(Utf8Prefix(text, 4), "ab\xC3\xA9");
  EXPECT_EQ(Utf8Prefix(text, 3), "ab");  // not half the e acute
  EXPECT_EQ(Utf8Prefix(text, 0), "");
  for (size_t n = 0; n <= text.size(); ++n) {
    EXPECT_TRUE(IsValidUtf8(Utf8Prefix(text, n))) << n;
  }
}

TEST(Validation, TextFieldsNameTheField) {
  EXPECT_TRUE(CheckRequiredText("Ada", "customer.display_name", 10).ok());
  absl::Status empty = CheckRequiredText("", "customer.display_name", 10);
  EXPECT_EQ(FieldViolations(empty)[0].field, "customer.display_name");
  // Only white space is empty once trimmed, as names are stored.
  absl::Status blank = CheckRequiredText(" \t ", "program.name", 10);
  ASSERT_FALSE(blank.ok());
  EXPECT_EQ(FieldViolations(blank)[0].field, "program.name");
  EXPECT_TRUE(CheckRequiredText(" Ada ", "f", 10).ok());
  EXPECT_FALSE(CheckOptionalText("12345678901", "f", 10).ok());
  EXPECT_FALSE(CheckOptionalText("tab\there", "f", 100).ok());
  EXPECT_TRUE(CheckOptionalText("", "f", 10).ok());
  // A note may span lines; no other control character, nor bad UTF-8.
  EXPECT_TRUE(CheckNoteText("line 1\r\nline 2\n\tthree", "n", 100).ok());
  EXPECT_TRUE(CheckNoteText("", "n", 10).ok());
  const absl::Status escape = CheckNoteText("esc \x1b[31m", "n", 100);
  EXPECT_TRUE(absl::StrContains(escape.message(), "control character"))
      << escape;
  EXPECT_FALSE(CheckNoteText(std::string("nul \0 here", 10), "n", 100).ok());
  EXPECT_FALSE(CheckNoteText("M\xfcller", "n", 100).ok());
  EXPECT_FALSE(CheckNoteText("12345678901", "n", 10).ok());
}

// A request id is a key, compared by MariaDB without trailing spaces: one
// that begins or ends with white space is refused.
TEST(Validation, RequestIdsAreKeys) {
  EXPECT_TRUE(CheckRequestId("").ok());
  EXPECT_TRUE(CheckRequestId("order 7").ok());
  for (const char* bad : {"r1 ", " r1", "r1\t"}) {
    absl::Status s = CheckRequestId(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(FieldViolations(s)[0].field, "request_id");
  }
  EXPECT_FALSE(CheckRequestId(std::string(129, 'r')).ok());
}

TEST(Validation, AnUpdateMaskNamesFieldsThatCanBeUpdated) {
  google::protobuf::FieldMask mask;
  EXPECT_EQ(FieldViolations(CheckUpdateMask(mask, {"a", "b"}))[0].field,
            "update_mask");
  mask.add_paths("b");
  EXPECT_TRUE(CheckUpdateMask(mask, {"a", "b"}).ok());
  mask.add_paths(std::string(5000, 'z'));
  absl::Status s = CheckUpdateMask(mask, {"a", "b", "c"});
  ASSERT_EQ(FieldViolations(s).size(), 1u);
  EXPECT_EQ(FieldViolations(s)[0].field, "update_mask");
  EXPECT_NE(s.message().find("cannot be updated; a, b or c can"),
            absl::string_view::npos)
      << s;
  EXPECT_LT(s.message().size(), 200u);
}

TEST(Validation, EmailIsTrimmedAndChecked) {
  EXPECT_EQ(*NormalizeEmail("  Ada@Example.com ", "email"), "Ada@Example.com");
  // Unicode spaces and invisible characters at the ends, as spreadsheets
  // leave them (no-break space, zero-width space, byte order mark, line
  // separator), go too: the address is the same identity.
  for (const char* padded :
       {"Ada@Example.com\u00a0", "\ufeffAda@Example.com",
        "\u200bAda@Example.com\u2028", "\u3000 Ada@Example.com\u0085"}) {
    absl::StatusOr<std::string> e = NormalizeEmail(padded, "email");
    ASSERT_TRUE(e.ok()) << padded << ": " << e.status();
    EXPECT_EQ(*e, "Ada@Example.com") << padded;
  }
  for (const char* bad :
       {"ada", "@example.com", "ada@", "ada@example", "a b@example.com",
        "ada@@example.com", "ada@example..com", "ada@.com",
        "a\u00a0da@example.com", "ada\u200b@example.com",
        "ada@exa\u2060mple.com", "ada@example.com\xff", "\u00a0"}) {
    absl::StatusOr<std::string> e = NormalizeEmail(bad, "customer.email");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(FieldViolations(e.status())[0].field, "customer.email") << bad;
  }
}

TEST(Validation, PhoneIsNormalisedToE164) {
  EXPECT_EQ(*NormalizePhone("+44 20 7946 0958", "p"), "+442079460958");
  EXPECT_EQ(*NormalizePhone("+1 (415) 555-0100", "p"), "+14155550100");
  for (const char* bad : {"", "0044207946", "+0123456789", "+1234567",
                          "+1234567890123456", "+1 415 CALL NOW"}) {
    EXPECT_FALSE(NormalizePhone(bad, "p").ok()) << bad;
  }
}

// A record's external ids and attributes are capped (kMaxExternalIds,
// kMaxAttributes): one more is a violation naming the field; the cap itself
// is fine.
struct TestExternalId {
  std::string source_, id_;
  const std::string& source() const { return source_; }
  const std::string& id() const { return id_; }
};
struct TestExternalIds {
  std::vector<TestExternalId> ids;
  int size() const { return static_cast<int>(ids.size()); }
  const TestExternalId& Get(int i) const { return ids[i]; }
};

TEST(Validation, ExternalIdsAndAttributesAreCapped) {
  for (const int n : {kMaxExternalIds, kMaxExternalIds + 1}) {
    TestExternalIds in;
    for (int i = 0; i < n; ++i) in.ids.push_back({"crm", absl::StrCat(i)});
    std::vector<std::pair<std::string, std::string>> out;
    std::vector<FieldViolation> violations;
    ReadExternalIds(in, "member.external_ids", &out, &violations);
    if (n == kMaxExternalIds) {
      EXPECT_TRUE(violations.empty());
      EXPECT_EQ(out.size(), static_cast<size_t>(n));
    } else {
      ASSERT_EQ(violations.size(), 1u);
      EXPECT_EQ(violations[0].field, "member.external_ids");
      EXPECT_NE(violations[0].description.find("20"), std::string::npos)
          << violations[0].description;
    }
  }
  for (const int n : {kMaxAttributes, kMaxAttributes + 1}) {
    std::map<std::string, std::string> in;
    for (int i = 0; i < n; ++i) in[absl::StrCat("key", i)] = "value";
    std::map<std::string, std::string> out;
    std::vector<FieldViolation> violations;
    ReadAttributes(in, "customer.attributes", &out, &violations);
    if (n == kMaxAttributes) {
      EXPECT_TRUE(violations.empty());
    } else {
      ASSERT_EQ(violations.size(), 1u);
      EXPECT_EQ(violations[0].field, "customer.attributes");
    }
  }
}

// An attribute key is echoed in the field name only as far as a message
// should: cut after 64 bytes, in hex escapes when it is not UTF-8.
TEST(Validation, AnOverlongOrBinaryKeyIsShownShortInTheFieldName) {
  std::map<std::string, std::string> in;
  in[std::string(10000, 'k')] = "v";
  in[std::string("\xff\xfe", 2)] = "v";
  std::map<std::string, std::string> out;
  std::vector<FieldViolation> violations;
  ReadAttributes(in, "customer.attributes", &out, &violations);
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].field,
            absl::StrCat("customer.attributes[\"", std::string(64, 'k'),
                         "...\"] key"));
  EXPECT_EQ(violations[1].field, "customer.attributes[\"\\xff\\xfe\"] key");
  EXPECT_TRUE(out.empty());
}

// MariaDB finds "A1" for "A1 " in a key column; such keys are refused at the
// door, in requests and in references, naming the field.
TEST(Validation, KeysThatBeginOrEndWithSpaceAreRefused) {
  EXPECT_TRUE(CheckKeyText("A1", "f", 64).ok());
  EXPECT_TRUE(CheckKeyText("A 1", "f", 64).ok());
  for (const char* bad : {"A1 ", " A1", "A1\t"}) {
    absl::Status s = CheckKeyText(bad, "f", 64);
    ASSERT_EQ(FieldViolations(s).size(), 1u) << bad;
    EXPECT_EQ(FieldViolations(s)[0].field, "f");
  }
  TestExternalIds in;
  in.ids.push_back({"crm", "A1 "});
  in.ids.push_back({" crm", "A2"});
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<FieldViolation> violations;
  ReadExternalIds(in, "partner.external_ids", &out, &violations);
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].field, "partner.external_ids[0].id");
  EXPECT_EQ(violations[1].field, "partner.external_ids[1].source");
  EXPECT_TRUE(out.empty());
  absl::StatusOr<EntityRef> ref =
      ParseEntityRef("ext:crm:A1 ", "partner_ref", "partner", "US",
                     {.email = false, .phone = false, .external = true});
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(FieldViolations(ref.status())[0].field, "partner_ref");
  EXPECT_TRUE(ParseEntityRef("ext:crm:A1", "partner_ref", "partner", "US",
                             {.email = false, .phone = false, .external = true})
                  .ok());
  // Attribute keys too: "tier" and "tier " would be one key in the table.
  std::map<std::string, std::string> attributes = {{"tier", "a"},
                                                   {"tier ", "b"}};
  std::map<std::string, std::string> kept;
  std::vector<FieldViolation> attribute_violations;
  ReadAttributes(attributes, "customer.attributes", &kept,
                 &attribute_violations);
  ASSERT_EQ(attribute_violations.size(), 1u);
  EXPECT_EQ(attribute_violations[0].field,
            "customer.attributes[\"tier \"] key");
}

// A list sent again in another order takes the stored order (an update
// that changes nothing is seen as such); other contents stay as sent.
TEST(Validation, KeepStoredOrderOnlyReordersTheSameElements) {
  const std::vector<std::string> stored = {"crm:1", "shop:9"};
  std::vector<std::string> wanted = {"shop:9", "crm:1"};
  KeepStoredOrder(wanted, stored);
  EXPECT_EQ(wanted, stored);
  wanted = {"shop:9", "crm:2"};
  KeepStoredOrder(wanted, stored);
  EXPECT_EQ(wanted, (std::vector<std::string>{"shop:9", "crm:2"}));
  wanted = {"shop:9"};
  KeepStoredOrder(wanted, stored);
  EXPECT_EQ(wanted, std::vector<std::string>{"shop:9"});
}

TEST(Validation, FingerprintIsStableAndSensitive) {
  // Stored with requests, so the same in every version (see Fingerprint on
  // its offset basis): "" gives the basis itself.
  EXPECT_EQ(Fingerprint("abc"), "e16801510db89efd");
  EXPECT_EQ(Fingerprint(""), "14650fb0739d0383");
  EXPECT_NE(Fingerprint("abc"), Fingerprint("abd"));
  EXPECT_EQ(Fingerprint("").size(), 16u);
  // Several fields: the plain join while no field holds '|' or '\\' (so
  // stored fingerprints stay), and no two lists of fields give one text.
  EXPECT_EQ(FingerprintContent({"p1", "12", "", "note"}), "p1|12||note");
  EXPECT_NE(FingerprintContent({"a|b", "c"}), FingerprintContent({"a", "b|c"}));
  EXPECT_NE(FingerprintContent({"a\\", "|b"}),
            FingerprintContent({"a\\|", "b"}));
  EXPECT_EQ(FingerprintContent({"a|b\\"}), "a\\|b\\\\");
}

// An etag that is not the record's is ABORTED whether it is stale or was
// never issued, and the message gives the current one; one that is not a
// number is INVALID_ARGUMENT naming the field.
TEST(Requests, AnEtagThatIsNotTheRecordsSaysWhichIs) {
  EXPECT_TRUE(CheckEtag("", 2, "customer", "c1", "etag").ok());
  EXPECT_TRUE(CheckEtag("2", 2, "customer", "c1", "etag").ok());
  for (const char* given : {"1", "999"}) {
    absl::Status s = CheckEtag(given, 2, "customer", "c1", "etag");
    EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    EXPECT_TRUE(absl::StrContains(
        s.message(),
        absl::StrCat("customer c1 is at etag \"2\", not \"", given, "\"")))
        << s;
  }
  absl::Status bad = CheckEtag("W/x", 2, "customer", "c1", "etag");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(bad.message(), "etag:")) << bad;
}

TEST(Ids, ShapeOrderAndInjectedSources) {
  absl::Time now = absl::FromUnixMillis(1'700'000'000'000);
  uint64_t counter = 0;
  IdGenerator ids([&] { return now; }, [&] { return ++counter; });
  std::string a = ids.Next();
  now += absl::Milliseconds(1);
  std::string b = ids.Next();
  EXPECT_EQ(a.size(), 26u);
  EXPECT_TRUE(IsValidId(a));
  EXPECT_LT(a, b);  // later ids sort after earlier ones
  IdGenerator again([&] { return absl::FromUnixMillis(1'700'000'000'000); },
                    [n = uint64_t{0}]() mutable { return ++n; });
  EXPECT_EQ(again.Next(), a);  // deterministic with injected sources

  IdGenerator real;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(real.Next());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsValidId("short"));
  EXPECT_FALSE(
      IsValidId("01ARZ3NDEKTSV4RRFFQ69G5FAV"));  // upper case is not ours
  EXPECT_FALSE(
      IsValidId("0123456789abcdefghjkmnpqri"));  // 'i' is not in the alphabet
}

TEST(Ids, RowIdsSortByRowUnderTheirPrefix) {
  IdGenerator ids;
  const std::string prefix = ids.Next().substr(0, kRowIdPrefixSize);
  const std::string first = RowId(prefix, 1), second = RowId(prefix, 2),
                    last = RowId(prefix, kMaxRowIdRow);
  for (const std::string& id : {first, second, last}) {
    EXPECT_TRUE(IsValidId(id)) << id;
    EXPECT_EQ(id.substr(0, kRowIdPrefixSize), prefix);
  }
  EXPECT_LT(first, second);
  EXPECT_LT(second, last);
  EXPECT_EQ(RowId(prefix, 0).substr(kRowIdPrefixSize), "0000000000");
  EXPECT_EQ(last.substr(kRowIdPrefixSize), "zzzzzzzzzz");
  EXPECT_EQ(RowId(prefix, 33).substr(kRowIdPrefixSize), "0000000011");
}

TEST(Ids, RowOfIdReadsBackTheRowOfAnyIdAndRefusesOtherText) {
  IdGenerator ids;
  const std::string prefix = ids.Next().substr(0, kRowIdPrefixSize);
  for (int64_t row : {int64_t{0}, int64_t{1}, int64_t{33}, int64_t{1'000'000},
                      kMaxRowIdRow}) {
    EXPECT_EQ(RowOfId(RowId(prefix, row)), row) << row;
  }
  // A keyed id reads as a row of its own first characters.
  const std::string keyed = KeyedId("purchase", "order-1");
  std::optional<int64_t> row = RowOfId(keyed);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(RowId(keyed.substr(0, kRowIdPrefixSize), *row), keyed);
  EXPECT_EQ(RowOfId(""), std::nullopt);
  EXPECT_EQ(RowOfId("0123456789abcdefghjkmnpqr"), std::nullopt);   // 25
  EXPECT_EQ(RowOfId("0123456789abcdefghjkmnpqri"), std::nullopt);  // 'i'
}

TEST(Ids, KeyedIdsAreStableAndDifferByScopeAndKey) {
  const std::string a = KeyedId("purchase", "order-1");
  EXPECT_TRUE(IsValidId(a)) << a;
  EXPECT_EQ(a, KeyedId("purchase", "order-1"));
  EXPECT_NE(a, KeyedId("interaction", "order-1"));
  EXPECT_NE(a, KeyedId("purchase", "order-2"));
  // The scope and key are kept apart: moving a character across is another
  // id.
  EXPECT_NE(KeyedId("ab", "c"), KeyedId("a", "bc"));
  // The first 128 bits of SHA-256("purchase\x1forder-1") (557ebe01...) in
  // base32, as `printf 'purchase\037order-1' | sha256sum` gives them.
  EXPECT_EQ(a, "2nftz029q4hb5880vcetdd2mdc");
}

TEST(MysqlOptions, ParsesTcpAndSocketUris) {
  absl::StatusOr<MysqlOptions> tcp =
      MysqlOptions::FromUri("mysql://app:p%40ss@db.local:3307/crm");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(tcp->user, "app");
  EXPECT_EQ(tcp->password, "p@ss");
  EXPECT_EQ(tcp->host, "db.local");
  EXPECT_EQ(tcp->port, 3307);
  EXPECT_EQ(tcp->database, "crm");
  EXPECT_EQ(tcp->Redacted(), "mysql://app@db.local:3307/crm");

  absl::StatusOr<MysqlOptions> sock =
      MysqlOptions::FromUri("mysql://root@unix(/run/my.sock)/x");
  ASSERT_TRUE(sock.ok()) << sock.status();
  EXPECT_EQ(sock->socket, "/run/my.sock");
  EXPECT_EQ(sock->database, "x");

  for (const char* bad :
       {"postgres://a@b/c", "mysql://a@host:99999/db", "mysql://a@host:3306",
        "mysql://a@host:3306/", "mysql://a@unix(/x/db", "mysql://a%zz@h/db",
        "mysql://u:%-1@h/db", "mysql://u:% 9@h/db", "mysql://u:%+a@h/db",
        "mysql://u:%4@h/db"}) {
    EXPECT_FALSE(MysqlOptions::FromUri(bad).ok()) << bad;
  }
}

TEST(Migrations, SplitsStatementsAtLineEndSemicolonsAndDropsComments) {
  std::vector<std::string> statements = SplitSqlStatements(
      "-- a comment\nCREATE TABLE a (\n  x INT -- inline stays\n);\n\nINSERT "
      "INTO a VALUES "
      "(';');\nSELECT 1");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_NE(statements[0].find("CREATE TABLE a"), std::string::npos);
  EXPECT_EQ(statements[0].find(';'), std::string::npos);
  EXPECT_NE(statements[1].find("(';')"), std::string::npos);
  EXPECT_NE(statements[2].find("SELECT 1"), std::string::npos);
  // A comment after the semicolon ends the statement still.
  statements = SplitSqlStatements(
      "ALTER TABLE a ADD COLUMN y INT; -- why; says the comment\nSELECT 2;");
  EXPECT_EQ(statements, (std::vector<std::string>{
                            "ALTER TABLE a ADD COLUMN y INT", "SELECT 2"}));
  // Not at a semicolon inside quotes, however it looks.
  statements = SplitSqlStatements(
      "ALTER TABLE a ADD COLUMN z INT COMMENT 'it''s; -- not the end';\n"
      "SELECT 'two\nlines;';");
  EXPECT_EQ(
      statements,
      (std::vector<std::string>{
          "ALTER TABLE a ADD COLUMN z INT COMMENT 'it''s; -- not the end'",
          "SELECT 'two\nlines;'"}));
  // Nor in a comment, whichever kind, apostrophes and all.
  statements = SplitSqlStatements(
      "SELECT 1; # don't; stop here\n"
      "SELECT /* isn't; */ 2;\t--\tnote\n"
      "SELECT `a\\`;");
  EXPECT_EQ(statements,
            (std::vector<std::string>{"SELECT 1", "SELECT /* isn't; */ 2",
                                      "SELECT `a\\`"}));
}

// An amount a service stores is refused above 10^12 in magnitude (so that
// an entity's sum of a million of them still scores and is answered),
// naming the field.
TEST(ReadAmount, RefusesMagnitudesAboveTenToTheTwelfthNamingTheField) {
  google::type::Money money;
  money.set_units(1'000'000'000'000);
  absl::StatusOr<Decimal> most = ReadAmount(money, "purchase.amount", "", true);
  ASSERT_TRUE(most.ok()) << most.status();
  EXPECT_EQ(most->ToString(), "1000000000000.00");
  money.set_units(-1'000'000'000'000);
  EXPECT_TRUE(ReadAmount(money, "purchase.amount", "", true).ok());
  EXPECT_TRUE(
      CheckAmountMagnitude(*Decimal::Parse("-1000000000000"), "a").ok());
  EXPECT_FALSE(
      CheckAmountMagnitude(*Decimal::Parse("1000000000000.01"), "a").ok());
  for (const auto& [units, nanos] : std::vector<std::pair<int64_t, int32_t>>{
           {1'000'000'000'000, 10'000'000},
           {-1'000'000'000'000, -10'000'000},
           {1'000'000'000'000'000'000, 0},
           {9'000'000'000'000'000'000, 0}}) {
    money.set_units(units);
    money.set_nanos(nanos);
    absl::Status s = ReadAmount(money, "purchase.amount", "", true).status();
    ASSERT_EQ(FieldViolations(s).size(), 1u) << s;
    EXPECT_EQ(FieldViolations(s)[0].field, "purchase.amount");
  }
}

TEST(Channel, AddressListsBecomeRoundRobinTargets) {
  EXPECT_EQ(ChannelTarget("localhost:50054"), "localhost:50054");
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,127.0.0.1:2"),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(ChannelTarget("ipv4:127.0.0.1:1,127.0.0.1:2"),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_FALSE(MakeChannel("", {}).ok());
  // A list takes IP addresses: gRPC would fail every call to a host name
  // there, so the channel is refused at once, naming the entry.
  EXPECT_TRUE(MakeChannel("127.0.0.1:1,127.0.0.1:2", {}).ok());
  EXPECT_TRUE(MakeChannel("ipv6:[::1]:1,[::1]:2", {}).ok());
  for (const char* bad :
       {"scoring-a:50054,scoring-b:50054", "127.0.0.1:1,localhost:2",
        "127.0.0.1,127.0.0.1:2", "127.0.0.1:1,127.0.0.1:70000",
        "ipv6:::1:1,[::1]:2"}) {
    absl::Status s = MakeChannel(bad, {}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(s.message(), "addr: ")) << s;
  }
}

TEST(Channel, LanesStartAtSuccessiveReplicasOfAList) {
  const std::string list = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3";
  // From the process's first replica on, each lane one further, the others
  // after it in the list's order (pick_first's fallbacks).
  EXPECT_EQ(LaneTarget(list, 0, 0), "ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
  EXPECT_EQ(LaneTarget(list, 1, 0), "ipv4:127.0.0.1:2,127.0.0.1:3,127.0.0.1:1");
  EXPECT_EQ(LaneTarget(list, 2, 0), "ipv4:127.0.0.1:3,127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(LaneTarget(list, 3, 0), LaneTarget(list, 0, 0));
  EXPECT_EQ(LaneTarget(list, 0, 4), LaneTarget(list, 1, 0));
  EXPECT_EQ(LaneTarget("ipv6:[::1]:1,[::1]:2", 1, 0), "ipv6:[::1]:2,[::1]:1");
  // One name is left to its resolver.
  EXPECT_EQ(LaneTarget("localhost:50051", 3, 7), "localhost:50051");
  EXPECT_TRUE(MakeLaneChannel(list, {}, 5).ok());
  EXPECT_TRUE(MakeLaneChannel("localhost:50051", {}, 0).ok());
  EXPECT_EQ(MakeLaneChannel(list, {}, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeLaneChannel("127.0.0.1:1,localhost:2", {}, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Channel, LoopbackAddressesAreThoseOfThisMachineOnly) {
  for (const char* local :
       {"localhost:50051", "LOCALHOST:1", "127.0.0.1:50051", "127.8.9.10:1",
        "ipv4:127.0.0.1:1,127.0.0.2:2", "127.0.0.1:1,127.0.0.1:2",
        "[::1]:50051", "ipv6:[::1]:1,[::1]:2", "dns:///localhost:50051",
        "unix:/tmp/rapport.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(local)) << local;
  }
  for (const char* remote :
       {"customer.rapport.svc:50051", "10.0.0.7:50051", "0.0.0.0:50051",
        "128.0.0.1:1", "127.0.0.1:1,10.0.0.7:2", "[::2]:1",
        "[::ffff:10.0.0.7]:1", "dns:///customer:50051", "localhost.evil:1", "",
        "dns:///"}) {
    EXPECT_FALSE(IsLoopbackAddress(remote)) << remote;
  }
}

}  // namespace
}  // namespace rapport

namespace rapport {
namespace {

namespace cv1 = ::rapport::common::v1;

TEST(ApiNames, NamesAndParsesEveryChannelBothWays) {
  EXPECT_EQ(ChannelName(cv1::CHANNEL_EMAIL), "email");
  EXPECT_EQ(ChannelName(cv1::CHANNEL_EVENT), "event");
  for (int c = cv1::Channel_MIN + 1; c <= cv1::Channel_MAX; ++c) {
    if (!cv1::Channel_IsValid(c)) continue;
    std::optional<cv1::Channel> back = ParseChannel(ChannelName(c));
    ASSERT_TRUE(back.has_value()) << c;
    EXPECT_EQ(*back, c);
  }
  EXPECT_EQ(ParseChannel("SmS"), cv1::CHANNEL_SMS);
  EXPECT_FALSE(ParseChannel("unspecified").has_value());
  EXPECT_FALSE(ParseChannel("fax").has_value());
  EXPECT_FALSE(ParseChannel("").has_value());
  EXPECT_EQ(ChannelName(0), "unspecified");
  EXPECT_EQ(ChannelName(999), "unspecified");
}

TEST(ApiNames, TiersReadAsSCORINGmdWritesThem) {
  EXPECT_EQ(TierName(cv1::TIER_LEAD), "Lead");
  EXPECT_EQ(TierName(cv1::TIER_IRON), "Iron");
  EXPECT_EQ(TierName(cv1::TIER_GOLD), "Gold");
  EXPECT_EQ(TierName(cv1::TIER_PLATINUM), "Platinum");
  EXPECT_EQ(TierName(cv1::TIER_UNSPECIFIED), "");
  EXPECT_EQ(TierName(42), "");
  EXPECT_EQ(ParseTier("platinum"), cv1::TIER_PLATINUM);
  EXPECT_EQ(ParseTier("Gold"), cv1::TIER_GOLD);
  EXPECT_FALSE(ParseTier("unspecified").has_value());
  EXPECT_FALSE(ParseTier("bronze").has_value());
}

TEST(EnumRefusal, TellsUnsetUnknownAndNotTakenApart) {
  EXPECT_EQ(EnumRefusal(0, false, "won or lost"), "is required: won or lost");
  EXPECT_EQ(EnumRefusal(99, false, "won or lost"),
            "99 is not a known value; it must be won or lost");
  EXPECT_EQ(EnumRefusal(1, true, "won or lost"), "must be won or lost");
}

}  // namespace
}  // namespace rapport
