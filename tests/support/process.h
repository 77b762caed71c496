// Child processes for integration and end-to-end tests.
//
// A Process started here dies with the test: it gets SIGKILL from the kernel
// when the test process exits (PR_SET_PDEATHSIG), even if the test crashes,
// so no test leaves a server behind.
//
//   Process server = Process::Start({binary, "--listen=127.0.0.1:0", ...},
//   env); RunResult r = Run({ctl, "customers", "list"}, env);
//   EXPECT_EQ(r.exit_code, 0) << r.err;
#ifndef RAPPORT_TESTS_SUPPORT_PROCESS_H_
#define RAPPORT_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace rapport::testing {

using Env = std::map<std::string, std::string>;

class Process {
 public:
  // Starts argv[0] with argv, the parent's environment plus `env`, stdout and
  // stderr appended to `log_file` (or discarded when empty).
  static Process Start(const std::vector<std::string>& argv,
                       const Env& env = {}, const std::string& log_file = "");
  Process() = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM and waits up to `grace`, then SIGKILL; returns the exit code
  // (128 + signal when killed by one).
  int Stop(absl::Duration grace = absl::Seconds(15));
  // Waits for the exit; returns the exit code as above.
  int Wait();

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion, feeding `input` to its stdin.
RunResult Run(const std::vector<std::string>& argv, const Env& env = {},
              const std::string& input = "");

// A fresh empty directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_PROCESS_H_
