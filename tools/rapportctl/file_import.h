// rapportctl <counterpart> import KIND FILE.csv, written once for every
// counterpart service: streams a CSV file to an Import* RPC in batches, with
// a progress bar on stderr, and prints what was stored and each rejected row.
//
//   rapportctl customers import purchases orders.csv
//   import id: csv-3f2a9c0d1e4b5a67
//   rows: 3  accepted: 2  duplicates: 0  created customers: 1  rejected: 1
//   (stderr) orders.csv:4: amount: not a decimal number: "12,50"
//
// The file is checked as a whole (header, quoting, field counts) before any
// row is sent, so a broken file stores nothing. The default import id is
// derived from the file's bytes, so running the same file again stores
// nothing twice. Rows go out on --streams concurrent calls under the one
// import id (a row's key is the import id and its line, less the line
// breaks inside earlier rows, see RowLines, whichever call carries it), each
// entity reference (the first column) always on the same call, so that two
// calls never race to create one entity; rows that a kind groups (see GroupOf)
// go together instead. A call whose replica is lost during the import (it
// died, or stopped past its grace) does not fail the import: once the
// first pass over the file is done, its rows go again, in another pass, on
// a new call that starts at the next replica (up to kMaxAgain times, after 1,
// 2, 4 and 8 s), and those it had stored count as duplicates (the entities they
// created, as found).
//
// A kind of import is a struct naming its stub, its messages, its columns,
// how a row fills a message, and how its answer counts created entities
// (customers_import.cc has two, partners.cc three, community.cc three).
#ifndef RAPPORT_TOOLS_RAPPORTCTL_FILE_IMPORT_H_
#define RAPPORT_TOOLS_RAPPORTCTL_FILE_IMPORT_H_

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/status.h"
#include "common/validation.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/csv_input.h"

namespace rapport::ctl {
namespace file_import {

inline constexpr int kDefaultBatchRows = 5000;
// What the services accept in one message (common/validation.h).
inline constexpr int kMaxBatchRows = kMaxRowsPerMessage;
// A message also goes when it holds kMessageBytes (a group it ends with may
// take it to kMaxMessageBytes), so that rows with long cells stay under the
// services' 4 MiB per message (--max_message_bytes) however many rows
// --batch-rows allows. A row whose cells hold more than kMaxRowBytes, far
// more than any column takes, is refused here: in a message it would fail
// the whole call.
inline constexpr size_t kMessageBytes = 2 << 20;
inline constexpr size_t kMaxMessageBytes = 3 << 20;
inline constexpr size_t kMaxRowBytes = 256 << 10;
inline constexpr int kDefaultStreams = 2;

// The channel of an import's stream `lane` (0, 1, ...): Context::Channel with
// that lane, so that the streams go to as many replicas as they can.
using LaneChannel =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(int lane)>;
inline constexpr int kMaxStreams = 16;
// Messages a call may have queued before the file reader waits for it.
inline constexpr size_t kQueuedMessages = 2;

// The digest of the file's bytes as "csv-" and 16 hex digits (the same
// digest as rapport::Fingerprint of the whole content).
inline absl::StatusOr<std::string> FileImportId(const std::string& path) {
  // Not a pipe, which this read would drain.
  RAPPORT_RETURN_IF_ERROR(CheckRegularFile(path));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot open the file (", std::strerror(errno), ")"));
  uint64_t h = 1469598103934665603ull;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buffer[i]);
      h *= 1099511628211ull;
    }
  }
  if (in.bad())
    return absl::DataLossError(absl::StrCat(path, ": cannot read the file"));
  return absl::StrFormat("csv-%016x", h);
}

// Progress on stderr: one line rewritten in place on a terminal (at most 5
// times a second), else a plain line once a second. Shows rows/s and the ETA
// from the bytes read so far.
class ImportProgress {
 public:
  explicit ImportProgress(std::string what)
      : what_(std::move(what)),
        tty_(isatty(STDERR_FILENO) == 1),
        start_(absl::Now()) {}

  void Update(int64_t rows, int64_t bytes, int64_t size) {
    const absl::Time now = absl::Now();
    if (now - last_ < (tty_ ? absl::Milliseconds(200) : absl::Seconds(1)))
      return;
    if (!tty_ && now - start_ < absl::Seconds(1)) return;
    last_ = now;
    Show(rows, bytes, size, now);
  }

  // The last state, and the end of the updating line.
  void Done(int64_t rows, int64_t size) {
    if (!shown_) return;
    Show(rows, size, size, absl::Now());
    if (tty_) std::cerr << "\n";
  }

 private:
  void Show(int64_t rows, int64_t bytes, int64_t size, absl::Time now) {
    const double seconds = std::max(1e-3, absl::ToDoubleSeconds(now - start_));
    const double fraction =
        size > 0
            ? std::clamp(static_cast<double>(bytes) / static_cast<double>(size),
                         0.0, 1.0)
            : 1.0;
    std::string eta = "?";
    if (fraction > 0) {
      eta = absl::StrFormat("%.0fs", seconds * (1 - fraction) / fraction);
    }
    const std::string line = absl::StrFormat(
        "rapportctl: importing %s: %3.0f%%, %d rows, %.0f rows/s, ETA %s",
        what_, 100 * fraction, rows, static_cast<double>(rows) / seconds, eta);
    if (tty_) {
      std::cerr << "\r" << line << "\x1b[K" << std::flush;
    } else {
      std::cerr << line << "\n";
    }
    shown_ = true;
  }

  std::string what_;
  bool tty_;
  absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  bool shown_ = false;
};

// Whether a kind's request takes `force` (an admin's: interactions the
// contact policy would refuse are recorded anyway).
template <typename Kind>
concept TakesForce = requires(typename Kind::Request r) {
  r.set_force(true);
};

// One of the import's calls: the reader queues its messages, and a thread of
// its own writes them, so that a call waiting for the server to store a batch
// holds up neither the reader nor the other calls.
template <typename Kind>
class ImportCall {
 public:
  using Request = typename Kind::Request;

  ImportCall(const Context& ctx, typename Kind::Stub& stub,
             absl::Duration timeout, const std::string& import_id) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(timeout));
    ctx.Authorize(&context_);
    writer_ = Kind::Start(stub, &context_, &response_);
    next_.set_import_id(import_id);
    // An admin's --force, for the kinds that take it (TakesForce), goes in
    // the first message, which names what the whole call does.
    if constexpr (TakesForce<Kind>) {
      next_.set_force(ctx.args.GetOr("force", "false") == "true");
    }
    sender_ = std::thread([this] { Send(); });
  }
  ~ImportCall() {
    Close();
    if (sender_.joinable()) sender_.join();
  }

  // The message being filled.
  Request& next() { return next_; }

  // Queues the message being filled, waiting while kQueuedMessages wait
  // already. False once the server has ended the call.
  bool Queue() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &ImportCall::HasRoom));
    if (ended_) return false;
    queue_.push_back(std::move(next_));
    queued_any_ = true;
    next_ = Request();
    next_.set_import_id(queue_.back().import_id());
    return true;
  }

  // Sends what is queued and the message being filled (every call sends at
  // least one message, the one that names the import), then waits for the
  // answer.
  grpc::Status Finish() {
    {
      absl::MutexLock lock(&mu_);
      if (!ended_ && (next_.rows_size() > 0 || !queued_any_)) {
        queue_.push_back(std::move(next_));
      }
    }
    Close();
    sender_.join();
    return writer_->Finish();
  }

  void Cancel() { context_.TryCancel(); }
  const typename Kind::Response& response() const { return response_; }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ || queue_.size() < kQueuedMessages;
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || closed_;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  void Send() {
    for (;;) {
      Request request;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ImportCall::HasWork));
        if (queue_.empty()) break;  // closed, and all sent
        request = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!writer_->Write(request)) {
        absl::MutexLock lock(&mu_);
        ended_ = true;  // the server ended the call; Finish() says why
        queue_.clear();
        return;
      }
    }
    writer_->WritesDone();
  }

  grpc::ClientContext context_;
  typename Kind::Response response_;
  std::unique_ptr<grpc::ClientWriter<Request>> writer_;
  Request next_;  // the reader's
  absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool queued_any_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sender_;
};

// A row rejected before it was sent (its number of fields is wrong).
struct LocalReject {
  int64_t row = 0;
  std::string field;  // the column, when one is to blame
  std::string message;
};

// Where each row of the file starts. A row's key (what the service stores it
// under, with the import id) is its line less the line breaks inside the
// quoted fields of the rows before it: its line in a file of one line per
// row (blank lines counted, as they always were), and joining a row split
// over lines, to fix it, moves no other row's key. What is reported names
// the line. Only where the two part is anything kept.
class RowLines {
 public:
  void Add(int64_t row, int64_t line) {
    const int64_t shift = line - row;
    if (shift != (shifts_.empty() ? 0 : shifts_.back().second))
      shifts_.emplace_back(row, shift);
  }
  int64_t LineOf(int64_t row) const {
    auto after =
        std::upper_bound(shifts_.begin(), shifts_.end(), row,
                         [](int64_t r, const std::pair<int64_t, int64_t>& s) {
                           return r < s.first;
                         });
    return row + (after == shifts_.begin() ? 0 : std::prev(after)->second);
  }

 private:
  std::vector<std::pair<int64_t, int64_t>> shifts_;  // from row on: line - row
};

// The answers of the calls as one, with the rows rejected before sending:
// counts added up, rejects by line.
template <typename Kind>
typename Kind::Response Combine(
    const std::vector<const typename Kind::Response*>& parts,
    const std::vector<LocalReject>& local) {
  typename Kind::Response all;
  for (const LocalReject& r : local) {
    auto* e = all.add_rejected();
    e->set_row(r.row);
    e->set_field(r.field);
    e->set_message(r.message);
  }
  for (const typename Kind::Response* part : parts) {
    all.set_accepted(all.accepted() + part->accepted());
    all.set_duplicates(all.duplicates() + part->duplicates());
    Kind::SetCreated(all, Kind::Created(all) + Kind::Created(*part));
    for (const auto& e : part->rejected()) *all.add_rejected() = e;
  }
  std::stable_sort(
      all.mutable_rejected()->begin(), all.mutable_rejected()->end(),
      [](const auto& a, const auto& b) { return a.row() < b.row(); });
  return all;
}

// --name as a whole number from 1 to `max`, else `fallback`.
inline absl::StatusOr<int> CountFlag(const Args& args, const std::string& name,
                                     int fallback, int max) {
  RAPPORT_ASSIGN_OR_RETURN(int n, IntFlag(args, name, fallback));
  if (n < 1 || n > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, ": want a number from 1 to ", max, ", not ", n));
  }
  return n;
}

// The group the current row is in, "" for none. A kind whose rows form
// groups that the service stores together (the members of one engagement)
// says so with
//
//   static std::string Group(const CsvInput& in);  // "" for none
//
// and a group's rows then go on one call (in place of their entity
// references' calls), and in one message while they follow each other in
// the file.
template <typename Kind>
std::string GroupOf(const CsvInput& in) {
  if constexpr (requires { Kind::Group(in); }) {
    return Kind::Group(in);
  } else {
    return "";
  }
}

// Reads the whole file once, so that a broken file (its header, its quoting)
// stops before anything is sent; a row of the wrong width is that row's
// reject, not the file's. Returns the number of data rows.
inline absl::StatusOr<int64_t> CheckFile(const std::string& path,
                                         const std::vector<Column>& columns) {
  RAPPORT_ASSIGN_OR_RETURN(std::unique_ptr<CsvInput> in,
                           CsvInput::Open(path, columns));
  in->AcceptRaggedRows();
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(bool more, in->Next());
    if (!more) return in->rows();
  }
}

// How many times a stream's rows go out again after its replica was lost.
inline constexpr int kMaxAgain = 4;

// A file's size and modification time, to tell whether it changed.
struct FileState {
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileState&) const = default;
};
inline std::optional<FileState> StateOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileState{st.st_size,
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                       st.st_mtim.tv_nsec};
}

// Whether a stream ended because its replica went away (it died, lost its
// connection, or stopped past its grace) rather than for what it sent.
inline bool ReplicaLost(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::CANCELLED;
}

// What one pass over the file gave each stream: how its call ended, and the
// answer when it ended well.
template <typename Kind>
struct SentPass {
  std::vector<grpc::Status> ends;
  std::vector<typename Kind::Response> answers;
};

// One pass over `file`: the rows of the streams still `pending`, each stream
// on its channel. The first pass (given `lines` and `local_rejects`) also
// notes where each row starts and the rows refused before sending. A stream
// that ends early leaves its other rows unsent; the rest go on, unless it
// ended for what it sent. An error is the file's (it changed since it was
// checked).
template <typename Kind>
absl::StatusOr<SentPass<Kind>> SendPass(
    Context& ctx, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    CsvInput& file, const std::vector<Column>& columns,
    const std::string& import_id, int batch_rows, absl::Time deadline,
    const std::vector<bool>& pending, RowLines* lines,
    std::vector<LocalReject>* local_rejects) {
  const size_t streams = channels.size();
  std::vector<std::unique_ptr<typename Kind::Stub>> stubs(streams);
  std::vector<std::unique_ptr<ImportCall<Kind>>> calls(streams);
  for (size_t c = 0; c < streams; ++c) {
    if (!pending[c]) continue;
    stubs[c] = std::make_unique<typename Kind::Stub>(channels[c]);
    calls[c] = std::make_unique<ImportCall<Kind>>(
        ctx, *stubs[c], deadline - absl::Now(), import_id);
  }
  SentPass<Kind> sent;
  sent.ends.resize(streams);
  sent.answers.resize(streams);
  std::vector<bool> ended(streams, false);
  // The calls still taking rows.
  size_t open =
      static_cast<size_t>(std::count(pending.begin(), pending.end(), true));

  ImportProgress progress(local_rejects != nullptr
                              ? std::string(Kind::kName)
                              : absl::StrCat(Kind::kName, " again"));
  const absl::Hash<absl::string_view> hash;
  // The group of the last row added to each call's message.
  std::vector<std::string> last_group(streams);
  // The bytes of the rows in each call's next message.
  std::vector<size_t> message_bytes(streams);
  absl::Status file_error;
  int64_t folded = 0;  // line breaks inside the rows read so far
  const auto refuse = [&](int64_t row, std::string field, std::string message) {
    if (local_rejects != nullptr) {
      local_rejects->push_back({row, std::move(field), std::move(message)});
    }
  };
  for (;;) {
    // With no call left open, a later pass is over; the first reads on, to
    // count every row and note where each starts and which it refuses.
    if (open == 0 && local_rejects == nullptr) break;
    absl::StatusOr<bool> more = file.Next();
    if (!more.ok()) {
      file_error = more.status();  // the file changed since it was checked
      break;
    }
    if (!*more) break;
    const int64_t row = file.line() - folded;
    if (lines != nullptr) lines->Add(row, file.line());
    folded += file.LineBreaksInRow();
    if (file.ragged()) {
      refuse(row, "", file.RaggedMessage());
      continue;
    }
    // The services' messages hold UTF-8 text only: a field that is not (a
    // name saved as Latin-1) would make the service drop the whole message
    // holding it and take the import as ended there.
    const auto not_utf8 = [&]() -> int {
      for (size_t i = 0; i < columns.size(); ++i) {
        if (file.Has(i) && !IsValidUtf8(file.Get(i))) return i;
      }
      return -1;
    }();
    if (not_utf8 >= 0) {
      refuse(row, columns[not_utf8].names[0],
             "is not valid UTF-8 (save the file as UTF-8)");
      continue;
    }
    size_t cells = 0, widest = 0, widest_size = 0;
    for (size_t i = 0; i < columns.size(); ++i) {
      const size_t n = file.Has(i) ? file.Get(i).size() : 0;
      cells += n;
      if (n > widest_size) widest = i, widest_size = n;
    }
    if (cells > kMaxRowBytes) {
      refuse(
          row, columns[widest].names[0],
          absl::StrCat("the row holds ", cells, " bytes, more than a row may (",
                       kMaxRowBytes, "); this column holds ", widest_size));
      continue;
    }
    const std::string group = GroupOf<Kind>(file);
    const size_t c =
        hash(group.empty() ? file.Get(0) : absl::string_view(group)) % streams;
    if (!pending[c] || ended[c]) continue;
    ImportCall<Kind>& call = *calls[c];
    // A full message goes before this row, unless the row continues the
    // group that the message ends with (within what one message may hold).
    const int filled = call.next().rows_size();
    const bool continues = !group.empty() && group == last_group[c] &&
                           filled < kMaxBatchRows &&
                           message_bytes[c] < kMaxMessageBytes;
    if ((filled >= batch_rows || message_bytes[c] >= kMessageBytes) &&
        !continues) {
      if (!call.Queue()) {
        // The server ended the call. A lost replica's rows go again on the
        // next pass; any other end stops the import here.
        ended[c] = true;
        sent.ends[c] = call.Finish();
        if (!ReplicaLost(sent.ends[c])) break;
        --open;
        continue;
      }
      message_bytes[c] = 0;
      progress.Update(file.rows(), file.bytes_read(), file.size());
    }
    Kind::AddRow(file, row, call.next());
    message_bytes[c] +=
        call.next().rows(call.next().rows_size() - 1).ByteSizeLong() + 4;
    last_group[c] = group;
  }
  if (!file_error.ok()) {
    for (auto& call : calls) {
      if (call != nullptr) call->Cancel();
    }
    for (size_t c = 0; c < streams; ++c) {
      if (calls[c] != nullptr && !ended[c]) calls[c]->Finish();
    }
    return file_error;
  }
  for (size_t c = 0; c < streams; ++c) {
    if (calls[c] == nullptr || ended[c]) continue;
    sent.ends[c] = calls[c]->Finish();
    if (sent.ends[c].ok()) sent.answers[c] = calls[c]->response();
  }
  progress.Done(file.rows(), file.size());
  return sent;
}

template <typename Kind>
int Import(Context& ctx, const LaneChannel& lanes, const std::string& path,
           const std::string& import_id, int batch_rows, int streams) {
  const std::vector<Column> columns = Kind::Columns();
  // What the file was as the import began: a stream sent again re-reads it,
  // and must send what the first pass did.
  const std::optional<FileState> began = StateOf(path);
  if (absl::StatusOr<int64_t> checked = CheckFile(path, columns);
      !checked.ok()) {
    std::cerr << "rapportctl: " << checked.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::unique_ptr<CsvInput>> in = CsvInput::Open(path, columns);
  if (!in.ok()) {
    std::cerr << "rapportctl: " << in.status().message() << "\n";
    return kExitFailed;
  }
  (*in)->AcceptRaggedRows();
  if (!(*in)->unused().empty()) {
    std::cerr << "rapportctl: " << path << ":" << (*in)->header_line()
              << ": ignoring the column"
              << ((*in)->unused().size() > 1 ? "s " : " ")
              << absl::StrJoin((*in)->unused(), ", ")
              << ", which this import does not read\n";
  }
  std::cerr << "rapportctl: import id: " << import_id << "\n";

  // An import may run long; --timeout overrides the default of an hour.
  const absl::Time deadline =
      absl::Now() + (ctx.args.Has("timeout") ? ctx.timeout : absl::Hours(1));
  // Each stream's answer, once it has one, and how often its rows went out
  // again after a replica was lost.
  std::vector<typename Kind::Response> answers(streams);
  std::vector<bool> pending(streams, true);
  std::vector<int> again(streams, 0);
  std::vector<LocalReject> local_rejects;
  RowLines lines;
  // A channel per stream, so that given several replicas each stream goes
  // to another one; a stream that goes again starts at the next replica.
  std::vector<std::shared_ptr<grpc::Channel>> channels(streams);
  const auto connect = [&](int c) -> absl::Status {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        lanes(c + again[c]);
    if (!channel.ok()) return channel.status();
    channels[c] = *std::move(channel);
    return absl::OkStatus();
  };
  for (int c = 0; c < streams; ++c) {
    if (absl::Status s = connect(c); !s.ok()) return UsageError(s);
  }
  for (int pass = 0;; ++pass) {
    std::unique_ptr<CsvInput> reread;
    if (pass > 0) {
      absl::StatusOr<std::unique_ptr<CsvInput>> opened =
          began.has_value() && StateOf(path) == began
              ? CsvInput::Open(path, columns)
              : absl::FailedPreconditionError(absl::StrCat(
                    path,
                    ": the file changed during the import, so its rows "
                    "cannot be sent again as they were"));
      if (!opened.ok()) {
        // Under the same import id, which a changed file's bytes no longer
        // give, a row stored already is not stored again.
        std::cerr << "rapportctl: " << opened.status().message() << "\n"
                  << "rapportctl: rows stored before the failure stay "
                     "stored; run the import again with --import-id "
                  << import_id
                  << " to import the rest (nothing is stored twice)\n";
        return kExitFailed;
      }
      reread = *std::move(opened);
      reread->AcceptRaggedRows();
    }
    CsvInput& file = pass == 0 ? **in : *reread;
    const absl::StatusOr<SentPass<Kind>> sent = SendPass<Kind>(
        ctx, channels, file, columns, import_id, batch_rows, deadline, pending,
        pass == 0 ? &lines : nullptr, pass == 0 ? &local_rejects : nullptr);
    if (!sent.ok()) {
      std::cerr << "\nrapportctl: " << sent.status().message() << "\n";
      return kExitFailed;
    }
    // A stream whose replica went away (it died, or stopped past its grace)
    // goes again, on another replica where there is one: its rows that were
    // stored count as duplicates then. Any other end fails the import.
    grpc::Status failed;
    std::vector<int> lost;
    for (int c = 0; c < streams; ++c) {
      if (!pending[c]) continue;
      const grpc::Status& s = sent->ends[c];
      if (s.ok()) {
        answers[c] = sent->answers[c];
        pending[c] = false;
      } else if (ReplicaLost(s) && again[c] < kMaxAgain &&
                 absl::Now() < deadline) {
        lost.push_back(c);
      } else if (failed.ok()) {
        failed = s;
      }
    }
    if (!failed.ok()) {
      ReportError(FromGrpcStatus(failed));
      std::cerr << "rapportctl: rows stored before the failure stay stored; "
                   "run the same command again to import the rest (nothing "
                   "is stored twice)\n";
      return kExitFailed;
    }
    if (lost.empty()) break;
    for (int c : lost) {
      ++again[c];
      std::cerr << "rapportctl: stream " << c + 1 << " of " << streams
                << " ended (" << FromGrpcStatus(sent->ends[c]).message()
                << "); sending its rows again, to the next replica where "
                   "there is one (those stored already count as "
                   "duplicates)\n";
      if (absl::Status s = connect(c); !s.ok()) return UsageError(s);
    }
    // 1, 2, 4, 8 s: time for a replica that died alone to be restarted.
    absl::SleepFor(std::min(absl::Seconds(1 << pass), deadline - absl::Now()));
  }
  std::vector<const typename Kind::Response*> parts;
  for (const auto& answer : answers) parts.push_back(&answer);
  typename Kind::Response response = Combine<Kind>(parts, local_rejects);
  for (auto& e : *response.mutable_rejected()) e.set_row(lines.LineOf(e.row()));

  const int64_t rows = (*in)->rows();
  const int64_t rejected = rows - response.accepted() - response.duplicates();
  if (ctx.format == Format::kJson) {
    // The counts the other formats print, every one of them even when 0
    // (proto JSON leaves zeros out), and the rejected rows listed, each with
    // its row as a number (as the counts are) and every key.
    nlohmann::ordered_json listed = nlohmann::ordered_json::array();
    for (const auto& e : response.rejected()) {
      nlohmann::ordered_json one;
      one["row"] = e.row();
      one["field"] = e.field();
      one["message"] = e.message();
      listed.push_back(std::move(one));
    }
    nlohmann::ordered_json out;
    out["import_id"] = import_id;
    out["rows"] = rows;
    out["accepted"] = response.accepted();
    out["duplicates"] = response.duplicates();
    out[absl::StrCat("created_", Kind::kCreated)] = Kind::Created(response);
    out["rejected_rows"] = rejected;
    out["rejected"] = std::move(listed);
    std::cout << out.dump(2, ' ', false,
                          nlohmann::json::error_handler_t::replace)
              << "\n";
  } else if (ctx.format == Format::kCsv) {
    Table t({"import_id", "rows", "accepted", "duplicates",
             absl::StrCat("created_", Kind::kCreated), "rejected"});
    t.AddRow({import_id, absl::StrCat(rows), absl::StrCat(response.accepted()),
              absl::StrCat(response.duplicates()),
              absl::StrCat(Kind::Created(response)), absl::StrCat(rejected)});
    t.Print(ctx.format, std::cout);
  } else {
    std::cout << "import id: " << import_id << "\n"
              << "rows: " << rows << "  accepted: " << response.accepted()
              << "  duplicates: " << response.duplicates() << "  created "
              << Kind::kCreated << ": " << Kind::Created(response)
              << "  rejected: " << rejected << "\n";
  }
  for (const auto& e : response.rejected()) {
    std::cerr << path << ":" << e.row() << ": "
              << (e.field().empty() ? "" : e.field() + ": ") << e.message()
              << "\n";
  }
  if (rejected > response.rejected_size()) {
    std::cerr << "rapportctl: and " << rejected - response.rejected_size()
              << " more rejected rows not listed\n";
  }
  if (rejected > 0) {
    // The file's id changes with its bytes; its rows' keys are the import
    // id and their lines (RowLines).
    std::cerr << "rapportctl: fix the rejected rows on their own lines (a "
                 "row split over lines may be joined) and run again with "
                 "--import-id "
              << import_id
              << ": the rows stored now are then not stored again\n";
  }
  return rejected > 0 ? kExitFailed : kExitOk;
}

}  // namespace file_import

// rapportctl <command> import KIND FILE.csv [--import-id ID] [--batch-rows N]
// [--streams N] [--force, for kinds that take it] for one kind; `usage` is
// the command's usage line.
template <typename Kind>
int RunFileImport(Context& ctx, const file_import::LaneChannel& lanes,
                  const std::string& usage) {
  using namespace file_import;  // NOLINT: this header's own helpers
  const std::vector<std::string>& words = ctx.args.positional();
  if (words.size() != 4) return UsageError(usage, "");
  std::set<std::string> known = {"import-id", "batch-rows", "streams"};
  if constexpr (TakesForce<Kind>) known.insert("force");
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  const std::string& path = words[3];
  absl::StatusOr<int> batch_rows =
      CountFlag(ctx.args, "batch-rows", kDefaultBatchRows, kMaxBatchRows);
  if (!batch_rows.ok()) {
    return UsageError(std::string(batch_rows.status().message()), "");
  }
  // A kind may ask for fewer streams by default (kStreams).
  int default_streams = kDefaultStreams;
  if constexpr (requires { Kind::kStreams; }) default_streams = Kind::kStreams;
  absl::StatusOr<int> streams =
      CountFlag(ctx.args, "streams", default_streams, kMaxStreams);
  if (!streams.ok()) {
    return UsageError(std::string(streams.status().message()), "");
  }
  std::string import_id = ctx.args.GetOr("import-id", "");
  if (ctx.args.Has("import-id") &&
      (import_id.empty() || import_id.size() > 64)) {
    return UsageError("--import-id: want 1 to 64 bytes", "");
  }
  if (import_id.empty()) {
    absl::StatusOr<std::string> derived = FileImportId(path);
    if (!derived.ok()) {
      std::cerr << "rapportctl: " << derived.status().message() << "\n";
      return kExitFailed;
    }
    import_id = *derived;
  }
  return Import<Kind>(ctx, lanes, path, import_id, *batch_rows, *streams);
}

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_FILE_IMPORT_H_
