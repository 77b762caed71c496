// rapport-scoring: flags and environment -> options -> the common server
// runner. Stateless: no database; run as many replicas as the load needs.
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/call_guard.h"
#include "common/service_main.h"
#include "common/status.h"
#include "services/scoring/scoring_service.h"

ABSL_FLAG(int, max_population_calls, 1,
          "population calls (ScorePopulation, FitClvModel, PredictClv) that "
          "run at once; each holds its whole input in memory, so this bounds "
          "the replica's memory to that many populations");
ABSL_FLAG(int, max_population_calls_by_people, 1,
          "population calls of callers other than the domain services (whose "
          "tokens name a \"service:\" subject), such as a person's rapportctl "
          "scoring rfm, that run at once, beside --max_population_calls: so "
          "that no token given to a person can hold the slots refreshes need");
ABSL_FLAG(int64_t, max_population_records_by_people, 4'000'000,
          "the most input records a population call of a caller other than "
          "the domain services may carry (its memory comes on top of the "
          "refreshes'); past it the call is refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_population_records, 12'000'000,
          "the most input records (entities, facts, events, costs, "
          "summaries) one population call may carry; past it the call is "
          "refused with RESOURCE_EXHAUSTED. Memory grows by about 150 bytes "
          "a record: raise it with the replica's memory limit");
ABSL_FLAG(absl::Duration, population_wait, absl::Minutes(5),
          "how long a population call waits for one of those to end before "
          "it is refused with RESOURCE_EXHAUSTED");

ABSL_FLAG(int, max_population_waiting, 4,
          "population calls that may wait for one of those at once (each "
          "holds a serving thread); one more is refused at once with "
          "RESOURCE_EXHAUSTED, so that waiters leave threads to other calls");
ABSL_FLAG(absl::Duration, population_idle, absl::Minutes(2),
          "a population call whose client sends no message for this long "
          "while the replica reads it, or takes no answer for this long while "
          "it writes, is cancelled (the client sees CANCELLED) and its slot "
          "freed");

int main(int argc, char** argv) {
  const rapport::ServiceDefaults defaults{.name = "scoring",
                                          .port = 50054,
                                          .metrics_port = 9454,
                                          .max_threads = 16,
                                          .shutdown_grace = absl::Seconds(120),
                                          .takes_service_tokens = true};
  rapport::InitService(argc, argv, defaults,
                       "The Rapport scoring service (stateless).");
  absl::StatusOr<rapport::ServerOptions> server = rapport::ReadServerFlags(
      defaults, {rapport::scoring::v1::ScoringService::service_full_name()});
  if (!server.ok()) return rapport::FailToStart(defaults, server.status());
  const rapport::CallGuard guard(server->verifier.get(),
                                 rapport::scoring::ScoringMethodRoles());
  const int max_calls = absl::GetFlag(FLAGS_max_population_calls);
  const absl::Duration wait = absl::GetFlag(FLAGS_population_wait);
  if (max_calls < 1) {
    return rapport::FailToStart(
        defaults,
        rapport::InvalidField("max_population_calls", "must be at least 1"));
  }
  const int max_people_calls =
      absl::GetFlag(FLAGS_max_population_calls_by_people);
  if (max_people_calls < 1) {
    return rapport::FailToStart(
        defaults, rapport::InvalidField("max_population_calls_by_people",
                                        "must be at least 1"));
  }
  const int64_t max_records = absl::GetFlag(FLAGS_max_population_records);
  if (max_records < 1) {
    return rapport::FailToStart(
        defaults,
        rapport::InvalidField("max_population_records", "must be at least 1"));
  }
  const int64_t max_people_records =
      absl::GetFlag(FLAGS_max_population_records_by_people);
  if (max_people_records < 1) {
    return rapport::FailToStart(
        defaults, rapport::InvalidField("max_population_records_by_people",
                                        "must be at least 1"));
  }
  if (wait < absl::ZeroDuration()) {
    return rapport::FailToStart(
        defaults,
        rapport::InvalidField("population_wait", "must not be negative"));
  }
  // The server ends a stream it has received nothing from for
  // max_stream_idle_time, and a call waiting for its slot reads nothing.
  if (wait >= server->max_stream_idle_time) {
    return rapport::FailToStart(
        defaults,
        rapport::InvalidField(
            "population_wait",
            absl::StrCat("must be shorter than --max_stream_idle_time (",
                         absl::FormatDuration(server->max_stream_idle_time),
                         "): a call waiting for its slot reads nothing")));
  }
  const int max_waiting = absl::GetFlag(FLAGS_max_population_waiting);
  if (max_waiting < 0) {
    return rapport::FailToStart(defaults,
                                rapport::InvalidField("max_population_waiting",
                                                      "must not be negative"));
  }
  const absl::Duration idle = absl::GetFlag(FLAGS_population_idle);
  if (idle <= absl::ZeroDuration()) {
    return rapport::FailToStart(
        defaults, rapport::InvalidField("population_idle", "must be positive"));
  }
  rapport::scoring::ScoringServiceImpl service(
      &guard, [] { return absl::Now(); },
      {.max_calls = max_calls,
       .max_people_calls = max_people_calls,
       .wait = wait,
       .max_waiting = max_waiting,
       .max_records = max_records,
       .max_people_records = max_people_records,
       .idle = idle});
  return rapport::Serve(*server, {&service});
}
