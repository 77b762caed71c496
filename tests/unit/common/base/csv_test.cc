#include "common/base/csv.h"

#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rapport {
namespace {

struct Rec {
  int64_t line;
  std::vector<std::string> fields;
};

std::vector<Rec> ReadAll(const std::string& text, size_t chunk = 1 << 20) {
  std::istringstream in(text);
  CsvReader reader(&in, chunk);
  std::vector<Rec> out;
  while (true) {
    absl::StatusOr<bool> more = reader.Next();
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    Rec r{reader.line(), {}};
    for (absl::string_view f : reader.fields()) r.fields.emplace_back(f);
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status FirstError(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(&in);
  while (true) {
    absl::StatusOr<bool> more = reader.Next();
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
  }
}

TEST(CsvReader, ReadsQuotedFieldsWithLineNumbers) {
  const std::string text =
      "\xEF\xBB\xBFid,note,amount\r\n"
      "a,\"x, y\",1.00\r\n"
      "b,\"say \"\"hi\"\"\",2\n"
      "c,\"two\nlines\r\nhere\",3\n"
      "\n"
      "d,,\n"
      "e,\"\",last";
  for (size_t chunk : {size_t{16}, size_t{17}, size_t{1} << 20}) {
    std::vector<Rec> recs = ReadAll(text, chunk);
    ASSERT_EQ(recs.size(), 6u) << chunk;
    EXPECT_EQ(recs[0].fields,
              (std::vector<std::string>{"id", "note", "amount"}));
    EXPECT_EQ(recs[0].line, 1);
    EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"a", "x, y", "1.00"}));
    EXPECT_EQ(recs[1].line, 2);
    EXPECT_EQ(recs[2].fields[1], "say \"hi\"");
    EXPECT_EQ(recs[3].fields[1], "two\nlines\r\nhere");
    EXPECT_EQ(recs[3].line, 4);
    EXPECT_EQ(recs[4].fields, (std::vector<std::string>{"d", "", ""}));
    EXPECT_EQ(recs[4].line, 8);
    EXPECT_EQ(recs[5].fields, (std::vector<std::string>{"e", "", "last"}));
    EXPECT_EQ(recs[5].line, 9);
  }
}

// Whether a record had a quoted field: "" and " " were written, ",," was not.
TEST(CsvReader, SaysWhetherARecordHadAQuotedField) {
  std::istringstream in("a,b\n,,\n\"\",\n\" \",x\nc,\"d\"\n");
  CsvReader reader(&in);
  std::vector<bool> quoted;
  while (*reader.Next()) quoted.push_back(reader.any_quoted());
  EXPECT_EQ(quoted, (std::vector<bool>{false, false, true, true, true}));
}

TEST(CsvReader, EmptyInputHasNoRecords) {
  EXPECT_TRUE(ReadAll("").empty());
  EXPECT_TRUE(ReadAll("\xEF\xBB\xBF").empty());
  EXPECT_TRUE(ReadAll("\n\r\n").empty());
}

TEST(CsvReader, ReportsMalformedQuotingWithTheLine) {
  absl::Status s = FirstError("a,b\n\"open,x\ny\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 2"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("unterminated"), absl::string_view::npos) << s;
  s = FirstError("a,b\nc,\"q\"x\n");
  EXPECT_NE(s.message().find("line 2"), absl::string_view::npos) << s;
  s = FirstError("a,b\nc\n d\"e\n");
  EXPECT_NE(s.message().find("line 3"), absl::string_view::npos) << s;
}

// A stream whose reads fail after its first `good` bytes (a disk error).
class FailingAfter : public std::streambuf {
 public:
  FailingAfter(std::string data, size_t good) : data_(std::move(data)) {
    setg(data_.data(), data_.data(), data_.data() + good);
  }

 protected:
  int_type underflow() override { throw std::runtime_error("read error"); }

 private:
  std::string data_;
};

// A read that fails inside a quoted field is a read error, not a file that
// left its quote open.
TEST(CsvReader, AReadFailingInsideAQuotedFieldIsNoQuotingError) {
  FailingAfter buf("id,note\n1,\"a long field cut off by the disk", 35);
  std::istream in(&buf);
  CsvReader reader(&in, 16);
  absl::StatusOr<bool> first = reader.Next();
  ASSERT_TRUE(first.ok() && *first) << first.status();
  absl::StatusOr<bool> second = reader.Next();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDataLoss)
      << second.status();
}

TEST(CsvReader, FieldCountCheckNamesTheLine) {
  std::istringstream in("a,b\nc\n");
  CsvReader reader(&in);
  ASSERT_TRUE(*reader.Next());
  EXPECT_TRUE(reader.ExpectFieldCount(2).ok());
  ASSERT_TRUE(*reader.Next());
  absl::Status s = reader.ExpectFieldCount(2);
  EXPECT_EQ(s.message(), "CSV line 2: expected 2 fields, got 1");
}

TEST(CsvHeader, MapsColumnsAndNamesTheMissingOne) {
  std::vector<absl::string_view> header = {"amount", "id", "extra"};
  absl::StatusOr<CsvHeader> h =
      CsvHeader::Create(header, {"id", "amount"}, {"note"});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->Index("id"), 1);
  EXPECT_EQ(h->Index("amount"), 0);
  EXPECT_EQ(h->Index("note"), -1);
  EXPECT_EQ(h->num_columns(), 3u);
  absl::StatusOr<CsvHeader> missing =
      CsvHeader::Create(header, {"id", "timestamp"});
  EXPECT_EQ(missing.status().message(),
            "missing required CSV column \"timestamp\"");
  std::vector<absl::string_view> dup = {"id", "id"};
  EXPECT_FALSE(CsvHeader::Create(dup, {"id"}).ok());
}

TEST(CsvWriter, QuotesOnlyWhenNeededAndRoundTrips) {
  std::ostringstream out;
  CsvWriter writer(&out);
  std::vector<std::string> row = {"plain",      "a,b", "say \"hi\"",
                                  "two\nlines", "",    "cr\r"};
  writer.WriteRow(row);
  writer.WriteRow({"x", "y"});
  EXPECT_EQ(out.str(),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,\"cr\r\"\nx,y\n");
  std::vector<Rec> back = ReadAll(out.str());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].fields, row);
  EXPECT_EQ(back[1].line, 3);
}

// Cells a spreadsheet would run as formulas get a ' before them once asked;
// numbers, signed ones too, and other text stay exact.
TEST(CsvWriter, GuardsFormulasWhenAsked) {
  for (const char* formula :
       {"=HYPERLINK(\"http://x\")", "+SUM(1+1)", "-2+3", "@SUM(1)", "\tcmd",
        "\rcmd", "-", "+", "-1.", "-.5", "=1", "+1e5"}) {
    EXPECT_TRUE(LooksLikeFormula(formula)) << formula;
  }
  for (const char* text : {"", "plain", "-12.50", "+7", "-0", "12", "1e5",
                           "O'Brien", "a=b", " =x", "'=x"}) {
    EXPECT_FALSE(LooksLikeFormula(text)) << text;
  }
  std::ostringstream exact;
  CsvWriter plain(&exact);
  plain.WriteRow({"=cmd|calc!A0", "-2+3", "-12.50"});
  EXPECT_EQ(exact.str(), "=cmd|calc!A0,-2+3,-12.50\n");
  std::ostringstream out;
  CsvWriter guarded(&out);
  guarded.GuardFormulas();
  guarded.WriteRow({"=cmd|calc!A0", "-2+3", "-12.50", "@a,b", "name"});
  EXPECT_EQ(out.str(), "'=cmd|calc!A0,'-2+3,-12.50,\"'@a,b\",name\n");
}

}  // namespace
}  // namespace rapport
