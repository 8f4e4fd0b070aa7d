// SPDX-License-Identifier: Apache-2.0
#include "collector/pricing/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "collector/pricing/csv.h"

namespace wattlens::pricing {
namespace {

// ---- selectors --------------------------------------------------------------

bool ValidLabelText(absl::string_view s) {
  if (s.empty() || s.size() > 316) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' &&
        c != '/') {
      return false;
    }
  }
  return true;
}

// ---- values -----------------------------------------------------------------

// A TOML value reduced to what the checks below look at.
struct Value {
  enum class Type { kString, kNumber, kBool, kArray, kTable, kDateTime };
  Type type = Type::kString;
  std::string str;
  double number = 0;
  bool integer = false;
  bool boolean = false;
};

const char* TypeName(Value::Type t) {
  switch (t) {
    case Value::Type::kString:
      return "a string";
    case Value::Type::kNumber:
      return "a number";
    case Value::Type::kBool:
      return "true or false";
    case Value::Type::kArray:
      return "an array";
    case Value::Type::kTable:
      return "a table";
    case Value::Type::kDateTime:
      return "a date or time";
  }
  return "?";
}

Value ToValue(const toml::node& node) {
  Value v;
  switch (node.type()) {
    case toml::node_type::string:
      v.type = Value::Type::kString;
      v.str = node.as_string()->get();
      break;
    case toml::node_type::integer:
      v.type = Value::Type::kNumber;
      v.number = static_cast<double>(node.as_integer()->get());
      v.integer = true;
      break;
    case toml::node_type::floating_point:
      v.type = Value::Type::kNumber;
      v.number = node.as_floating_point()->get();
      break;
    case toml::node_type::boolean:
      v.type = Value::Type::kBool;
      v.boolean = node.as_boolean()->get();
      break;
    case toml::node_type::array:
      v.type = Value::Type::kArray;
      break;
    case toml::node_type::table:
      v.type = Value::Type::kTable;
      break;
    default:
      v.type = Value::Type::kDateTime;
      break;
  }
  return v;
}

int LineOf(const toml::source_region& source) {
  return static_cast<int>(source.begin.line);
}

// A table's entries in file order (toml::table is ordered by key), so the
// first error reported is the first in the file.
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(
    const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [key, node] : table) out.emplace_back(&key, &node);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const toml::source_position& pa = a.first->source().begin;
    const toml::source_position& pb = b.first->source().begin;
    return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
  });
  return out;
}

// ---- semantics --------------------------------------------------------------

enum class Section { kTop, kEgress, kNode, kRegion };

const char* SectionName(Section s) {
  switch (s) {
    case Section::kTop:
      return "the top level";
    case Section::kEgress:
      return "[egress_per_gb]";
    case Section::kNode:
      return "[[node]]";
    case Section::kRegion:
      return "[[regions]]";
  }
  return "?";
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// A table header whose name does not start with a key character ("[=",
// "[[[", "[[="): toml++ 3.3 enters its key parser with that character
// anyway, which aborts a build with assertions and is undefined behaviour
// without them (fixed upstream after 3.3). No such line is valid TOML where
// a header may stand, so it is refused here, before toml++ sees it. (Inside
// a multi-line array a line may also start with '['; a nested array of
// arrays written that way is refused too, which no key here takes.)
absl::Status CheckTableHeaders(absl::string_view text,
                               const std::string& name) {
  int line = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line;
    absl::string_view l = absl::StripLeadingAsciiWhitespace(raw);
    if (!absl::ConsumePrefix(&l, "[")) continue;
    absl::ConsumePrefix(&l, "[");
    l = absl::StripLeadingAsciiWhitespace(l);
    const char c = l.empty() ? '\n' : l[0];  // a name on the next line
    if (absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '"' ||
        c == '\'' || c == ']') {
      continue;  // a key, or a blank name toml++ refuses itself
    }
    return LineError(name, line, "a [table] header must start with a key name");
  }
  return absl::OkStatus();
}

class Parser {
 public:
  Parser(const std::string& name, CostConfig* config)
      : name_(name), config_(config) {}

  absl::Status Run(absl::string_view text) {
    if (absl::Status s = CheckTableHeaders(text, name_); !s.ok()) {
      return s;
    }
    toml::parse_result parsed = toml::parse(
        std::string_view(text.data(), text.size()), std::string_view(name_));
    if (!parsed) {
      const toml::parse_error& e = parsed.error();
      return LineError(name_, LineOf(e.source()), std::string(e.description()));
    }
    const toml::table& root = parsed.table();
    // Top-level keys and every section, in file order.
    struct Item {
      toml::source_position at;
      Section section;
      const toml::key* key;
      const toml::node* node;
    };
    std::vector<Item> items;
    for (auto&& [key, node] : InFileOrder(root)) {
      line_ = LineOf(key->source());
      const std::string k(key->str());
      if (k == "egress_per_gb") {
        if (!node->is_table()) {
          return Error(absl::StrCat("egress_per_gb: expected a table, got ",
                                    TypeName(ToValue(*node).type)));
        }
        items.push_back({node->source().begin, Section::kEgress, key, node});
        continue;
      }
      if (k == "node" || k == "regions") {
        const Section s = k == "node" ? Section::kNode : Section::kRegion;
        const toml::array* rules = node->as_array();
        if (rules == nullptr ||
            !(rules->empty() || rules->is_array_of_tables())) {
          return Error(absl::StrCat(k, ": expected ", SectionName(s),
                                    " tables, got ",
                                    TypeName(ToValue(*node).type)));
        }
        for (const toml::node& rule : *rules) {
          items.push_back({rule.source().begin, s, key, &rule});
        }
        continue;
      }
      if (node->is_table()) {
        return Error(absl::StrCat("unknown section '[", k,
                                  "]' (known: ", kKnownSections, ")"));
      }
      if (node->is_array_of_tables()) {
        return Error(absl::StrCat("unknown section '[[", k,
                                  "]]' (known: ", kKnownSections, ")"));
      }
      items.push_back({key->source().begin, Section::kTop, key, node});
    }
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& a, const Item& b) {
                       return std::tie(a.at.line, a.at.column) <
                              std::tie(b.at.line, b.at.column);
                     });
    for (const Item& item : items) {
      absl::Status s;
      if (item.section == Section::kTop) {
        section_ = Section::kTop;
        line_ = LineOf(item.key->source());
        s = Assign(std::string(item.key->str()), ToValue(*item.node));
      } else {
        s = Table(item.section, *item.node->as_table());
      }
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static constexpr char kKnownSections[] =
      "[egress_per_gb], [[node]], [[regions]]";

  absl::Status Error(absl::string_view message) const {
    return LineError(name_, line_, message);
  }
  std::string Where() const { return absl::StrCat(name_, ":", line_); }

  // One [egress_per_gb] table or one [[node]] or [[regions]] element.
  absl::Status Table(Section section, const toml::table& table) {
    section_ = section;
    section_line_ = LineOf(table.source());
    if (section == Section::kNode) {
      rule_ = NodeRule{};
      rule_.where = absl::StrCat(name_, ":", section_line_);
    } else if (section == Section::kRegion) {
      region_ = RegionRule{};
      region_.where = absl::StrCat(name_, ":", section_line_);
    }
    for (auto&& [key, node] : InFileOrder(table)) {
      line_ = LineOf(key->source());
      absl::Status s = Assign(std::string(key->str()), ToValue(*node));
      if (!s.ok()) return s;
    }
    return FinishSection();
  }

  absl::Status FinishSection() {
    if (section_ == Section::kNode) {
      int matchers = has_name_ + has_selector_ + has_instance_type_;
      has_name_ = has_selector_ = has_instance_type_ = false;
      if (matchers != 1) {
        return LineError(name_, section_line_,
                         "[[node]] needs exactly one of name, selector, "
                         "instance_type");
      }
      if (rule_.settings.price_per_hour && (rule_.settings.cpu_per_core_hour ||
                                            rule_.settings.ram_per_gib_hour ||
                                            rule_.settings.gpu_per_gpu_hour)) {
        return LineError(name_, section_line_,
                         "[[node]]: price_per_hour (split by the OpenCost "
                         "ratio) excludes cpu/ram/gpu component prices");
      }
      for (const NodeRule& other : config_->rules) {
        if (other.kind == rule_.kind && other.match == rule_.match) {
          return LineError(name_, section_line_,
                           absl::StrCat("duplicate [[node]] rule for ",
                                        KindName(rule_.kind), " '", rule_.match,
                                        "' (first at ", other.where, ")"));
        }
      }
      config_->rules.push_back(std::move(rule_));
      rule_ = NodeRule{};
    } else if (section_ == Section::kRegion) {
      if (region_.name.empty()) {
        return LineError(name_, section_line_, "[[regions]] needs a name");
      }
      for (const RegionRule& other : config_->regions) {
        if (other.name == region_.name && other.provider == region_.provider) {
          return LineError(name_, section_line_,
                           absl::StrCat("duplicate [[regions]] '", region_.name,
                                        "' (first at ", other.where, ")"));
        }
      }
      config_->regions.push_back(std::move(region_));
      region_ = RegionRule{};
    }
    return absl::OkStatus();
  }

  static const char* KindName(NodeRule::Kind k) {
    switch (k) {
      case NodeRule::Kind::kName:
        return "name";
      case NodeRule::Kind::kSelector:
        return "selector";
      case NodeRule::Kind::kInstanceType:
        return "instance_type";
    }
    return "?";
  }

  absl::Status Want(const std::string& key, const Value& v, Value::Type t) {
    if (v.type != t) {
      return Error(absl::StrCat(key, ": expected ", TypeName(t), ", got ",
                                TypeName(v.type)));
    }
    // TOML has inf and nan; no price, factor or count can be either.
    if (t == Value::Type::kNumber && !std::isfinite(v.number)) {
      return Error(absl::StrCat(
          key, ": bad number '",
          std::isnan(v.number) ? "nan" : (v.number < 0 ? "-inf" : "inf"), "'"));
    }
    return absl::OkStatus();
  }

  // A non-negative number (prices, intensities, masses).
  absl::StatusOr<double> NonNegative(const std::string& key, const Value& v) {
    absl::Status s = Want(key, v, Value::Type::kNumber);
    if (!s.ok()) return s;
    if (v.number < 0) {
      return Error(absl::StrCat(key, ": must not be negative, got ", v.number));
    }
    return v.number;
  }

  absl::StatusOr<double> Discount(const std::string& key, const Value& v) {
    absl::StatusOr<double> d = NonNegative(key, v);
    if (!d.ok()) return d;
    if (*d > 1) {
      return Error(absl::StrCat(key, ": a fraction in [0, 1], got ", *d));
    }
    return d;
  }

  absl::StatusOr<uint32_t> Count(const std::string& key, const Value& v) {
    absl::StatusOr<double> d = NonNegative(key, v);
    if (!d.ok()) return d.status();
    if (!v.integer || *d > 4096) {
      return Error(absl::StrCat(key, ": expected a whole number 0..4096"));
    }
    return static_cast<uint32_t>(*d);
  }

  absl::StatusOr<std::string> Text(const std::string& key, const Value& v) {
    absl::Status s = Want(key, v, Value::Type::kString);
    if (!s.ok()) return s;
    if (v.str.empty()) return Error(absl::StrCat(key, ": must not be empty"));
    if (v.str.size() > 256) return Error(absl::StrCat(key, ": too long"));
    return v.str;
  }

  // Keys shared by the top level and [[node]]. Returns NotFound when `key`
  // is not one of them.
  absl::Status AssignNodeSetting(const std::string& key, const Value& v,
                                 NodeSettings* ns) {
    auto number = [&](std::optional<double>* field) -> absl::Status {
      absl::StatusOr<double> d = NonNegative(key, v);
      if (!d.ok()) return d.status();
      *field = *d;
      return absl::OkStatus();
    };
    auto text = [&](std::optional<std::string>* field) -> absl::Status {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      *field = *s;
      return absl::OkStatus();
    };
    auto count = [&](std::optional<uint32_t>* field) -> absl::Status {
      absl::StatusOr<uint32_t> c = Count(key, v);
      if (!c.ok()) return c.status();
      *field = *c;
      return absl::OkStatus();
    };
    absl::Status s = absl::NotFoundError(key);
    if (key == "price_per_hour" && section_ == Section::kNode) {
      s = number(&ns->price_per_hour);
    } else if (key == "cpu_per_core_hour") {
      s = number(&ns->cpu_per_core_hour);
    } else if (key == "ram_per_gib_hour") {
      s = number(&ns->ram_per_gib_hour);
    } else if (key == "gpu_per_gpu_hour") {
      s = number(&ns->gpu_per_gpu_hour);
    } else if (key == "discount") {
      absl::StatusOr<double> d = Discount(key, v);
      s = d.ok() ? (ns->discount = *d, absl::OkStatus()) : d.status();
    } else if (key == "energy_per_kwh") {
      s = number(&ns->energy_per_kwh);
    } else if (key == "provider") {
      s = text(&ns->provider);
      if (s.ok()) {
        std::string p = Lower(*ns->provider);
        if (p == "gce" || p == "google") p = "gcp";
        if (p == "on-prem" || p == "onprem" || p == "on-premises" ||
            p == "unknown") {
          p = "";
        }
        if (!p.empty() && p != "aws" && p != "gcp" && p != "azure") {
          s = Error(absl::StrCat("provider: unknown provider '", *ns->provider,
                                 "' (aws, gcp, azure or on-prem)"));
        }
        ns->provider = p;
      }
    } else if (key == "region") {
      s = text(&ns->region);
    } else if (key == "zone") {
      s = text(&ns->zone);
    } else if (key == "country") {
      s = text(&ns->country);
    } else if (key == "pue") {
      s = number(&ns->pue);
      if (s.ok() && *ns->pue < 1) {
        s = Error(absl::StrCat("pue: must be at least 1, got ", *ns->pue));
      }
    } else if (key == "grid_intensity") {
      s = number(&ns->grid_intensity);
    } else if (key == "embodied_kg") {
      s = number(&ns->embodied_kg);
    } else if (key == "lifetime_hours") {
      s = number(&ns->lifetime_hours);
      if (s.ok() && *ns->lifetime_hours <= 0) {
        s = Error("lifetime_hours: must be positive");
      }
    } else if (key == "embodied_model") {
      s = text(&ns->embodied_model);
      if (s.ok() && *ns->embodied_model != "vcpu" &&
          *ns->embodied_model != "server") {
        s =
            Error(absl::StrCat("embodied_model: expected \"vcpu\" or "
                               "\"server\", got '",
                               *ns->embodied_model, "'"));
      }
    } else if (key == "sockets") {
      s = count(&ns->sockets);
      if (s.ok() && *ns->sockets == 0) s = Error("sockets: at least 1");
    } else if (key == "hdds") {
      s = count(&ns->hdds);
    } else if (key == "ssds") {
      s = count(&ns->ssds);
    }
    if (s.ok()) ns->where[key] = Where();
    return s;
  }

  absl::Status Assign(const std::string& key, const Value& v) {
    switch (section_) {
      case Section::kTop:
        return AssignTop(key, v);
      case Section::kEgress: {
        for (int i = 0; i < kEgressClasses; ++i) {
          if (key == kEgressClassNames[i]) {
            absl::StatusOr<double> d = NonNegative(key, v);
            if (!d.ok()) return d.status();
            config_->egress_per_gb[i] = *d;
            return absl::OkStatus();
          }
        }
        return UnknownKey(key);
      }
      case Section::kNode:
        return AssignNode(key, v);
      case Section::kRegion:
        return AssignRegion(key, v);
    }
    return UnknownKey(key);
  }

  absl::Status UnknownKey(const std::string& key) {
    return Error(
        absl::StrCat("unknown key '", key, "' in ", SectionName(section_)));
  }

  absl::Status AssignTop(const std::string& key, const Value& v) {
    CostConfig& c = *config_;
    if (key == "currency") {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      c.currency = *s;
      c.currency_where = Where();
      return absl::OkStatus();
    }
    if (key == "share_idle") {
      absl::Status s = Want(key, v, Value::Type::kBool);
      if (!s.ok()) return s;
      c.share_idle = v.boolean;
      return absl::OkStatus();
    }
    if (key == "intensity_dataset") {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      if (*s != "electricitymaps" && *s != "ember") {
        return Error(
            absl::StrCat("intensity_dataset: expected "
                         "\"electricitymaps\" or \"ember\", got '",
                         *s, "'"));
      }
      c.intensity_dataset = *s;
      return absl::OkStatus();
    }
    if (key == "intensity_year") {
      absl::StatusOr<double> d = NonNegative(key, v);
      if (!d.ok()) return d.status();
      if (!v.integer || *d < 1990 || *d > 2100) {
        return Error("intensity_year: expected a year such as 2024");
      }
      c.intensity_year = static_cast<int>(*d);
      c.intensity_year_where = Where();
      return absl::OkStatus();
    }
    if (key == "intensity_timeseries") {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      c.intensity_timeseries = *s;
      c.intensity_timeseries_where = Where();
      return absl::OkStatus();
    }
    if (key == "price_per_hour") {
      return Error(
          "price_per_hour belongs in a [[node]] rule; the top level "
          "takes cpu_per_core_hour, ram_per_gib_hour, "
          "gpu_per_gpu_hour");
    }
    NodeSettings& d = c.defaults;
    absl::Status s = AssignNodeSetting(key, v, &d);
    if (absl::IsNotFound(s)) return UnknownKey(key);
    if (!s.ok()) return s;
    // Top-level prices and discount are the defaults for every node.
    if (key == "cpu_per_core_hour") c.cpu_per_core_hour = *d.cpu_per_core_hour;
    if (key == "ram_per_gib_hour") c.ram_per_gib_hour = *d.ram_per_gib_hour;
    if (key == "gpu_per_gpu_hour") c.gpu_per_gpu_hour = *d.gpu_per_gpu_hour;
    if (key == "discount") c.discount = *d.discount;
    if (key == "energy_per_kwh") c.energy_per_kwh = *d.energy_per_kwh;
    if (absl::EndsWith(key, "_hour") && key != "lifetime_hours") {
      c.prices_configured = true;
      if (c.prices_where.empty()) c.prices_where = Where();
    }
    return absl::OkStatus();
  }

  absl::Status AssignNode(const std::string& key, const Value& v) {
    if (key == "name" || key == "selector" || key == "instance_type") {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      if (has_name_ || has_selector_ || has_instance_type_) {
        return Error(
            "[[node]] needs exactly one of name, selector, "
            "instance_type");
      }
      rule_.match = *s;
      if (key == "name") {
        rule_.kind = NodeRule::Kind::kName;
        has_name_ = true;
      } else if (key == "selector") {
        absl::StatusOr<Selector> sel = Selector::Parse(*s);
        if (!sel.ok()) {
          return Error(absl::StrCat("selector: ", sel.status().message()));
        }
        rule_.kind = NodeRule::Kind::kSelector;
        rule_.selector = *std::move(sel);
        has_selector_ = true;
      } else {
        rule_.kind = NodeRule::Kind::kInstanceType;
        has_instance_type_ = true;
      }
      return absl::OkStatus();
    }
    absl::Status s = AssignNodeSetting(key, v, &rule_.settings);
    if (absl::IsNotFound(s)) return UnknownKey(key);
    return s;
  }

  absl::Status AssignRegion(const std::string& key, const Value& v) {
    if (key == "name") {
      absl::StatusOr<std::string> s = Text(key, v);
      if (!s.ok()) return s.status();
      region_.name = Lower(*s);
      return absl::OkStatus();
    }
    if (key == "provider" || key == "zone" || key == "country" ||
        key == "pue" || key == "grid_intensity") {
      NodeSettings ns;
      absl::Status s = AssignNodeSetting(key, v, &ns);
      if (!s.ok()) return s;
      if (ns.provider) region_.provider = *ns.provider;
      if (ns.zone) region_.zone = *ns.zone;
      if (ns.country) region_.country = *ns.country;
      if (ns.pue) region_.pue = *ns.pue;
      if (ns.grid_intensity) region_.grid_intensity = *ns.grid_intensity;
      return absl::OkStatus();
    }
    return UnknownKey(key);
  }

  const std::string& name_;
  CostConfig* config_;
  int line_ = 0;
  int section_line_ = 0;
  Section section_ = Section::kTop;
  NodeRule rule_;
  bool has_name_ = false, has_selector_ = false, has_instance_type_ = false;
  RegionRule region_;
};

}  // namespace

absl::StatusOr<Selector> Selector::Parse(absl::string_view text) {
  Selector sel;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) return absl::InvalidArgumentError("empty term");
    Term t;
    size_t ne = part.find("!=");
    size_t eq = part.find('=');
    if (ne != absl::string_view::npos) {
      t.op = Op::kNe;
      t.key = std::string(absl::StripAsciiWhitespace(part.substr(0, ne)));
      t.value = std::string(absl::StripAsciiWhitespace(part.substr(ne + 2)));
    } else if (eq != absl::string_view::npos) {
      t.op = Op::kEq;
      t.key = std::string(absl::StripAsciiWhitespace(part.substr(0, eq)));
      size_t v = eq + 1;
      if (v < part.size() && part[v] == '=') ++v;  // "==" as in kubectl
      t.value = std::string(absl::StripAsciiWhitespace(part.substr(v)));
    } else if (part[0] == '!') {
      t.op = Op::kNotExists;
      t.key = std::string(absl::StripAsciiWhitespace(part.substr(1)));
    } else {
      t.op = Op::kExists;
      t.key = std::string(part);
    }
    if (!ValidLabelText(t.key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad label key in '", part, "'"));
    }
    if ((t.op == Op::kEq || t.op == Op::kNe) && !t.value.empty() &&
        !ValidLabelText(t.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad label value in '", part, "'"));
    }
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool Selector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Term& t : terms_) {
    auto it = labels.find(t.key);
    bool has = it != labels.end();
    switch (t.op) {
      case Op::kEq:
        if (!has || it->second != t.value) return false;
        break;
      case Op::kNe:
        if (has && it->second == t.value) return false;
        break;
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kNotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

absl::StatusOr<CostConfig> ParseCostConfig(absl::string_view text,
                                           const std::string& name) {
  CostConfig config;
  config.name = name;
  Parser parser(name, &config);
  absl::Status s = parser.Run(text);
  if (!s.ok()) return s;
  return config;
}

absl::StatusOr<absl::flat_hash_map<std::string, IntensitySeries>>
ParseIntensityTimeSeries(absl::string_view text, absl::string_view name) {
  absl::StatusOr<std::vector<CsvRow>> rows =
      ParseCsv(text, name, {"time", "region_or_zone", "g_per_kwh"});
  if (!rows.ok()) return rows.status();
  struct Sample {
    int64_t ns;
    double g;
    int line;
  };
  absl::flat_hash_map<std::string, std::vector<Sample>> by_key;
  for (const CsvRow& row : *rows) {
    const std::string& t = row.fields[0];
    int64_t ns = 0;
    int64_t secs = 0;
    if (t.find_first_not_of("-0123456789") == std::string::npos &&
        absl::SimpleAtoi(t, &secs)) {
      if (secs < 0 || secs > int64_t{9'000'000'000}) {
        return LineError(name, row.line,
                         absl::StrCat("time out of range: '", t, "'"));
      }
      ns = secs * 1'000'000'000;
    } else {
      absl::Time parsed;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, t, &parsed, &err) ||
          parsed < absl::UnixEpoch() ||
          parsed > absl::FromUnixSeconds(9'000'000'000)) {
        return LineError(
            name, row.line,
            absl::StrCat("bad time '", t, "' (unix seconds or RFC 3339)"));
      }
      ns = absl::ToUnixNanos(parsed);
    }
    if (row.fields[1].empty()) {
      return LineError(name, row.line, "empty region_or_zone");
    }
    double g = 0;
    if (!ParseFiniteNumber(row.fields[2], &g)) {
      return LineError(name, row.line,
                       absl::StrCat("bad number '", row.fields[2], "'"));
    }
    if (g < 0) {
      return LineError(name, row.line,
                       absl::StrCat("g_per_kwh must not be negative, got ", g));
    }
    by_key[Lower(row.fields[1])].push_back(Sample{ns, g, row.line});
  }
  absl::flat_hash_map<std::string, IntensitySeries> out;
  for (auto& [key, v] : by_key) {
    std::stable_sort(v.begin(), v.end(), [](const Sample& a, const Sample& b) {
      return a.ns < b.ns;
    });
    IntensitySeries& series = out[key];
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0 && v[i].ns == v[i - 1].ns) {
        return LineError(name, std::max(v[i].line, v[i - 1].line),
                         absl::StrCat("second sample for '", key,
                                      "' at the same time (other at line ",
                                      std::min(v[i].line, v[i - 1].line), ")"));
      }
      series.samples.emplace_back(v[i].ns, v[i].g);
    }
  }
  return out;
}

}  // namespace wattlens::pricing
