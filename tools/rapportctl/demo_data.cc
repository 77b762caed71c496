// The demo population (see demo_data.h). Every choice is drawn from a
// Random seeded by the seed and the part being made, so that the parts do
// not shift one another, and the draws use only + and * on doubles, so that
// they do not depend on a math library.
#include "tools/rapportctl/demo_data.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/base/timestamp.h"

namespace rapport::ctl::demo {
namespace {

namespace cv1 = ::rapport::common::v1;
namespace pv1 = ::rapport::partner::v1;
namespace fv1 = ::rapport::financial_community::v1;

constexpr int64_t kDay = kMicrosPerDay;

// The parts of the population, each drawn from a Random of its own.
enum Part : uint64_t { kCustomers = 1, kPartners = 2, kCommunity = 3 };

Random RandomFor(uint64_t seed, Part part) {
  return Random(seed * 0x9E3779B97F4A7C15ull + part * 0xD1B54A32D192ED03ull);
}

// ---- words ------------------------------------------------------------------

const std::vector<std::string>& FirstNames() {
  static const auto* const kNames = new std::vector<std::string>{
      "Ada",   "Alan",   "Amara",  "Ana",   "Arjun", "Beatriz", "Ben",
      "Chen",  "Chloe",  "Daniel", "Diego", "Elena", "Emma",    "Farah",
      "Felix", "Grace",  "Hana",   "Hugo",  "Ines",  "Ivan",    "Jamal",
      "Julia", "Kai",    "Kenji",  "Lara",  "Leo",   "Lina",    "Lucas",
      "Maya",  "Mateo",  "Mei",    "Nadia", "Noah",  "Olga",    "Omar",
      "Priya", "Rafael", "Rosa",   "Sami",  "Sofia", "Tariq",   "Tess",
      "Tomas", "Uma",    "Victor", "Wen",   "Yara",  "Zoe"};
  return *kNames;
}

const std::vector<std::string>& LastNames() {
  static const auto* const kNames = new std::vector<std::string>{
      "Abbott",   "Alvarez",  "Baker",  "Bauer",   "Becker",  "Brennan",
      "Castro",   "Costa",    "Dubois", "Eriksen", "Fischer", "Garcia",
      "Gupta",    "Hansen",   "Haddad", "Ito",     "Jensen",  "Kaplan",
      "Kim",      "Kowalski", "Larsen", "Lopez",   "Moreau",  "Murphy",
      "Nakamura", "Nguyen",   "Novak",  "Okafor",  "Olsen",   "Park",
      "Patel",    "Petrov",   "Quinn",  "Rossi",   "Santos",  "Schmidt",
      "Silva",    "Singh",    "Sato",   "Tanaka",  "Torres",  "Varga",
      "Walsh",    "Weber",    "Wong",   "Yilmaz",  "Zhang",   "Lindqvist"};
  return *kNames;
}

// The first word of firms' names: partners, funds, banks.
const std::vector<std::string>& FirmWords() {
  static const auto* const kWords = new std::vector<std::string>{
      "Alder",       "Apex",      "Atlas",      "Beacon",    "Birch",
      "Blue Harbor", "Cedar",     "Cobalt",     "Crescent",  "Delta",
      "Ember",       "Evergreen", "Falcon",     "Granite",   "Harbor",
      "Horizon",     "Iron Gate", "Juniper",    "Keystone",  "Lakeshore",
      "Lumen",       "Maple",     "Meridian",   "Northwind", "Oakridge",
      "Orion",       "Pinnacle",  "Quarry",     "Redwood",   "Riverbend",
      "Sable",       "Sierra",    "Silverline", "Summit",    "Tidewater",
      "Trillium",    "Vantage",   "Westbrook",  "Willow",    "Zephyr"};
  return *kWords;
}

// End accounts of deals: a first and a second word.
const std::vector<std::string>& AccountWords() {
  static const auto* const kWords = new std::vector<std::string>{
      "Acorn",  "Amber", "Arrow",   "Aspen",  "Bayview", "Bright",
      "Canyon", "Clear", "Coral",   "Crown",  "Eagle",   "Elm",
      "Fern",   "Forge", "Glacier", "Golden", "Hawk",    "Hill",
      "Ivy",    "Jade",  "Lark",    "Lotus",  "Mesa",    "Moss",
      "Opal",   "Pine",  "Prairie", "Raven",  "Stone",   "Sun"};
  return *kWords;
}
const std::vector<std::string>& AccountTrades() {
  static const auto* const kWords = new std::vector<std::string>{
      "Bank",    "Bakery",   "Clinic",    "Foods",     "Freight",
      "Health",  "Hotels",   "Insurance", "Labs",      "Motors",
      "Pharma",  "Retail",   "Robotics",  "Software",  "Steel",
      "Telecom", "Textiles", "Travel",    "Utilities", "Ventures"};
  return *kWords;
}

// "blueharbor" for "Blue Harbor & Co.": letters and digits, lower case.
std::string Slug(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

struct PersonName {
  std::string first;
  std::string last;
  std::string Full() const { return absl::StrCat(first, " ", last); }
  // "ada.lovelace.tag@domain"; no ".tag" when `tag` is empty.
  std::string Email(absl::string_view tag, absl::string_view domain) const {
    return absl::StrCat(absl::AsciiStrToLower(first), ".",
                        absl::AsciiStrToLower(last), tag.empty() ? "" : ".",
                        tag, "@", domain);
  }
};

PersonName PickPerson(Random& random) {
  std::string first = random.Pick(FirstNames());
  return PersonName{std::move(first), random.Pick(LastNames())};
}

// A name from `make` that `taken` does not hold yet (then holds).
template <typename Make>
std::string Unique(std::set<std::string>& taken, Make make) {
  for (;;) {
    std::string name = make();
    if (taken.insert(name).second) return name;
  }
}

cv1::Contact MakeContact(const PersonName& person, absl::string_view domain,
                         absl::string_view role) {
  cv1::Contact contact;
  contact.set_name(person.Full());
  contact.set_email(person.Email("", domain));
  contact.set_role(std::string(role));
  return contact;
}

// ---- text of the files ------------------------------------------------------

std::string MoneyText(int64_t cents) {
  return Decimal::FromCents(cents).ToString();
}

// Hundredths scaled by `factor` (a few percent either way, say), rounded.
int64_t Scale(int64_t cents, double factor) {
  return static_cast<int64_t>(static_cast<double>(cents) * factor + 0.5);
}

std::string TimeText(int64_t us) { return FormatRfc3339Micros(us); }

absl::CivilDay DayOf(int64_t us) {
  return absl::ToCivilDay(absl::FromUnixMicros(us), absl::UTCTimeZone());
}

int64_t MicrosOf(absl::CivilDay day) {
  return absl::ToUnixMicros(absl::FromCivil(day, absl::UTCTimeZone()));
}

std::string DateText(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

std::string Ref(absl::string_view id) {
  return absl::StrCat("ext:", kDemoSource, ":", id);
}

// A moment in [from, to), to the minute.
int64_t MomentBetween(Random& random, int64_t from, int64_t to) {
  constexpr int64_t kMinute = 60 * kMicrosPerSecond;
  const int64_t t = from + random.Below(std::max<int64_t>(1, to - from));
  return t - t % kMinute;
}

// A moment of the working day (09:00 to 18:00 UTC) of `day`.
int64_t WorkingMoment(Random& random, absl::CivilDay day) {
  return MicrosOf(day) +
         random.Between(9 * 60, 18 * 60 - 1) * 60 * kMicrosPerSecond;
}

Customer MakeCustomer(Random& random, absl::string_view source,
                      absl::string_view id, absl::string_view tag,
                      absl::string_view domain) {
  const PersonName person = PickPerson(random);
  return Customer{std::string(source), std::string(id), person.Full(),
                  person.Email(tag, domain)};
}

std::string CustomerRef(const Customer& c) {
  return absl::StrCat("ext:", c.external_source, ":", c.external_id);
}

// What it cost to keep each customer, from the times of its purchases
// (oldest first): a welcome email after the first, a catalog by mail every
// quarter while it keeps buying (from its third purchase), a service call
// for the frequent buyers, and a win-back offer to those who lapsed.
CsvRows Contacts(const std::vector<Customer>& customers,
                 const std::vector<std::vector<int64_t>>& times,
                 int64_t as_of_us) {
  CsvRows out;
  out.header = {"customer_ref", "timestamp", "channel", "cost", "kind"};
  // At 10:00 UTC, `days` after `t`, if that is before as_of.
  auto add = [&](const std::string& ref, int64_t t, int64_t days,
                 const char* channel, const char* cost, const char* kind) {
    const int64_t when =
        t - t % kDay + days * kDay + 10 * 3600 * kMicrosPerSecond;
    if (when < as_of_us) {
      out.rows.push_back({ref, TimeText(when), channel, cost, kind});
    }
  };
  for (size_t i = 0; i < customers.size(); ++i) {
    const std::vector<int64_t>& t = times[i];
    if (t.empty()) continue;
    const std::string ref = CustomerRef(customers[i]);
    add(ref, t.front(), 1, "email", "0.10", "welcome");
    if (t.size() >= 3) {
      for (int64_t at = t[2]; at <= t.back(); at += 91 * kDay) {
        add(ref, at, 7, "mail", "1.50", "catalog");
      }
    }
    if (t.size() >= 10) {
      add(ref, t[t.size() / 2], 2, "phone", "6.00", "service call");
    }
    if (t.size() >= 2 && as_of_us - t.back() > 180 * kDay) {
      add(ref, t.back(), 120, "mail", "2.00", "win-back offer");
    }
  }
  return out;
}

}  // namespace

// ---- Random -----------------------------------------------------------------

uint64_t Random::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t Random::Below(int64_t n) {
  return static_cast<int64_t>(Next() % static_cast<uint64_t>(n));
}

int64_t Random::Between(int64_t lo, int64_t hi) {
  return lo + Below(hi - lo + 1);
}

double Random::Fraction() {
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

// ---- customers --------------------------------------------------------------

std::optional<std::string> FindCdnowLog(
    const std::vector<std::filesystem::path>& dirs) {
  const std::filesystem::path log = std::filesystem::path("..") / "shared" /
                                    "data" / "cdnow" / "CDNOW_master.txt";
  for (const std::filesystem::path& start : dirs) {
    // The checkout that holds `start`: the nearest directory with
    // deploy/local/run in it.
    for (std::filesystem::path dir = start; !dir.empty();
         dir = dir.parent_path()) {
      std::error_code error;
      if (std::filesystem::is_regular_file(dir / "deploy" / "local" / "run",
                                           error)) {
        const std::filesystem::path candidate = (dir / log).lexically_normal();
        if (std::filesystem::is_regular_file(candidate, error))
          return candidate.string();
        break;
      }
      if (dir == dir.root_path()) break;
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<CdnowPurchase>> ParseCdnow(absl::string_view text,
                                                      absl::string_view name) {
  std::vector<CdnowPurchase> out;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (line_number == 1 && !absl::ascii_isdigit(fields[0][0])) continue;
    auto bad = [&](absl::string_view column, absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_number, ": ", column,
                       column.empty() ? "" : ": ", what));
    };
    if (fields.size() != 4) {
      return bad("", absl::StrCat("want 4 fields (customer_id date "
                                  "number_of_cds dollar_value), not ",
                                  fields.size()));
    }
    CdnowPurchase p;
    p.customer_id = std::string(fields[0]);
    if (p.customer_id.size() > 16 ||
        !std::all_of(p.customer_id.begin(), p.customer_id.end(),
                     [](char c) { return absl::ascii_isdigit(c); })) {
      return bad("customer_id",
                 absl::StrCat("want digits, not \"", fields[0], "\""));
    }
    int year = 0, month = 0, day = 0;
    const absl::string_view date = fields[1];
    const bool digits = date.size() == 8 &&
                        absl::SimpleAtoi(date.substr(0, 4), &year) &&
                        absl::SimpleAtoi(date.substr(4, 2), &month) &&
                        absl::SimpleAtoi(date.substr(6, 2), &day);
    // CivilDay normalises out-of-range fields: 19970230 becomes March 2nd.
    const absl::CivilDay civil(year, month, day);
    if (!digits || civil.year() != year || civil.month() != month ||
        civil.day() != day) {
      return bad("date", absl::StrCat("want YYYYMMDD, not \"", date, "\""));
    }
    p.day_us = MicrosOf(civil);
    if (!absl::SimpleAtoi(fields[2], &p.cds) || p.cds < 0) {
      return bad("number_of_cds",
                 absl::StrCat("want a whole number, not \"", fields[2], "\""));
    }
    absl::StatusOr<Decimal> amount = Decimal::Parse(fields[3]);
    if (!amount.ok()) return bad("dollar_value", amount.status().message());
    if (*amount < Decimal()) {
      return bad("dollar_value",
                 absl::StrCat("must not be negative, not ", fields[3]));
    }
    p.amount = *amount;
    out.push_back(std::move(p));
  }
  return out;
}

CustomerPopulation CustomersFromCdnow(const std::vector<CdnowPurchase>& log,
                                      uint64_t seed, size_t max_customers) {
  Random random = RandomFor(seed, kCustomers);
  CustomerPopulation out;
  out.purchases.header = {"customer_ref", "timestamp", "amount"};
  // Customer id -> its index in out.customers; -1: beyond max_customers.
  absl::flat_hash_map<std::string, int64_t> index;
  std::vector<std::vector<int64_t>> times;
  int64_t last_us = 0;
  for (const CdnowPurchase& p : log) {
    auto [it, first] = index.try_emplace(p.customer_id, -1);
    if (first && (max_customers == 0 || out.customers.size() < max_customers)) {
      it->second = static_cast<int64_t>(out.customers.size());
      out.customers.push_back(MakeCustomer(random, kCdnowSource, p.customer_id,
                                           p.customer_id, "example.com"));
      times.emplace_back();
    }
    if (it->second < 0) continue;
    out.purchases.rows.push_back(
        {CustomerRef(out.customers[static_cast<size_t>(it->second)]),
         TimeText(p.day_us), p.amount.ToString()});
    times[static_cast<size_t>(it->second)].push_back(p.day_us);
    last_us = std::max(last_us, p.day_us);
  }
  out.as_of_us = last_us + kDay;
  out.interactions = Contacts(out.customers, times, out.as_of_us);
  return out;
}

CustomerPopulation GenerateCustomers(uint64_t seed, int count, int64_t now_us) {
  Random random = RandomFor(seed, kCustomers);
  CustomerPopulation out;
  out.purchases.header = {"customer_ref", "timestamp", "amount"};
  out.as_of_us = now_us;
  const int64_t start = now_us - 730 * kDay;
  std::vector<std::vector<int64_t>> all_times;
  for (int i = 1; i <= count; ++i) {
    const std::string number = absl::StrFormat("%05d", i);
    const std::string id = absl::StrCat("C-", number);
    out.customers.push_back(
        MakeCustomer(random, kDemoSource, id, number, "example.org"));
    // How often: 45% once, 40% two to five times, 15% six to fifty times
    // (most of them nearer six).
    const double often = random.Fraction();
    const double heavy = random.Fraction();
    const int purchases = often < 0.45 ? 1
                          : often < 0.85
                              ? static_cast<int>(random.Between(2, 5))
                              : 6 + static_cast<int>(44 * heavy * heavy);
    // How much: a usual basket of 10 to 300, most near the bottom.
    const double size = random.Fraction();
    const int64_t basket = 1000 + static_cast<int64_t>(29000 * size * size);
    // When: the first anywhere in the two years, the others after it until
    // the customer lapses (40% do) or today.
    const int64_t first = MomentBetween(random, start, now_us - kDay);
    const int64_t end =
        random.Chance(0.4)
            ? std::min(now_us - 1, first + random.Between(30, 365) * kDay)
            : now_us - 1;
    std::vector<int64_t> times = {first};
    for (int k = 1; k < purchases; ++k) {
      times.push_back(MomentBetween(random, first, end));
    }
    std::sort(times.begin(), times.end());
    for (int64_t t : times) {
      const int64_t cents =
          std::max<int64_t>(100, Scale(basket, 0.5 + random.Fraction()));
      out.purchases.rows.push_back(
          {CustomerRef(out.customers.back()), TimeText(t), MoneyText(cents)});
    }
    all_times.push_back(std::move(times));
  }
  out.interactions = Contacts(out.customers, all_times, now_us);
  return out;
}

// ---- partners ---------------------------------------------------------------

namespace {

struct KindWords {
  pv1::PartnerKind kind;
  int weight;
  std::vector<std::string> suffixes;
  const char* role;
};

const std::vector<KindWords>& PartnerKinds() {
  static const auto* const kKinds = new std::vector<KindWords>{
      {pv1::PARTNER_KIND_CHANNEL,
       40,
       {"Solutions", "Systems", "Technologies", "IT Services"},
       "channel manager"},
      {pv1::PARTNER_KIND_DISTRIBUTOR,
       25,
       {"Distribution", "Wholesale", "Logistics", "Trading"},
       "account manager"},
      {pv1::PARTNER_KIND_AGENCY,
       15,
       {"Media", "Marketing", "Creative", "Digital"},
       "account director"},
      {pv1::PARTNER_KIND_SUPPLIER,
       10,
       {"Components", "Manufacturing", "Materials", "Supply"},
       "key account manager"},
      {pv1::PARTNER_KIND_INTERMEDIARY,
       10,
       {"Brokers", "Partners", "Advisory", "Associates"},
       "partner manager"},
  };
  return *kKinds;
}

// The index of a choice drawn by weight.
template <typename T, typename Weight>
size_t PickWeighted(Random& random, const std::vector<T>& choices,
                    Weight weight) {
  int64_t total = 0;
  for (const T& c : choices) total += weight(c);
  int64_t x = random.Below(total);
  for (size_t i = 0; i < choices.size(); ++i) {
    x -= weight(choices[i]);
    if (x < 0) return i;
  }
  return choices.size() - 1;
}

template <typename T>
void Shuffle(Random& random, std::vector<T>& v) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1],
              v[static_cast<size_t>(random.Below(static_cast<int64_t>(i)))]);
  }
}

struct Account {
  std::string name;
  std::string domain;
};

struct DealDraft {
  size_t partner;
  std::string deal_id;
  Account account;
  int64_t amount_cents;
  int64_t registered_us;
  std::string state;
  int64_t closed_us = 0;  // 0: none
};

bool IsOpen(const std::string& state) {
  return state == "submitted" || state == "approved";
}

// The span of a partner's activity: the whole 18 months for an active one,
// its first months for one that is suspended or ended, the last three for
// one onboarding.
std::pair<int64_t, int64_t> ActiveSpan(pv1::Lifecycle lifecycle,
                                       int64_t now_us) {
  const int64_t start = now_us - 540 * kDay;
  switch (lifecycle) {
    case pv1::LIFECYCLE_ONBOARDING:
      return {now_us - 90 * kDay, now_us - kDay};
    case pv1::LIFECYCLE_SUSPENDED:
    case pv1::LIFECYCLE_ENDED:
      return {start, now_us - 270 * kDay};
    default:
      return {start, now_us - kDay};
  }
}

// The state a deal registered `age_days` ago has reached, for a partner
// that wins deals with `skill` (0 to 1).
std::string DealState(Random& random, int64_t age_days, double skill) {
  const double x = random.Fraction();
  if (age_days >= 120) {
    if (x < 0.2 + 0.5 * skill) return "won";
    const double y = random.Fraction();
    return y < 0.65 ? "lost" : y < 0.85 ? "expired" : "rejected";
  }
  if (age_days >= 45) {
    if (x < 0.1 + 0.3 * skill) return "won";
    if (x < 0.55) return "approved";
    if (x < 0.7) return "lost";
    return "submitted";
  }
  if (x < 0.55) return "submitted";
  if (x < 0.85) return "approved";
  return x < 0.95 ? "won" : "lost";
}

}  // namespace

PartnerPopulation GeneratePartners(uint64_t seed, int64_t now_us) {
  Random random = RandomFor(seed, kPartners);
  PartnerPopulation out;
  out.as_of_us = now_us;
  constexpr int kPartnerCount = 150;

  // Partners: most active, some still prospects or onboarding, a few
  // suspended or ended.
  std::vector<pv1::Lifecycle> lifecycles(kPartnerCount, pv1::LIFECYCLE_ACTIVE);
  {
    size_t i = 0;
    for (auto [lifecycle, n] : {std::pair{pv1::LIFECYCLE_PROSPECT, 8},
                                std::pair{pv1::LIFECYCLE_ONBOARDING, 10},
                                std::pair{pv1::LIFECYCLE_SUSPENDED, 6},
                                std::pair{pv1::LIFECYCLE_ENDED, 4}}) {
      for (int k = 0; k < n; ++k) lifecycles[i++] = lifecycle;
    }
    Shuffle(random, lifecycles);
  }
  const std::vector<std::pair<std::string, int>> regions = {
      {"NA", 40}, {"EMEA", 35}, {"APAC", 15}, {"LATAM", 10}};
  std::set<std::string> names;
  std::vector<double> skill;
  for (int i = 0; i < kPartnerCount; ++i) {
    const KindWords& kind = PartnerKinds()[PickWeighted(
        random, PartnerKinds(), [](const KindWords& k) { return k.weight; })];
    const std::string name = Unique(names, [&] {
      return absl::StrCat(random.Pick(FirmWords()), " ",
                          random.Pick(kind.suffixes));
    });
    Partner p;
    p.external_id = absl::StrFormat("P-%03d", i + 1);
    p.display_name = name;
    p.kind = kind.kind;
    p.lifecycle = lifecycles[static_cast<size_t>(i)];
    p.region = regions[PickWeighted(random, regions, [](const auto& r) {
                 return r.second;
               })].first;
    p.contact = MakeContact(PickPerson(random),
                            absl::StrCat(Slug(name), ".example"), kind.role);
    out.partners.push_back(std::move(p));
    skill.push_back(random.Fraction());
  }

  // Programs, and each partner past prospect in one of them.
  out.programs = {
      Program{"Reseller Program",
              {{cv1::TIER_UNSPECIFIED, "10"},
               {cv1::TIER_GOLD, "12.5"},
               {cv1::TIER_PLATINUM, "15"}}},
      Program{"Referral Program",
              {{cv1::TIER_UNSPECIFIED, "5"}, {cv1::TIER_PLATINUM, "7.5"}}},
  };
  for (size_t i = 0; i < out.partners.size(); ++i) {
    const Partner& p = out.partners[i];
    if (p.lifecycle == pv1::LIFECYCLE_PROSPECT) continue;
    const bool resells = p.kind == pv1::PARTNER_KIND_CHANNEL ||
                         p.kind == pv1::PARTNER_KIND_DISTRIBUTOR ||
                         p.kind == pv1::PARTNER_KIND_INTERMEDIARY;
    Agreement a;
    a.partner = i;
    a.program = resells ? 0 : 1;
    a.start_us =
        ActiveSpan(p.lifecycle, now_us).first - random.Between(10, 120) * kDay;
    a.state =
        p.lifecycle == pv1::LIFECYCLE_ONBOARDING ? pv1::AGREEMENT_STATE_DRAFT
        : p.lifecycle == pv1::LIFECYCLE_ENDED ? pv1::AGREEMENT_STATE_TERMINATED
                                              : pv1::AGREEMENT_STATE_ACTIVE;
    out.agreements.push_back(a);
  }

  // Deals. An open deal gets an account of its own, so that the only
  // conflicts are those made on purpose below.
  std::vector<Account> accounts;
  for (const std::string& a : AccountWords()) {
    for (const std::string& b : AccountTrades()) {
      const std::string name = absl::StrCat(a, " ", b);
      accounts.push_back({name, absl::StrCat(Slug(name), ".example")});
    }
  }
  Shuffle(random, accounts);
  size_t next_free_account = 0;
  std::vector<DealDraft> deals;
  std::vector<int> deal_count(out.partners.size(), 0);
  auto deal_id = [&](size_t partner) {
    return absl::StrFormat("%s-D%03d", out.partners[partner].external_id,
                           ++deal_count[partner]);
  };
  for (size_t i = 0; i < out.partners.size(); ++i) {
    const Partner& p = out.partners[i];
    if (p.lifecycle == pv1::LIFECYCLE_PROSPECT) continue;
    const double volume = random.Fraction();
    const int n = p.lifecycle == pv1::LIFECYCLE_ONBOARDING
                      ? static_cast<int>(random.Between(1, 3))
                  : p.lifecycle == pv1::LIFECYCLE_ACTIVE
                      ? 1 + static_cast<int>(25 * volume * volume)
                      : 1 + static_cast<int>(10 * volume * volume);
    const auto [from, to] = ActiveSpan(p.lifecycle, now_us);
    for (int k = 0; k < n; ++k) {
      DealDraft d;
      d.partner = i;
      d.registered_us = MomentBetween(random, from, to);
      const int64_t age_days = (now_us - d.registered_us) / kDay;
      d.state = DealState(random, age_days, skill[i]);
      if ((d.state == "won" || d.state == "lost") && age_days < 8) {
        d.state = "submitted";
      }
      if (IsOpen(d.state)) {
        if (next_free_account < accounts.size()) {
          d.account = accounts[next_free_account++];
        } else {
          d.state = "expired";
        }
      }
      if (!IsOpen(d.state)) d.account = random.Pick(accounts);
      if (d.state == "won" || d.state == "lost") {
        d.closed_us =
            d.registered_us +
            random.Between(7, std::min<int64_t>(age_days - 1, 150)) * kDay;
      }
      const double size = random.Fraction();
      d.amount_cents = (50 + static_cast<int64_t>(1450 * size * size)) * 10000;
      d.deal_id = deal_id(i);
      deals.push_back(std::move(d));
    }
  }
  // Conflicts: another active partner registers the account of a recent
  // open deal a few days to six weeks later.
  std::vector<size_t> active;
  for (size_t i = 0; i < out.partners.size(); ++i) {
    if (out.partners[i].lifecycle == pv1::LIFECYCLE_ACTIVE) active.push_back(i);
  }
  std::set<size_t> claimed_partners;
  const size_t drafted = deals.size();
  for (size_t k = 0; k < drafted && out.conflicts < 6; ++k) {
    const DealDraft first = deals[k];
    const int64_t age_days = (now_us - first.registered_us) / kDay;
    if (!IsOpen(first.state) || age_days < 10 || age_days > 80 ||
        !claimed_partners.insert(first.partner).second) {
      continue;
    }
    size_t rival = first.partner;
    while (rival == first.partner) rival = random.Pick(active);
    DealDraft second;
    second.partner = rival;
    second.account = first.account;
    second.registered_us =
        first.registered_us +
        random.Between(2, std::min<int64_t>(40, age_days - 1)) * kDay;
    second.state = "submitted";
    second.amount_cents =
        Scale(first.amount_cents, 0.8 + 0.4 * random.Fraction()) / 100 * 100;
    second.deal_id = deal_id(rival);
    deals.push_back(std::move(second));
    ++out.conflicts;
  }
  std::sort(deals.begin(), deals.end(),
            [](const DealDraft& a, const DealDraft& b) {
              return std::tie(a.registered_us, a.deal_id) <
                     std::tie(b.registered_us, b.deal_id);
            });
  out.deals.header = {"partner_ref", "deal_id",       "account",
                      "amount",      "registered_at", "state",
                      "closed_at",   "account_domain"};
  for (const DealDraft& d : deals) {
    out.deals.rows.push_back(
        {Ref(out.partners[d.partner].external_id), d.deal_id, d.account.name,
         MoneyText(d.amount_cents), TimeText(d.registered_us), d.state,
         d.closed_us == 0 ? "" : TimeText(d.closed_us), d.account.domain});
  }

  // Orders, from the partners that buy to resell.
  out.orders.header = {"partner_ref", "timestamp", "amount"};
  for (const Partner& p : out.partners) {
    const bool buys = p.kind == pv1::PARTNER_KIND_DISTRIBUTOR ||
                      p.kind == pv1::PARTNER_KIND_CHANNEL ||
                      p.kind == pv1::PARTNER_KIND_INTERMEDIARY;
    if (!buys || p.lifecycle == pv1::LIFECYCLE_PROSPECT) continue;
    const double volume = random.Fraction();
    const int n = static_cast<int>(30 * volume * volume);
    const auto [from, to] = ActiveSpan(p.lifecycle, now_us);
    std::vector<int64_t> times;
    for (int k = 0; k < n; ++k) {
      times.push_back(MomentBetween(random, from, to));
    }
    std::sort(times.begin(), times.end());
    const int64_t usual = 50000 + static_cast<int64_t>(2000000 * volume);
    for (int64_t t : times) {
      out.orders.rows.push_back(
          {Ref(p.external_id), TimeText(t),
           MoneyText(Scale(usual, 0.5 + random.Fraction()))});
    }
  }

  // Interactions: what it costs to keep each partner going.
  struct Touchpoint {
    const char* kind;
    const char* channel;
    int64_t min_cents;
    int64_t max_cents;
  };
  const std::vector<Touchpoint> touchpoints = {
      {"business review", "visit", 40000, 150000},
      {"training", "event", 20000, 80000},
      {"pipeline call", "phone", 2000, 8000},
      {"newsletter", "email", 0, 500},
      {"joint webinar", "web", 30000, 120000},
  };
  out.interactions.header = {"partner_ref", "timestamp", "channel",
                             "cost",        "kind",      "note"};
  for (const Partner& p : out.partners) {
    if (p.lifecycle == pv1::LIFECYCLE_PROSPECT) continue;
    const auto [from, to] = ActiveSpan(p.lifecycle, now_us);
    const int n = static_cast<int>(random.Between(2, 8));
    for (int k = 0; k < n; ++k) {
      const Touchpoint& c = random.Pick(touchpoints);
      out.interactions.rows.push_back(
          {Ref(p.external_id), TimeText(MomentBetween(random, from, to)),
           c.channel, MoneyText(random.Between(c.min_cents, c.max_cents)),
           c.kind, ""});
    }
  }

  // Funds for the 20 active partners with the most deals: most paid, two
  // rejected, one claim rejected, two approved and not claimed yet.
  std::vector<size_t> busiest = active;
  std::stable_sort(busiest.begin(), busiest.end(), [&](size_t a, size_t b) {
    return deal_count[a] > deal_count[b];
  });
  busiest.resize(std::min<size_t>(20, busiest.size()));
  std::vector<pv1::FundRequestState> fates(busiest.size(),
                                           pv1::FUND_REQUEST_STATE_PAID);
  for (size_t k = 0; k < fates.size() && k < 5; ++k) {
    fates[k] = k < 2   ? pv1::FUND_REQUEST_STATE_REJECTED
               : k < 3 ? pv1::FUND_REQUEST_STATE_CLAIM_REJECTED
                       : pv1::FUND_REQUEST_STATE_APPROVED;
  }
  Shuffle(random, fates);
  const std::vector<std::string> activities = {"Webinar series",
                                               "Trade show booth",
                                               "Co-branded email campaign",
                                               "Regional roadshow",
                                               "Partner summit sponsorship",
                                               "Search advertising",
                                               "Customer event",
                                               "Product training days"};
  for (size_t k = 0; k < busiest.size(); ++k) {
    Fund f;
    f.partner = busiest[k];
    f.activity = random.Pick(activities);
    f.state = fates[k];
    const int64_t requested_cents = random.Between(20, 250) * 10000;
    f.requested = Decimal::FromCents(requested_cents);
    f.claimed = Decimal::FromCents(
        Scale(requested_cents, 0.7 + 0.3 * random.Fraction()));
    f.claim_us = MomentBetween(random, now_us - 330 * kDay, now_us - 30 * kDay);
    f.paid_us = f.claim_us + random.Between(5, 25) * kDay;
    out.funds.push_back(std::move(f));
  }
  return out;
}

// ---- financial community ----------------------------------------------------

namespace {

// How a holder's position moves from quarter to quarter.
enum class Trend { kGrowing, kShrinking, kExited, kStable, kNew };

Trend PickTrend(Random& random) {
  const int64_t x = random.Below(100);
  return x < 25   ? Trend::kGrowing
         : x < 50 ? Trend::kShrinking
         : x < 65 ? Trend::kExited
         : x < 90 ? Trend::kStable
                  : Trend::kNew;
}

// The last `n` quarter ends before the day of `now_us`, oldest first.
std::vector<absl::CivilDay> QuarterEnds(int64_t now_us, int n) {
  const absl::CivilDay today = DayOf(now_us);
  const absl::CivilMonth quarter_start(today.year(),
                                       (today.month() - 1) / 3 * 3 + 1);
  std::vector<absl::CivilDay> out;
  for (int k = n; k >= 1; --k) {
    out.push_back(absl::CivilDay(quarter_start - 3 * (k - 1)) - 1);
  }
  return out;
}

struct Rating {
  const char* buy;
  const char* hold;
  const char* sell;
};

}  // namespace

CommunityPopulation GenerateCommunity(uint64_t seed, int64_t now_us) {
  Random random = RandomFor(seed, kCommunity);
  CommunityPopulation out;
  out.as_of_us = now_us;
  out.our_security = "RAPP";
  out.peers = {"KNDL", "LYLT"};
  const std::vector<std::string> securities = {"RAPP", "KNDL", "LYLT"};
  constexpr int kQuarters = 8;
  const std::vector<absl::CivilDay> quarters = QuarterEnds(now_us, kQuarters);

  // Each security's price at each quarter end: a walk, ours drifting up.
  std::vector<std::vector<int64_t>> price(securities.size());
  const std::vector<int64_t> first_price = {4200, 5500, 3100};
  for (size_t s = 0; s < securities.size(); ++s) {
    int64_t p = first_price[s];
    for (int q = 0; q < kQuarters; ++q) {
      price[s].push_back(p);
      p = Scale(p, (s == 0 ? 0.92 : 0.88) + 0.24 * random.Fraction());
    }
  }

  // Members: funds and people who hold (shareholders), who might (investors)
  // and who write about us (analysts).
  std::set<std::string> names;
  const std::vector<std::string> fund_suffixes = {
      "Capital",  "Asset Management", "Investors",
      "Advisors", "Fund Management",  "Investment Partners"};
  const std::vector<std::string> bank_suffixes = {
      "Securities", "Capital Markets", "Equity Research", "& Co."};
  auto firm = [&](const std::vector<std::string>& suffixes) {
    return Unique(names, [&] {
      return absl::StrCat(random.Pick(FirmWords()), " ", random.Pick(suffixes));
    });
  };
  std::vector<std::string> banks;
  for (int k = 0; k < 12; ++k) banks.push_back(firm(bank_suffixes));
  auto person = [&] {
    PersonName p;
    Unique(names, [&] {
      p = PickPerson(random);
      return p.Full();
    });
    return p;
  };
  struct Shape {
    fv1::MemberKind kind;
    fv1::MemberType type;
    int count;
  };
  for (const Shape& shape :
       {Shape{fv1::MEMBER_KIND_SHAREHOLDER, fv1::MEMBER_TYPE_INSTITUTIONAL, 24},
        Shape{fv1::MEMBER_KIND_SHAREHOLDER, fv1::MEMBER_TYPE_RETAIL, 10},
        Shape{fv1::MEMBER_KIND_SHAREHOLDER, fv1::MEMBER_TYPE_HIGH_NET_WORTH, 6},
        Shape{fv1::MEMBER_KIND_INVESTOR, fv1::MEMBER_TYPE_INSTITUTIONAL, 30},
        Shape{fv1::MEMBER_KIND_INVESTOR, fv1::MEMBER_TYPE_BUY_SIDE, 25},
        Shape{fv1::MEMBER_KIND_ANALYST, fv1::MEMBER_TYPE_SELL_SIDE, 25}}) {
    for (int k = 0; k < shape.count; ++k) {
      Member m;
      m.external_id = absl::StrFormat("M-%03d", out.members.size() + 1);
      m.kind = shape.kind;
      m.type = shape.type;
      const PersonName contact = person();
      switch (shape.type) {
        case fv1::MEMBER_TYPE_INSTITUTIONAL:
          m.display_name = m.organisation = firm(fund_suffixes);
          m.contact = MakeContact(
              contact, absl::StrCat(Slug(m.organisation), ".example"),
              "portfolio manager");
          break;
        case fv1::MEMBER_TYPE_RETAIL:
          m.display_name = contact.Full();
          m.contact = MakeContact(contact, "example.net", "");
          break;
        case fv1::MEMBER_TYPE_HIGH_NET_WORTH:
          m.display_name = contact.Full();
          m.organisation = absl::StrCat(contact.last, " Family Office");
          m.contact = MakeContact(contact, "example.net", "");
          break;
        case fv1::MEMBER_TYPE_BUY_SIDE:
          m.display_name = contact.Full();
          m.organisation = firm(fund_suffixes);
          m.contact = MakeContact(
              contact, absl::StrCat(Slug(m.organisation), ".example"),
              "portfolio manager");
          break;
        default:  // sell-side analysts
          m.display_name = contact.Full();
          m.organisation = random.Pick(banks);
          m.contact = MakeContact(
              contact, absl::StrCat(Slug(m.organisation), ".example"),
              "equity analyst");
          break;
      }
      out.members.push_back(std::move(m));
    }
  }

  // Holdings at each quarter end. Every shareholder holds ours; investors
  // hold ours, ours and a peer, or only peers (whom to win over).
  out.holdings.header = {"member_ref", "security", "date", "shares", "price"};
  for (size_t i = 0; i < out.members.size(); ++i) {
    const Member& m = out.members[i];
    if (m.kind == fv1::MEMBER_KIND_ANALYST) continue;
    std::vector<size_t> held;
    const int64_t x = random.Below(100);
    if (m.kind == fv1::MEMBER_KIND_SHAREHOLDER) {
      held.push_back(0);
      if (x < 30) held.push_back(static_cast<size_t>(random.Between(1, 2)));
    } else if (x < 35) {
      held.push_back(static_cast<size_t>(random.Between(1, 2)));
      if (random.Chance(0.4)) held.push_back(held[0] == 1 ? 2 : 1);
    } else {
      held.push_back(0);
      if (x >= 75) held.push_back(static_cast<size_t>(random.Between(1, 2)));
    }
    const double size = random.Fraction();
    const int64_t base =
        m.type == fv1::MEMBER_TYPE_RETAIL
            ? 100 + static_cast<int64_t>(4900 * size * size)
        : m.type == fv1::MEMBER_TYPE_HIGH_NET_WORTH
            ? 5000 + static_cast<int64_t>(95000 * size)
        : m.type == fv1::MEMBER_TYPE_BUY_SIDE
            ? 20000 + static_cast<int64_t>(500000 * size * size)
            : 50000 + static_cast<int64_t>(1950000 * size * size * size);
    for (size_t s : held) {
      const Trend trend = PickTrend(random);
      const int first =
          trend == Trend::kNew ? static_cast<int>(random.Between(2, 5)) : 0;
      const int exit = trend == Trend::kExited
                           ? static_cast<int>(random.Between(3, 7))
                           : kQuarters;
      double shares =
          static_cast<double>(base) * (0.6 + 0.8 * random.Fraction());
      for (int q = first; q < kQuarters && q <= exit; ++q) {
        const int64_t whole =
            q == exit ? 0 : std::max<int64_t>(1, static_cast<int64_t>(shares));
        out.holdings.rows.push_back(
            {Ref(m.external_id), securities[s],
             DateText(quarters[static_cast<size_t>(q)]), absl::StrCat(whole),
             MoneyText(price[s][static_cast<size_t>(q)])});
        const double step = random.Fraction();
        switch (trend) {
          case Trend::kGrowing:
          case Trend::kNew:
            shares *= 1.03 + 0.10 * step;
            break;
          case Trend::kShrinking:
            shares *= 0.80 + 0.17 * step;
            break;
          case Trend::kExited:
            shares *= 0.85 + 0.15 * step;
            break;
          case Trend::kStable:
            shares *= 0.98 + 0.04 * step;
            break;
        }
      }
    }
  }

  // Engagements over the two years.
  out.engagements.header = {"member_ref", "timestamp", "kind",      "cost",
                            "outcome",    "note",      "request_id"};
  const std::vector<std::string> outcomes = {
      "positive", "interested", "follow-up requested", "neutral", ""};
  // The analysts, and the funds and portfolio managers the company meets.
  std::vector<size_t> analysts, funds;
  for (size_t i = 0; i < out.members.size(); ++i) {
    const Member& m = out.members[i];
    if (m.kind == fv1::MEMBER_KIND_ANALYST) {
      analysts.push_back(i);
    } else if (m.type == fv1::MEMBER_TYPE_INSTITUTIONAL ||
               m.type == fv1::MEMBER_TYPE_BUY_SIDE) {
      funds.push_back(i);
    }
  }
  // One engagement with several members: one row each with its share of
  // the cost (the remainder to the first), under one request id prefix.
  auto group = [&](const std::string& key, std::vector<size_t> members,
                   int64_t when, const char* kind, int64_t cost_cents,
                   const std::string& outcome, const std::string& note) {
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());
    const int64_t n = static_cast<int64_t>(members.size());
    for (int64_t k = 0; k < n; ++k) {
      const Member& m = out.members[members[static_cast<size_t>(k)]];
      const int64_t share = cost_cents / n + (k == 0 ? cost_cents % n : 0);
      out.engagements.rows.push_back(
          {Ref(m.external_id), TimeText(when), kind, MoneyText(share), outcome,
           note, absl::StrCat("demo-", key, "/", m.external_id)});
    }
  };
  auto some = [&](const std::vector<size_t>& from, int64_t lo, int64_t hi) {
    std::vector<size_t> pool = from;
    Shuffle(random, pool);
    pool.resize(std::min<size_t>(pool.size(),
                                 static_cast<size_t>(random.Between(lo, hi))));
    return pool;
  };
  const int64_t two_years_ago = now_us - 730 * kDay;
  for (int q = 0; q < kQuarters; ++q) {
    const absl::CivilDay end = quarters[static_cast<size_t>(q)];
    const int64_t earnings = MicrosOf(end + 28) + 14 * 3600 * kMicrosPerSecond;
    if (earnings < now_us) {
      std::vector<size_t> attendees = analysts;
      for (size_t i : some(funds, 8, 14)) attendees.push_back(i);
      group(absl::StrCat("earnings-", DateText(end)), attendees, earnings,
            "earnings_call", 240000, "",
            absl::StrCat("results of the quarter to ", DateText(end)));
    }
    const int64_t roadshow = WorkingMoment(random, end + 45);
    if (q % 2 == 1 && roadshow < now_us) {
      group(absl::StrCat("roadshow-", DateText(end)), some(funds, 4, 7),
            roadshow, "roadshow", 1600000, random.Pick(outcomes), "");
    }
    const int64_t conference = WorkingMoment(random, end + 60);
    if (q % 4 == 2 && conference < now_us) {
      group(absl::StrCat("conference-", DateText(end)), some(funds, 6, 10),
            conference, "conference", 600000, random.Pick(outcomes), "");
    }
  }
  for (size_t i = 0; i < out.members.size(); ++i) {
    const Member& m = out.members[i];
    const double keen = random.Fraction();
    int meetings = 0, calls = 0, reports = 0;
    if (m.kind == fv1::MEMBER_KIND_ANALYST) {
      calls = static_cast<int>(random.Between(2, 8));
    } else if (m.type == fv1::MEMBER_TYPE_INSTITUTIONAL ||
               m.type == fv1::MEMBER_TYPE_BUY_SIDE) {
      meetings = static_cast<int>(5 * keen * keen);
      calls = static_cast<int>(random.Between(0, 4));
    } else {
      reports = kQuarters;  // retail and family offices get the reports
    }
    for (int k = 0; k < meetings; ++k) {
      out.engagements.rows.push_back(
          {Ref(m.external_id),
           TimeText(MomentBetween(random, two_years_ago, now_us - kDay)),
           "meeting", MoneyText(random.Between(30000, 150000)),
           random.Pick(outcomes), "", ""});
    }
    for (int k = 0; k < calls; ++k) {
      out.engagements.rows.push_back(
          {Ref(m.external_id),
           TimeText(MomentBetween(random, two_years_ago, now_us - kDay)),
           "call", MoneyText(random.Between(2000, 8000)), random.Pick(outcomes),
           "", ""});
    }
    for (int q = 0; q < reports; ++q) {
      const int64_t sent = MicrosOf(quarters[static_cast<size_t>(q)] + 30) +
                           10 * 3600 * kMicrosPerSecond;
      if (sent >= now_us) continue;
      out.engagements.rows.push_back({Ref(m.external_id), TimeText(sent),
                                      "report_sent", "4.50", "",
                                      "quarterly report", ""});
    }
  }

  // Coverage: every analyst rates ours, half of them a peer too, a few
  // times over the two years, each on its own scale.
  out.coverage.header = {"member_ref", "security", "date", "rating",
                         "target_price"};
  const std::vector<Rating> scales = {
      {"buy", "hold", "sell"},
      {"outperform", "market perform", "underperform"},
      {"overweight", "equal weight", "underweight"}};
  for (size_t i : analysts) {
    const Member& m = out.members[i];
    const Rating& scale = random.Pick(scales);
    std::vector<size_t> covered = {0};
    if (random.Chance(0.5)) {
      covered.push_back(static_cast<size_t>(random.Between(1, 2)));
    }
    for (size_t s : covered) {
      std::vector<int> when;
      for (int q = 0; q < kQuarters; ++q) {
        if (random.Chance(0.45)) when.push_back(q);
      }
      if (when.empty()) when.push_back(kQuarters - 2);
      const int64_t mood = random.Below(100);
      int64_t level = mood < 50 ? 0 : mood < 85 ? 1 : 2;  // buy, hold, sell
      for (int q : when) {
        const absl::CivilDay day =
            quarters[static_cast<size_t>(q)] + random.Between(29, 40);
        if (MicrosOf(day) >= now_us) continue;
        if (random.Chance(0.3)) {
          level = std::clamp<int64_t>(level + random.Between(-1, 1), 0, 2);
        }
        const double x = random.Fraction();
        const double target = level == 0   ? 1.10 + 0.30 * x
                              : level == 1 ? 0.95 + 0.15 * x
                                           : 0.70 + 0.22 * x;
        out.coverage.rows.push_back(
            {Ref(m.external_id), securities[s], DateText(day),
             level == 0   ? scale.buy
             : level == 1 ? scale.hold
                          : scale.sell,
             MoneyText(Scale(price[s][static_cast<size_t>(q)], target))});
      }
    }
  }
  return out;
}

}  // namespace rapport::ctl::demo
