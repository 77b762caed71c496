// The balance across stakeholders, computed from the services' summaries and
// printed as tables, JSON or CSV (see overview.h).
#include "tools/rapportctl/overview.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rapport::ctl::overview {
namespace {

namespace cv1 = ::rapport::common::v1;

Decimal MoneyOrZero(const google::type::Money& m) {
  absl::StatusOr<Decimal> d = Decimal::FromUnitsNanos(m.units(), m.nanos());
  return d.ok() ? *d : Decimal();
}

Group ToGroup(const cv1::GroupSummary& g) {
  Group out;
  out.name = g.name();
  out.entities = g.entities();
  out.monetary = MoneyOrZero(g.monetary());
  out.cost_to_serve = MoneyOrZero(g.cost_to_serve());
  out.profit = MoneyOrZero(g.profit());
  out.value_hundredths_sum = g.value_hundredths_sum();
  out.average_value_hundredths = g.average_value_hundredths();
  return out;
}

// Hundredths as a number with two decimals: 4250 is "42.50" (values, and
// shares in percent).
std::string ValueText(int64_t hundredths) {
  const char* sign = hundredths < 0 ? "-" : "";
  const int64_t a = std::llabs(hundredths);
  return absl::StrFormat("%s%d.%02d", sign, a / 100, a % 100);
}

// The rows of one balance table, shares filled in.
void FillShares(std::vector<BalanceRow>& rows) {
  std::vector<Decimal> value, cost;
  for (const BalanceRow& r : rows) {
    value.push_back(r.monetary);
    cost.push_back(r.cost_to_serve);
  }
  const std::vector<int64_t> v = Shares(value), c = Shares(cost);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].value_share_bp = v[i];
    rows[i].cost_share_bp = c[i];
  }
}

nlohmann::ordered_json GroupJson(const Group& g) {
  nlohmann::ordered_json j;
  j["name"] = g.name;
  j["entities"] = g.entities;
  j["average_value"] = ValueText(g.average_value_hundredths);
  j["value_sum"] = ValueText(g.value_hundredths_sum);
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
  j["monetary"] = r.monetary.ToString();
  j["cost_to_serve"] = r.cost_to_serve.ToString();
  j["value_share_percent"] = ValueText(r.value_share_bp);
  j["cost_share_percent"] = ValueText(r.cost_share_bp);
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
  out << j.dump(2) << "\n";
}

// One CSV (or one table) with a row for every figure: section total, tier,
// segment, balance or across.
void PrintFlat(Format format, const Overview& o, std::ostream& out) {
  Table t({"section", "counterpart", "group", "status", "entities", "scored",
           "average_value", "monetary", "cost_to_serve", "profit",
           "value_share_percent", "cost_share_percent"});
  auto add_group = [&](const char* section, const Counterpart& c,
                       const Group& g) {
    t.AddRow({section, c.key, g.name, "available", absl::StrCat(g.entities),
              "", ValueText(g.average_value_hundredths), g.monetary.ToString(),
              g.cost_to_serve.ToString(), g.profit.ToString(), "", ""});
  };
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) {
      t.AddRow({"total", c.key, "", "unavailable: " + c.error, "", "", "", "",
                "", "", "", ""});
      continue;
    }
    t.AddRow({"total", c.key, "", "available", absl::StrCat(c.entities),
              absl::StrCat(c.total.entities),
              ValueText(c.total.average_value_hundredths),
              c.total.monetary.ToString(), c.total.cost_to_serve.ToString(),
              c.total.profit.ToString(), "", ""});
    for (const Group& g : c.tiers) add_group("tier", c, g);
    for (const Group& g : c.segments) add_group("segment", c, g);
  }
  auto add_balance = [&](const char* section, const BalanceRow& r) {
    t.AddRow({section, r.counterpart, r.tier, "available",
              absl::StrCat(r.entities), "", "", r.monetary.ToString(),
              r.cost_to_serve.ToString(), "", ValueText(r.value_share_bp),
              ValueText(r.cost_share_bp)});
  };
  for (const BalanceRow& r : o.balance) add_balance("balance", r);
  for (const BalanceRow& r : o.across) add_balance("across", r);
  t.Print(format, out);
}

// For people: the counterparts, then the balance, one table each.
void PrintTables(const Overview& o, std::ostream& out) {
  out << "Counterparts\n";
  Table summary({"counterpart", "status", "entities", "scored",
                 "average_value", "monetary", "cost_to_serve", "profit"});
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) {
      summary.AddRow({c.title, "unavailable (" + c.error + ")", "", "", "", "",
                      "", ""});
      continue;
    }
    summary.AddRow({c.title, "available", absl::StrCat(c.entities),
                    absl::StrCat(c.total.entities),
                    ValueText(c.total.average_value_hundredths),
                    c.total.monetary.ToString(),
                    c.total.cost_to_serve.ToString(),
                    c.total.profit.ToString()});
  }
  summary.Print(Format::kTable, out);

  out << "\nBy segment\n";
  Table segments({"counterpart", "segment", "entities", "average_value",
                  "monetary", "cost_to_serve", "profit"});
  for (const Counterpart& c : o.counterparts) {
    for (const Group& g : c.segments) {
      segments.AddRow({c.title, g.name, absl::StrCat(g.entities),
                       ValueText(g.average_value_hundredths),
                       g.monetary.ToString(), g.cost_to_serve.ToString(),
                       g.profit.ToString()});
    }
  }
  segments.Print(Format::kTable, out);

  out << "\nBalance by tier (shares of each counterpart's monetary value and "
         "cost to serve)\n";
  Table balance({"counterpart", "tier", "entities", "average_value",
                 "monetary", "cost_to_serve", "profit", "share_of_value",
                 "share_of_cost"});
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) continue;
    for (const Group& g : c.tiers) {
      auto row = std::find_if(
          o.balance.begin(), o.balance.end(), [&](const BalanceRow& r) {
            return r.counterpart == c.key && r.tier == g.name;
          });
      if (row == o.balance.end()) continue;
      balance.AddRow({c.title, g.name, absl::StrCat(g.entities),
                      ValueText(g.average_value_hundredths),
                      g.monetary.ToString(), g.cost_to_serve.ToString(),
                      g.profit.ToString(), PercentText(row->value_share_bp),
                      PercentText(row->cost_share_bp)});
    }
  }
  balance.Print(Format::kTable, out);

  out << "\nAcross counterparts (shares of all monetary value and cost to "
         "serve)\n";
  Table across({"counterpart", "entities", "monetary", "cost_to_serve",
                "share_of_value", "share_of_cost"});
  for (const BalanceRow& r : o.across) {
    std::string title = r.counterpart;
    for (const Counterpart& c : o.counterparts) {
      if (c.key == r.counterpart) title = c.title;
    }
    across.AddRow({title, absl::StrCat(r.entities), r.monetary.ToString(),
                   r.cost_to_serve.ToString(), PercentText(r.value_share_bp),
                   PercentText(r.cost_share_bp)});
  }
  across.Print(Format::kTable, out);
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

std::string PercentText(int64_t basis_points) {
  return ValueText(basis_points) + "%";
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
  c.total = ToGroup(total);
  for (const std::string& name : TierOrder()) {
    Group g;
    g.name = name;
    for (const cv1::GroupSummary& t : tiers) {
      if (t.name() == name) g = ToGroup(t);
    }
    c.tiers.push_back(std::move(g));
  }
  for (const cv1::GroupSummary& s : segments) c.segments.push_back(ToGroup(s));
  return c;
}

Overview Balance(std::vector<Counterpart> counterparts) {
  Overview o;
  o.counterparts = std::move(counterparts);
  for (const Counterpart& c : o.counterparts) {
    if (!c.available) continue;
    std::vector<BalanceRow> rows;
    for (const Group& g : c.tiers) {
      rows.push_back(
          {c.key, g.name, g.entities, g.monetary, g.cost_to_serve, 0, 0});
    }
    FillShares(rows);
    o.balance.insert(o.balance.end(), rows.begin(), rows.end());
    o.across.push_back({c.key, "", c.total.entities, c.total.monetary,
                        c.total.cost_to_serve, 0, 0});
  }
  FillShares(o.across);
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
