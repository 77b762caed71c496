// The balance across stakeholders, computed from the services' summaries and
// printed as tables, JSON or CSV (see overview.h).
#include "tools/rapportctl/overview.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace rapport::ctl::overview {
namespace {

namespace cv1 = ::rapport::common::v1;

// The amount of `m`; an invalid one (units and nanos of opposite signs)
// clears `*valid` and counts as zero.
Decimal Amount(const google::type::Money& m, bool* valid) {
  absl::StatusOr<Decimal> d = Decimal::FromUnitsNanos(m.units(), m.nanos());
  if (!d.ok()) *valid = false;
  return d.ok() ? *d : Decimal();
}

Group ToGroup(const cv1::GroupSummary& g, bool* valid) {
  Group out;
  out.name = g.name();
  out.entities = g.entities();
  out.monetary = Amount(g.monetary(), valid);
  out.cost_to_serve = Amount(g.cost_to_serve(), valid);
  out.profit = Amount(g.profit(), valid);
  out.value_hundredths_sum = g.value_hundredths_sum();
  out.average_value_hundredths = g.average_value_hundredths();
  return out;
}

// The rows of one balance table, shares filled in.
void FillShares(std::vector<BalanceRow>& rows) {
  std::vector<Decimal> value, monetary, cost;
  for (const BalanceRow& r : rows) {
    value.push_back(Decimal::FromCents(r.value_hundredths_sum));
    monetary.push_back(r.monetary);
    cost.push_back(r.cost_to_serve);
  }
  const std::vector<int64_t> v = Shares(value), m = Shares(monetary),
                             c = Shares(cost);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].value_share_bp = v[i];
    rows[i].monetary_share_bp = m[i];
    rows[i].cost_share_bp = c[i];
  }
}

BalanceRow RowOf(const std::string& counterpart, const Group& g) {
  BalanceRow r;
  r.counterpart = counterpart;
  r.tier = g.name;
  r.entities = g.entities;
  r.value_hundredths_sum = g.value_hundredths_sum;
  r.monetary = g.monetary;
  r.cost_to_serve = g.cost_to_serve;
  return r;
}

nlohmann::ordered_json GroupJson(const Group& g) {
  nlohmann::ordered_json j;
  j["name"] = g.name;
  j["entities"] = g.entities;
  j["average_value"] = HundredthsText(g.average_value_hundredths);
  j["value_sum"] = HundredthsText(g.value_hundredths_sum);
  j["monetary"] = g.monetary.ToString();
  j["cost_to_serve"] = g.cost_to_serve.ToString();
  j["profit"] = g.profit.ToString();
  return j;
}

nlohmann::ordered_json BalanceJson(const BalanceRow& r) {
  nlohmann::ordered_json j;
  j["counterpart"] = r.counterpart;
  if (!r.tier.empty()) j["tier"] = r.tier;
  j["entities"] = r.entities;
  j["value_sum"] = HundredthsText(r.value_hundredths_sum);
  j["monetary"] = r.monetary.ToString();
  j["cost_to_serve"] = r.cost_to_serve.ToString();
  j["value_share_percent"] = HundredthsText(r.value_share_bp);
  j["monetary_share_percent"] = HundredthsText(r.monetary_share_bp);
  j["cost_share_percent"] = HundredthsText(r.cost_share_bp);
  return j;
}

void PrintJsonOverview(const Overview& o, std::ostream& out) {
  nlohmann::ordered_json j;
  j["counterparts"] = nlohmann::ordered_json::array();
  for (const Counterpart& c : o.counterparts) {
    nlohmann::ordered_json cj;
    cj["counterpart"] = c.key;
    cj["title"] = c.title;
    cj["service"] = c.service;
    cj["available"] = c.available;
    if (!c.available) {
      cj["error"] = c.error;
      j["counterparts"].push_back(std::move(cj));
      continue;
    }
    cj["entities"] = c.entities;
    cj["scored"] = c.total.entities;
    cj["model_id"] = c.model_id;
    cj["as_of"] = c.as_of;
    cj["currency"] = c.currency;
    cj["total"] = GroupJson(c.total);
    cj["tiers"] = nlohmann::ordered_json::array();
    for (const Group& g : c.tiers) cj["tiers"].push_back(GroupJson(g));
    cj["segments"] = nlohmann::ordered_json::array();
    for (const Group& g : c.segments) cj["segments"].push_back(GroupJson(g));
    j["counterparts"].push_back(std::move(cj));
  }
  j["balance"] = nlohmann::ordered_json::array();
  for (const BalanceRow& r : o.balance) j["balance"].push_back(BalanceJson(r));
  j["across"] = nlohmann::ordered_json::array();
  for (const BalanceRow& r : o.across) j["across"].push_back(BalanceJson(r));
  if (!o.across_note.empty()) j["across_note"] = o.across_note;
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
      << "\n";
}

// One CSV (or one table) with a row for every figure: section total, tier,
// segment, balance or across; then, when the shares across counterparts left
// one out, a row of section "note" saying which and why (in `status`). The
// total rows carry the refresh their figures are of, and its as_of.
void PrintFlat(Format format, const Overview& o, std::ostream& out) {
  Table t({"section", "counterpart", "group", "status", "entities", "scored",
           "value_sum", "average_value", "monetary", "cost_to_serve", "profit",
           "value_share_percent", "monetary_share_percent",
           "cost_share_percent", "model_id", "as_of"});
  auto add_group = [&](const char* section, const Counterpart& c,
                       const Group& g, const std::string& scored) {
    const bool total = std::string(section) == "total";
    t.AddRow({section, c.key, g.name,
              c.model_id.empty() ? "available, no refresh yet" : "available",
              absl::StrCat(g.entities), scored,
              HundredthsText(g.value_hundredths_sum),
              HundredthsText(g.average_value_hundredths), g.monetary.ToString(),
              g.cost_to_serve.ToString(), g.profit.ToString(), "", "", "",
              total ? c.model_id : "", total ? c.as_of : ""});
  };
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) {
      t.AddRow({"total", c.key, "", "unavailable: " + c.error, "", "", "", "",
                "", "", "", "", "", "", "", ""});
      continue;
    }
    Group total = c.total;
    total.entities = c.entities;
    add_group("total", c, total, absl::StrCat(c.total.entities));
    for (const Group& g : c.tiers) add_group("tier", c, g, "");
    for (const Group& g : c.segments) add_group("segment", c, g, "");
  }
  auto add_balance = [&](const char* section, const BalanceRow& r) {
    t.AddRow({section, r.counterpart, r.tier, "available",
              absl::StrCat(r.entities), "",
              HundredthsText(r.value_hundredths_sum), "", r.monetary.ToString(),
              r.cost_to_serve.ToString(), "", HundredthsText(r.value_share_bp),
              HundredthsText(r.monetary_share_bp),
              HundredthsText(r.cost_share_bp), "", ""});
  };
  for (const BalanceRow& r : o.balance) add_balance("balance", r);
  for (const BalanceRow& r : o.across) add_balance("across", r);
  if (!o.across_note.empty()) {
    t.AddRow({"note", "", "", o.across_note, "", "", "", "", "", "", "", "", "",
              "", "", ""});
  }
  t.Print(format, out);
}

// For people: the counterparts, their segments, then the balance, one table
// each.
void PrintTables(const Overview& o, std::ostream& out) {
  out << "Counterparts\n";
  Table summary({"counterpart", "status", "entities", "scored", "value_sum",
                 "average_value", "monetary", "cost_to_serve", "profit",
                 "as_of"});
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) {
      summary.AddRow({c.title, "unavailable (" + c.error + ")", "", "", "", "",
                      "", "", "", ""});
      continue;
    }
    summary.AddRow(
        {c.title,
         c.model_id.empty() ? "available, no refresh yet" : "available",
         absl::StrCat(c.entities), absl::StrCat(c.total.entities),
         HundredthsText(c.total.value_hundredths_sum),
         HundredthsText(c.total.average_value_hundredths),
         c.total.monetary.ToString(), c.total.cost_to_serve.ToString(),
         c.total.profit.ToString(), c.as_of});
  }
  summary.Print(Format::kTable, out);

  out << "\nBy segment\n";
  Table segments({"counterpart", "segment", "entities", "value_sum",
                  "average_value", "monetary", "cost_to_serve", "profit"});
  for (const Counterpart& c : o.counterparts) {
    for (const Group& g : c.segments) {
      segments.AddRow({c.title, g.name, absl::StrCat(g.entities),
                       HundredthsText(g.value_hundredths_sum),
                       HundredthsText(g.average_value_hundredths),
                       g.monetary.ToString(), g.cost_to_serve.ToString(),
                       g.profit.ToString()});
    }
  }
  segments.Print(Format::kTable, out);

  auto add = [&](Table& t, const std::string& title, const BalanceRow& r) {
    std::vector<std::string> row = {title};
    if (!r.tier.empty()) row.push_back(r.tier);
    for (std::string cell :
         {absl::StrCat(r.entities), HundredthsText(r.value_hundredths_sum),
          r.monetary.ToString(), r.cost_to_serve.ToString(),
          PercentText(r.value_share_bp), PercentText(r.monetary_share_bp),
          PercentText(r.cost_share_bp)}) {
      row.push_back(std::move(cell));
    }
    t.AddRow(std::move(row));
  };
  auto title_of = [&](const std::string& key) {
    for (const Counterpart& c : o.counterparts) {
      if (c.key == key) return c.title;
    }
    return key;
  };
  const std::vector<std::string> shares = {
      "entities",       "value_sum",         "monetary",     "cost_to_serve",
      "share_of_value", "share_of_monetary", "share_of_cost"};
  std::vector<std::string> columns = {"counterpart", "tier"};
  columns.insert(columns.end(), shares.begin(), shares.end());
  out << "\nBalance by tier (shares of each counterpart's value, monetary "
         "value and cost to serve)\n";
  Table balance(columns);
  for (const BalanceRow& r : o.balance)
    add(balance, title_of(r.counterpart), r);
  balance.Print(Format::kTable, out);

  out << "\nAcross counterparts (shares of all of them together; the "
         "financial community's monetary is the market value its members "
         "hold)\n";
  columns = {"counterpart"};
  columns.insert(columns.end(), shares.begin(), shares.end());
  Table across(columns);
  for (const BalanceRow& r : o.across) add(across, title_of(r.counterpart), r);
  across.Print(Format::kTable, out);
  if (!o.across_note.empty()) out << o.across_note << "\n";
}

}  // namespace

std::vector<int64_t> Shares(const std::vector<Decimal>& parts) {
  std::vector<int64_t> shares(parts.size(), 0);
  Int128 total = 0;
  for (const Decimal& p : parts) total += p.raw_nanos();
  if (total == 0) return shares;
  // Work with a positive total: floor(10000 * part / total) and its
  // remainder in [0, total).
  const Int128 sign = total < 0 ? -1 : 1;
  total *= sign;
  std::vector<Int128> remainders(parts.size());
  int64_t given = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Int128 n = parts[i].raw_nanos() * sign * 10000;
    Int128 q = n / total;
    Int128 r = n % total;
    if (r < 0) {  // C++ truncates toward zero; floor instead
      q -= 1;
      r += total;
    }
    shares[i] = static_cast<int64_t>(q);
    remainders[i] = r;
    given += shares[i];
  }
  // The hundredths left over go to the largest remainders, earlier rows
  // first among equals; fewer than parts.size() of them are left.
  std::vector<size_t> order(parts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return remainders[a] > remainders[b];
  });
  for (size_t k = 0; given < 10000 && k < order.size(); ++k, ++given) {
    ++shares[order[k]];
  }
  return shares;
}

std::string HundredthsText(int64_t hundredths) {
  const char* sign = hundredths < 0 ? "-" : "";
  // Unsigned, so that the most negative number has a magnitude too.
  const uint64_t a = hundredths < 0 ? 0 - static_cast<uint64_t>(hundredths)
                                    : static_cast<uint64_t>(hundredths);
  return absl::StrFormat("%s%d.%02d", sign, a / 100, a % 100);
}

std::string PercentText(int64_t basis_points) {
  return HundredthsText(basis_points) + "%";
}

Counterpart FromSummary(std::string key, std::string title, std::string service,
                        int64_t entities, const std::string& model_id,
                        const cv1::GroupSummary& total,
                        const std::vector<cv1::GroupSummary>& tiers,
                        const std::vector<cv1::GroupSummary>& segments) {
  Counterpart c;
  c.key = std::move(key);
  c.title = std::move(title);
  c.service = std::move(service);
  c.available = true;
  c.entities = entities;
  c.model_id = model_id;
  bool valid = true;
  c.total = ToGroup(total, &valid);
  c.currency = total.monetary().currency_code();
  for (const std::string& name : TierOrder()) {
    Group g;
    g.name = name;
    for (const cv1::GroupSummary& t : tiers) {
      if (t.name() == name) g = ToGroup(t, &valid);
    }
    c.tiers.push_back(std::move(g));
  }
  for (const cv1::GroupSummary& s : segments) {
    c.segments.push_back(ToGroup(s, &valid));
  }
  if (!valid) {
    // Shares computed from a wrong figure would mislead; show none.
    Counterpart down;
    down.key = c.key;
    down.title = c.title;
    down.service = c.service;
    down.error = "INTERNAL: the service's summary holds an invalid amount";
    return down;
  }
  return c;
}

bool Answered(const Counterpart& c) {
  return c.available || !(absl::StartsWith(c.error, "DEADLINE_EXCEEDED") ||
                          absl::StartsWith(c.error, "UNAVAILABLE"));
}

Overview Balance(std::vector<Counterpart> counterparts) {
  Overview o;
  o.counterparts = std::move(counterparts);
  std::string currency;
  bool currency_set = false;
  std::vector<std::string> left_out, unavailable, unscored;
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) {
      unavailable.push_back(c.title);
      continue;
    }
    // No refresh has stored values yet: its zeros would read as a share.
    if (c.model_id.empty()) {
      unscored.push_back(c.title);
      continue;
    }
    std::vector<BalanceRow> rows;
    for (const Group& g : c.tiers) rows.push_back(RowOf(c.key, g));
    FillShares(rows);
    o.balance.insert(o.balance.end(), rows.begin(), rows.end());
    if (!currency_set) {
      currency = c.currency;
      currency_set = true;
    }
    if (c.currency != currency) {
      left_out.push_back(absl::StrCat(c.title, " (", c.currency, ")"));
      continue;
    }
    Group total = c.total;
    total.name = "";
    o.across.push_back(RowOf(c.key, total));
  }
  FillShares(o.across);
  // What the shares across counterparts leave out, and why: they are shares
  // of the counterparts listed only.
  std::vector<std::string> notes;
  if (!unavailable.empty()) {
    notes.push_back(
        absl::StrCat("unavailable: ", absl::StrJoin(unavailable, ", ")));
  }
  if (!unscored.empty()) {
    notes.push_back(
        absl::StrCat("no refresh yet: ", absl::StrJoin(unscored, ", ")));
  }
  if (!left_out.empty()) {
    notes.push_back(absl::StrCat("money not in ", currency, ": ",
                                 absl::StrJoin(left_out, ", ")));
  }
  if (!notes.empty()) {
    o.across_note = absl::StrCat("Left out of the shares across counterparts (",
                                 absl::StrJoin(notes, "; "), ")");
  }
  return o;
}

void Print(Format format, const Overview& o, std::ostream& out) {
  switch (format) {
    case Format::kJson:
      PrintJsonOverview(o, out);
      return;
    case Format::kCsv:
      PrintFlat(Format::kCsv, o, out);
      return;
    case Format::kTable:
      PrintTables(o, out);
      return;
  }
}

}  // namespace rapport::ctl::overview
