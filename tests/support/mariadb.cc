#include "tests/support/mariadb.h"

#include <cppconn/statement.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "test MariaDB: %s\n", message.c_str());
  std::abort();
}

std::string Script() { return SourceDir() + "/tests/support/test-mariadb"; }

}  // namespace

std::string SourceDir() { return RAPPORT_SOURCE_DIR; }
std::string BinaryDir() { return RAPPORT_BINARY_DIR; }

TestMariaDb& TestMariaDb::Shared() {
  static TestMariaDb* shared = [] {
    const char* given = std::getenv("RAPPORT_TEST_MYSQL");
    if (given != nullptr && *given != '\0') {
      auto* db = new TestMariaDb();
      db->uri_prefix_ = given;
      return db;
    }
    return StartPrivate().release();
  }();
  return *shared;
}

std::unique_ptr<TestMariaDb> TestMariaDb::StartPrivate(
    const std::string& tls_dir) {
  std::unique_ptr<TestMariaDb> db(new TestMariaDb());
  db->dir_ = std::make_unique<TempDir>();
  db->tls_dir_ = tls_dir;
  // A watchdog, detached from this process, stops the server and removes its
  // data once this test process is gone, however it ends (a crash, a kill, or
  // a Shared() server that is never destroyed).
  const std::string dir = db->dir_->path();
  Run({"/bin/bash", "-c",
       absl::StrCat(
           "(setsid bash -c 'while kill -0 ", getpid(),
           "; do sleep 0.5; done; bash \"$0\" stop \"$1\"; rm -rf \"$1\"' \"",
           Script(), "\" \"", dir, "\" >/dev/null 2>&1 </dev/null &)")});
  db->Start();
  return db;
}

void TestMariaDb::Start() {
  if (dir_ == nullptr) Die("cannot start a server this test did not start");
  std::vector<std::string> argv = {"/bin/bash", Script(), "start",
                                   dir_->path()};
  if (!port_.empty()) argv.push_back(port_);
  RunResult r =
      Run(argv, {{"RAPPORT_DB_FLUSH", "1"}, {"RAPPORT_DB_TLS_DIR", tls_dir_}});
  if (r.exit_code != 0) Die(absl::StrCat("start failed: ", r.err));
  uri_prefix_ = std::string(absl::StripAsciiWhitespace(r.out));
  port_ = std::string(absl::StripAsciiWhitespace(ReadFile(dir_->File("port"))));
}

void TestMariaDb::Stop() {
  if (dir_ == nullptr) Die("cannot stop a server this test did not start");
  RunResult r = Run({"/bin/bash", Script(), "stop", dir_->path()});
  if (r.exit_code != 0) Die(absl::StrCat("stop failed: ", r.err));
}

void TestMariaDb::Kill() {
  if (dir_ == nullptr) Die("cannot kill a server this test did not start");
  RunResult r =
      Run({"/bin/bash", "-c",
           "pid=$(cat \"$1/mariadb.pid\") && kill -KILL \"$pid\" && "
           "while kill -0 \"$pid\" 2>/dev/null && "
           "[ \"$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)\" != Z ]; do "
           "sleep 0.1; done; rm -f \"$1/mariadb.pid\"",
           "kill", dir_->path()});
  if (r.exit_code != 0) Die(absl::StrCat("kill failed: ", r.err));
}

void TestMariaDb::Pause() { Signal("STOP"); }
void TestMariaDb::Resume() { Signal("CONT"); }

void TestMariaDb::Signal(const std::string& name) {
  if (dir_ == nullptr) Die("cannot signal a server this test did not start");
  // kill(2) returns before every thread of the server has stopped (or gone
  // on): wait until /proc shows them all so, or a test's next call may still
  // be answered by a server it believes paused.
  static constexpr char kSignalAndWait[] = R"sh(
pid=$(cat "$2/mariadb.pid") && kill -"$1" "$pid" || exit 1
for _ in $(seq 1000); do
  stopped=0 running=0
  for stat in /proc/"$pid"/task/*/stat; do
    state=$(sed 's/.*) //' "$stat" 2>/dev/null | cut -d' ' -f1)
    case $state in T|t) stopped=1 ;; ?*) running=1 ;; esac
  done
  if [ "$1" = STOP ] && [ $running = 0 ]; then exit 0; fi
  if [ "$1" = CONT ] && [ $stopped = 0 ]; then exit 0; fi
  sleep 0.01
done
echo "the server's threads did not take SIG$1 in 10 s" >&2
exit 1
)sh";
  RunResult r =
      Run({"/bin/bash", "-c", kSignalAndWait, "signal", name, dir_->path()});
  if (r.exit_code != 0) Die(absl::StrCat("kill -", name, " failed: ", r.err));
}

TestMariaDb::~TestMariaDb() {
  if (dir_ != nullptr) Run({"/bin/bash", Script(), "stop", dir_->path()});
}

std::string TestMariaDb::CreateDatabase() {
  static int counter = 0;
  // Random as well as by process: databases are not dropped, and a later
  // process may get the pid of an earlier one on the same server.
  static absl::BitGen* const random = new absl::BitGen();
  const std::string name = absl::StrCat(
      "rt_", getpid(), "_", ++counter, "_",
      absl::Hex(absl::Uniform<uint64_t>(*random), absl::kZeroPad16));
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(uri_prefix_ + "/mysql");
  if (!options.ok()) Die(std::string(options.status().message()));
  options->pool_size = 1;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  if (!pool.ok()) Die(std::string(pool.status().message()));
  absl::Status created = (*pool)->Run([&](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute(
        absl::StrCat("CREATE DATABASE ", name, " CHARACTER SET utf8mb4"));
    return absl::OkStatus();
  });
  if (!created.ok()) Die(std::string(created.message()));
  return absl::StrCat(uri_prefix_, "/", name);
}

}  // namespace rapport::testing
