// rapportctl: the command-line client for people. See `rapportctl help`.
#include <grpc/support/log.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/channel.h"
#include "common/status.h"
#include "tools/rapportctl/command.h"

namespace rapport::ctl {
namespace {

constexpr char kUsage[] = R"(rapportctl: the command-line client of Rapport.

Usage: rapportctl [global flags] <command> [arguments and flags]

Every command that lists ([--all] below) prints one page, and says on stderr how to get the
next (--page-token T), or every page with --all.

Commands:
  customers create --display-name NAME [--email E] [--phone +E164] [--external-id SOURCE:ID]...
                   [--postal-code P] [--attribute KEY=VALUE]... [--request-id R]
  customers get ID
  customers update ID [--display-name N] [--email E] [--phone P] [--external-id S:I]...
                   [--postal-code P] [--attribute K=V]... [--etag E]
  customers delete ID [--etag E] [--force] [--allow-missing]
  customers list [--segment S] [--tier lead|iron|gold|platinum] [--min-value V] [--max-value V]
                 [--order-by value|id] [--page-size N] [--page-token T] [--all]
  customers identify [--email E] [--phone P] [--external-id SOURCE:ID]... [--display-name N]
                 [--request-id R] [--link]   (--link: the one found takes the identities
                 it lacks; only for identities known to be the person's)
  customers duplicates [--page-size N] [--page-token T] [--all]
  customers merge PRIMARY DUPLICATE... [--dry-run]
  customers erase ID [--etag E]
  customers interactions log --customer ID --channel email|phone|sms|visit|web|mail|event
                 [--cost DECIMAL] [--time RFC3339] [--kind K] [--note N] [--force] [--request-id R]
      --cost defaults to 0 (a contact that cost nothing)
  customers interactions list --customer ID [--page-size N] [--page-token T] [--all]
  customers consent set --customer ID --purpose P --channel C (--grant|--withdraw) --source S
                 [--time RFC3339]
  customers consent list --customer ID
  customers import purchases FILE.csv [--import-id ID] [--batch-rows N] [--streams N]
      FILE.csv: customer_ref,timestamp,amount[,currency,request_id]; customer_ref is a
      customer id, email:ADDRESS, phone:NUMBER or ext:SOURCE:ID (unknown identities create
      the customer). Shows progress; prints every rejected row (a row with more or fewer
      fields than the header is one; broken quoting stops the file before anything is sent);
      a re-run stores nothing twice (after fixing rejected rows in the file, with the
      --import-id the first run printed).
      Sends on --streams concurrent calls (default 2), each customer's rows on one;
      given several replicas (--addr A,B), the calls go to different ones.
  customers import interactions FILE.csv [--import-id ID] [--batch-rows N] [--streams N]
                 [--force]
      FILE.csv: customer_ref,timestamp,channel,cost[,kind,note,request_id]
      a row dated within the last 24 hours is held to the customer's contact policy (rejected
      on a channel its tier does not allow, or above its cost ceiling); --force (admin,
      audited) records it anyway
  customers refresh-scores [--as-of RFC3339] [--window-days N] [--bins K] [--with-clv] [--no-wait]
                 [--request-id R]
      scores every customer through the scoring service; follows the job with a progress bar
  customers refresh-job ID
  customers value ID
  customers summarize
  customers export scores [--key ext:SOURCE] [--out FILE.csv]
      the stored values, in the columns of `scoring rfm`, by entity_id bytes; with --key,
      entity_id is the external id from SOURCE (customers without one are left out; one with
      several is listed once, under the first in byte order); --output json writes
      JSON Lines instead (one value a line, the fields of `customers value`)
  partners create --display-name N --kind supplier|distributor|channel|agency|intermediary
                 [--external-id SOURCE:ID]... [--region R] [--contact NAME,EMAIL,PHONE,ROLE]...
                 [--attribute K=V]... [--request-id R]
  partners get ID
  partners update ID [--display-name N] [--kind K] [--lifecycle prospect|onboarding|active|
                 suspended|ended] [--region R] [--external-id S:I]... [--etag E]
  partners delete ID [--etag E] [--force] [--allow-missing]
  partners list [--kind K] [--lifecycle L] [--tier T] [--segment S] [--order-by value|id] [--all]
  partners identify [--external-id SOURCE:ID]... [--contact-email E] [--display-name N] [--kind K]
                 [--request-id R]
  partners duplicates [--all]
      (every partners list, duplicates and conflicts command takes [--page-size N]
      [--page-token T] [--all]:
      one page, or every page; a table of one page says on stderr when more are left)
  partners import deals FILE.csv
      partner_ref,deal_id,account,amount,registered_at,state[,closed_at,account_domain,request_id]
      partner_ref: a partner id or ext:SOURCE:ID (an unknown external id creates the partner,
      kind channel); state: submitted, approved, rejected, won, lost or expired; closed_at
      required for won and lost, kept for rejected and expired, refused for submitted and
      approved; a won deal for an account another partner's registration holds (within
      the window) names that claim (listed by deals conflicts --decided), an approved one in
      conflict is refused; deals go on one stream unless --streams says otherwise, so
      that registrations claim accounts in the file's order
  partners import orders FILE.csv        partner_ref,timestamp,amount[,request_id]
  partners import interactions FILE.csv  partner_ref,timestamp,channel,cost[,kind,note,request_id]
      (imports take [--import-id ID] [--batch-rows N] [--streams N], as customers import;
      interactions, held to the contact policy as customers', also [--force])
  partners deals register --partner ID --account NAME --amount X [--domain D] [--reference R]
                 [--registered-at T] [--expected-close T] [--request-id R]
  partners deals approve|reject|expire ID [--force]; partners deals win|lose ID --closed-at T
  partners deals get ID; partners deals list [--partner ID] [--state S] [--all]
  partners deals conflicts [--decided] [--all]
      deals in conflict that wait for a decision (the later one still submitted;
      --decided: those decided since too), each with every claimant's value, tier and
      win rate (--output json: the whole scorecard)
  partners funds request --partner ID --activity A --amount X [--request-id R]
  partners funds approve ID [--force]; partners funds reject|reject-claim ID
  partners funds claim ID --amount X [--time T]; partners funds pay ID [--time T] [--force]
      reject: the request, or its claim once claimed (reject-claim: the claim only);
      --time: when the claim was made or paid (default now); --etag E on each of them;
      who requested the funds does not approve them, and who claimed them does not pay
      the claim: another person does, or an admin with --force (audited)
  partners funds get ID; partners funds list [--partner ID] [--state S]
  partners programs create --name N --commission PERCENT [--tier-commission TIER=PERCENT]...
      or --margin PERCENT [--tier-margin TIER=PERCENT]... for a program whose partners
      keep a margin (resellers, distributors) instead of earning a commission
  partners programs get ID; partners programs list
  partners agreements create --partner ID --program ID --start T [--end T]
  partners agreements activate|expire|terminate ID; partners agreements list [--partner ID]
      an active agreement expires by itself at its end time (expire: one whose end has passed)
  partners orders record --partner ID --amount X --time T [--description D] [--request-id R]
  partners orders list --partner ID [--all]
  partners interactions log --partner ID --channel C --cost X [--time T] [--kind K] [--note N]
                 [--force] [--request-id R]
  partners interactions list --partner ID [--all]
  partners refresh-scores [--as-of RFC3339] [--window-days N] [--bins K] [--with-clv] [--no-wait]
                 [--request-id R]
  partners refresh-job ID; partners value ID; partners summarize
  partners scorecard ID
      values, win rate, return of paid funds, trend against the previous refresh, and the
      profit to the next tier
  partners export scores [--key ext:SOURCE] [--out FILE.csv]
      exactly the columns of `rapportctl scoring rfm`, one row per partner, by entity_id bytes
      (--output json: JSON Lines, one value a line)
  community create --display-name N --kind shareholder|investor|analyst
                 [--type T] [--organisation O] [--external-id SOURCE:ID]... [--request-id R]
      T: institutional, retail, high_net_worth, sell_side or buy_side; also
      [--contact NAME,EMAIL,PHONE,ROLE]... [--attribute K=V]...
  community get ID
  community update ID [--display-name N] [--kind K] [--type T] [--organisation O]
                 [--external-id S:I]... [--contact C]... [--attribute K=V]... [--etag E]
  community delete ID [--etag E] [--force] [--allow-missing]
      a member with holdings, engagements or coverage needs --force
  community list [--kind K] [--tier T] [--segment S] [--order-by value|id] [--page-size N] [--all]
  community identify [--external-id SOURCE:ID]... [--contact-email E] [--display-name N]
                 [--kind K] [--request-id R]
      the one member they name, created when none does (kind default investor)
  community duplicates [--all]
  community import holdings FILE.csv     member_ref,security,date,shares,price[,request_id]
  community import engagements FILE.csv  member_ref,timestamp,kind,cost[,outcome,note,request_id]
      member_ref: a member id or ext:SOURCE:ID (an unknown external id creates the member, kind
      "investor"); date is YYYY-MM-DD (a holding at that date's end, 23:59:59.999999 UTC, for
      comparison with as_of); kind one of meeting, call, roadshow, conference,
      earnings_call, report_sent. Several members in one engagement: one row each with the same
      request_id prefix and a distinct suffix (prefix/suffix separated by the last '/'), or
      `community engagements log --member A --member B ...`. A row's cost is what serving
      its member cost (its share of the engagement; log takes the whole and shares it).
  community import coverage FILE.csv     member_ref,security,date,rating,target_price[,request_id]
      rating: buy, hold or sell, or the analyst's own (outperform, underweight, ...), or
      dropped (coverage ended; no target price); an unknown external id creates an
      analyst here
      (imports take [--import-id ID] [--batch-rows N] [--streams N], as customers import)
  community holdings record --member ID --security S --date YYYY-MM-DD --shares N --price X
                 [--request-id R]
  community holdings history --member ID [--security S] [--all]
  community engagements log --member A [--member B]... --kind K --time RFC3339 --cost X
                 [--outcome O] [--note N] [--request-id R]
      the cost is the whole engagement's, shared equally among its members
  community engagements list --member ID [--all]
  community coverage record --member ID --security S --date YYYY-MM-DD --rating R
                 [--target-price X] [--request-id R]
  community register [--as-of DATE] [--security S] [--all]
      who holds what as of DATE (default today) and its market value, largest first
  community changes --from DATE --to DATE [--security S] [--all]
      new, bought, sold and exited positions, largest traded value first (the shares bought
      or sold, at the price in force at --to)
  community consensus --security S [--as-of DATE]
      ratings by count, mean and median target, each analyst's latest rating and the one
      before (--output csv: the analysts' rows)
  community refresh-scores [--as-of RFC3339] [--window-days N] [--bins K] [--with-clv] [--no-wait]
                 [--request-id R]
  community refresh-job ID; community value ID; community summarize (or: community segments)
  community targets [--as-of RFC3339] [--limit N] [--peer SECURITY]...
      whom to meet next, with the reason and the numbers behind it; holders of the
      --peer securities (at most 100) that hold none of ours are targets too
  community at-risk [--as-of RFC3339] [--limit N]
      holders whose position shrank and who were not engaged since, largest value at risk first
  community export scores [--key ext:SOURCE] [--out FILE.csv]
      exactly the columns of `rapportctl scoring rfm`, one row per member, by entity_id bytes
      (--output json: JSON Lines, one value a line)
  purchases record --customer ID --amount DECIMAL [--currency CODE] [--time RFC3339]
                   [--description D] [--request-id R]
      --time defaults to now, and is required with --request-id (a retry must say the
      same); so for interactions log
  purchases list --customer ID [--start RFC3339] [--end RFC3339] [--page-size N]
                 [--page-token T] [--all]
  overview [--customer-addr A] [--partner-addr A] [--community-addr A]
      the three counterparts side by side from their services' summaries: count, scored,
      by tier and segment, value, monetary, cost to serve, profit; and the balance: each
      tier's share of its counterpart's value and monetary value against its share of
      the cost to serve, and each counterpart's share of all of them (every share column
      adds up to 100%; a note names the counterparts left out: unavailable, never
      refreshed, or in another currency). A service that does not answer is shown as
      unavailable, the rest prints, and the exit status is 1.
  report --out FILE.html [--as-of RFC3339] [--targets N] [--peer SECURITY]...
                 [--customer-addr A] [--partner-addr A] [--community-addr A]
      one self-contained HTML page (no network needed to open it): the overview and its
      balance chart, each counterpart's tiers, R-by-F grid and value distribution, the
      financial community's top targets (ranked as `community targets` does, with the
      same --peer securities) and the partner deal conflicts to review; the
      page is written even when a service does not answer (exit status 1)
  demo load [--cdnow FILE|none] [--seed N] [--customers N]
                 [--customer-addr A] [--partner-addr A] [--community-addr A]
      loads a demo population into an empty platform (customers from the CDNOW log:
      FILE, else ../shared/data/cdnow/CDNOW_master.txt when it is there; generated
      with `--cdnow none` or without the log; partners with deals, orders and funds; a
      financial community with holdings, engagements and coverage), refreshes every
      counterpart's scores and prints the overview; refuses a platform holding data,
      and a token without the admin role (it decides the funds it requests itself)
  health [--service NAME] [--wait DURATION]
      prints the status (SERVING, NOT_SERVING); exit 0 when serving, 3 when it answers
      NOT_SERVING, 1 when nothing answers, 2 when the server knows no service NAME;
      sends no token (health needs none); NAME
      is an API's full name (rapport.partner.v1.PartnerService), asked at that service's
      address (--addr, else its RAPPORT_*_ADDR), or "liveness" (SERVING while the
      process serves at all, whatever its database: for liveness probes); default the
      customer server as a whole
  auth token --role reader|writer|admin --subject NAME [--ttl 1h] [--key FILE]
      mints a bearer token signed by FILE (default: $RAPPORT_SIGNING_KEY_FILE, else the
      local platform's key, under $RAPPORT_VAR or var/); prints it, for --token,
      $RAPPORT_TOKEN or other clients
  auth keygen --key FILE [--jwks FILE] [--subject S [--max-role R]]
      makes a signing key (mode 0600; kept when FILE exists) and adds its public key
      to the JWKS file that services verify tokens with; prints the key id. With
      --subject, the key signs tokens for that subject only, up to --max-role
      (default reader): a service's own key (--subject service:partner)
  audit list [--service customer|partner|community|financial-community] [--actor A] [--resource R]
             [--since RFC3339|DURATION] [--page-size N] [--page-token T] [--all]
      the changes made through a service (default customer), newest first (admins only)
  scoring rfm --transactions T.csv [--entities E.csv] [--interactions I.csv] [--as-of RFC3339]
              [--window-days N] [--bins K] [--out FILE]
      T.csv: entity_id,timestamp,amount  E.csv: entity_id  I.csv: entity_id,timestamp,cost
      (header rows required). Writes entity_id,recency_days,frequency,monetary,r,f,m,
      segment,value,cost_to_serve,profit,tier, one row per known entity, by entity_id bytes.
  scoring clv (--summary S.csv | --transactions T.csv --as-of RFC3339) [--unit day|week]
              [--holdout-periods N] [--predict-periods N] [--horizon-months 12]
              [--discount-monthly 0.01] [--out P.csv] [--model-out M.json]
      S.csv: entity_id,frequency,recency,T[,monetary_value]. Writes entity_id,frequency,
      recency,T,p_alive,expected_purchases,expected_avg_spend,clv; M.json: the fitted model.

Global flags:
  --addr HOST:PORT     the service (default: $RAPPORT_CUSTOMER_ADDR or localhost:50051
                       for customers and purchases, $RAPPORT_PARTNER_ADDR or
                       localhost:50052 for partners, $RAPPORT_COMMUNITY_ADDR or
                       localhost:50053 for community, $RAPPORT_SCORING_ADDR or
                       localhost:50054 for scoring; in a checkout running the
                       local platform, the address var/run/platform.env gives
                       before the localhost default); a comma-separated list
                       of addresses is balanced round-robin
  --output FORMAT      table (default), json or csv
  --timeout DURATION   deadline of each call (default 30s; imports and scoring
                       rfm|clv 1h; exports scores none; health 2s a probe,
                       see --wait; report gives its exports at least 10m)
  --tls-ca FILE, --tls-cert FILE, --tls-key FILE   TLS to the service
                       (also $RAPPORT_TLS_CA, $RAPPORT_TLS_CERT, $RAPPORT_TLS_KEY);
                       a token goes to another machine over TLS only
  --allow-plaintext    send the token without TLS to another machine all the same,
                       where the network encrypts by itself (also
                       $RAPPORT_ALLOW_PLAINTEXT=1, as the services take it)
  --token TOKEN        the bearer token every call carries (default: $RAPPORT_TOKEN,
                       else the contents of the file $RAPPORT_TOKEN_FILE, else
                       the local platform's var/auth/operator.token, which goes
                       to this machine's addresses only); an empty --token or
                       $RAPPORT_TOKEN is refused, never passed over

Exit status: 0 done, 1 the call failed (for an import: or rows were rejected; the
stored rows stay stored), 2 bad usage, 3 not serving.
)";

int Dispatch(Context& ctx, const std::string& command) {
  if (command == "audit") return RunAudit(ctx);
  if (command == "customers") return RunCustomers(ctx);
  if (command == "partners") return RunPartners(ctx);
  if (command == "community") return RunCommunity(ctx);
  if (command == "purchases") return RunPurchases(ctx);
  if (command == "health") return RunHealth(ctx);
  if (command == "scoring") return RunScoring(ctx);
  if (command == "overview") return RunOverview(ctx);
  if (command == "report") return RunReport(ctx);
  if (command == "demo") return RunDemo(ctx);
  return UsageError(absl::StrCat("unknown command \"", command, "\""), kUsage);
}

// True when `fd` is a pipe whose reader has gone.
bool IsClosedPipe(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return false;
  struct pollfd p = {fd, 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

// Output that did not reach its destination (a full disk, a file system
// gone) fails the command, though every call succeeded: a script reading it
// must not take a cut-off table for the whole. A closed pipe (`| head`)
// fails quietly, as the reader asked for no more.
int FlushOutput(int code) {
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int error = errno;
  if (flushed && std::cout.good() && !std::ferror(stdout)) return code;
  // A write that failed before this flush left no errno to read here; a
  // pipe closed early (SIGPIPE ignored) fails quietly all the same.
  if (error != EPIPE && !(error == 0 && IsClosedPipe(STDOUT_FILENO))) {
    std::cerr << "rapportctl: writing the output failed"
              << (error != 0 ? absl::StrCat(": ", std::strerror(error)) : "")
              << "\n";
  }
  return kExitFailed;
}

int Main(int argc, char** argv) {
  // gRPC's own log lines (a failed TLS handshake, say) are for a server's
  // log, not a command's output: what a call met comes back in its status,
  // which the command prints. GRPC_VERBOSITY set keeps them, for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function([](gpr_log_func_args*) {});
  }
  std::set<std::string> switches = {
      "all",     "force",           "help",
      "dry-run", "grant",           "withdraw",
      "no-wait", "with-clv",        "allow-missing",
      "decided", "allow-plaintext", "link"};
  absl::StatusOr<Args> args = Args::Parse(argc, argv, switches);
  if (!args.ok())
    return UsageError(std::string(args.status().message()), kUsage);
  // The flags that take several values; any other given twice over is a
  // mistake to say, not a choice to make.
  if (absl::Status s =
          args->CheckSingle({"attribute", "contact", "external-id", "member",
                             "peer", "tier-commission", "tier-margin"});
      !s.ok()) {
    return UsageError(std::string(s.message()), kUsage);
  }
  Context ctx{*std::move(args)};
  if (ctx.args.Has("help") || ctx.args.positional().empty() ||
      ctx.args.positional()[0] == "help") {
    // Asked for, the usage is the answer; for want of a command, an error.
    const bool asked = !ctx.args.positional().empty() || ctx.args.Has("help");
    (asked ? std::cout : std::cerr) << kUsage;
    return asked ? kExitOk : kExitUsage;
  }
  absl::StatusOr<Format> format =
      ParseFormat(ctx.args.GetOr("output", "table"));
  if (!format.ok())
    return UsageError(std::string(format.status().message()), kUsage);
  ctx.format = *format;
  if (std::optional<std::string> timeout = ctx.args.Get("timeout")) {
    // A week at most: "inf" or a deadline past the clock's range is no
    // deadline a call can be given.
    if (!absl::ParseDuration(*timeout, &ctx.timeout) ||
        ctx.timeout <= absl::ZeroDuration() ||
        ctx.timeout > absl::Hours(7 * 24)) {
      return UsageError(
          absl::StrCat("--timeout: want a duration such as 30s (at most "
                       "168h), not \"",
                       *timeout, "\""),
          kUsage);
    }
  }
  const std::string& command = ctx.args.positional()[0];
  int code = kExitOk;
  if (command == "auth") {
    code = RunAuth(ctx);
  } else if (absl::Status s = ctx.LoadToken(); !s.ok() && command != "health") {
    // (Health needs no token: a probe runs whatever the token settings.)
    return UsageError(std::string(s.message()), kUsage);
  } else {
    code = Dispatch(ctx, command);
  }
  // After the table, where it is seen last.
  if (!ctx.more_hint.empty()) std::cerr << ctx.more_hint;
  return FlushOutput(code);
}

}  // namespace
}  // namespace rapport::ctl

int main(int argc, char** argv) { return rapport::ctl::Main(argc, argv); }
