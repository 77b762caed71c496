#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"

extern char** environ;

namespace rapport::testing {
namespace {

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// fork + exec with the test as the parent that the child dies with.
pid_t Spawn(const std::vector<std::string>& argv, const Env& env, int in_fd,
            int out_fd, int err_fd) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    if (env.count(name) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> c_env;
  for (std::string& s : env_strings) c_env.push_back(s.data());
  c_env.push_back(nullptr);
  std::vector<char*> c_argv;
  std::vector<std::string> args = argv;
  for (std::string& s : args) c_argv.push_back(s.data());
  c_argv.push_back(nullptr);

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // Signals blocked by the test runner must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (in_fd >= 0) dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(c_argv[0], c_argv.data(), c_env.data());
    std::fprintf(stderr, "cannot run %s: %s\n", c_argv[0],
                 std::strerror(errno));
    _exit(127);
  }
  return pid;
}

}  // namespace

Process Process::Start(const std::vector<std::string>& argv, const Env& env,
                       const std::string& log_file) {
  int fd = log_file.empty()
               ? open("/dev/null", O_WRONLY)
               : open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int null_in = open("/dev/null", O_RDONLY);
  Process p;
  p.pid_ = Spawn(argv, env, null_in, fd, fd);
  close(fd);
  close(null_in);
  return p;
}

Process::Process(Process&& other) noexcept
    : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) Stop();
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0) Stop(absl::Seconds(5));
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

int Process::Wait() {
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = status;
    pid_ = -1;
  }
  return ExitCode(status_);
}

int Process::Stop(absl::Duration grace) {
  if (pid_ <= 0) return ExitCode(status_);
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (absl::Now() < deadline) {
    if (!running()) return ExitCode(status_);
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid_, SIGKILL);
  return Wait();
}

RunResult Run(const std::vector<std::string>& argv, const Env& env,
              const std::string& input) {
  TempDir dir;
  WriteFile(dir.File("in"), input);
  int in = open(dir.File("in").c_str(), O_RDONLY);
  int out = open(dir.File("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = open(dir.File("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = Spawn(argv, env, in, out, err);
  close(in);
  close(out);
  close(err);
  int status = 0;
  waitpid(pid, &status, 0);
  RunResult r;
  r.exit_code = ExitCode(status);
  r.out = ReadFile(dir.File("out"));
  r.err = ReadFile(dir.File("err"));
  return r;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr ? base : "/tmp") + "/rapport-test.XXXXXX";
  char* made = mkdtemp(pattern.data());
  path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

}  // namespace rapport::testing
