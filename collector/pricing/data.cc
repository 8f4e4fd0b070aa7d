// SPDX-License-Identifier: Apache-2.0
#include "collector/pricing/data.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/pricing/csv.h"

namespace wattlens::pricing {
namespace {

absl::StatusOr<double> Number(const CsvRow& row, size_t field,
                              absl::string_view name) {
  double v = 0;
  if (!ParseFiniteNumber(row.fields[field], &v)) {
    return LineError(name, row.line,
                     absl::StrCat("bad number '", row.fields[field], "'"));
  }
  if (v < 0) {
    return LineError(name, row.line, absl::StrCat("must not be negative: ", v));
  }
  return v;
}

absl::StatusOr<int> Year(const CsvRow& row, size_t field,
                         absl::string_view name) {
  int y = 0;
  if (!absl::SimpleAtoi(row.fields[field], &y) || y < 1990 || y > 2100) {
    return LineError(name, row.line,
                     absl::StrCat("bad year '", row.fields[field], "'"));
  }
  return y;
}

absl::Status ParsePue(absl::string_view text, absl::string_view name,
                      CarbonData* data) {
  absl::StatusOr<std::vector<CsvRow>> rows =
      ParseCsv(text, name, {"provider", "region", "pue", "year", "source"});
  if (!rows.ok()) return rows.status();
  for (const CsvRow& row : *rows) {
    absl::StatusOr<double> pue = Number(row, 2, name);
    if (!pue.ok()) return pue.status();
    if (*pue < 1) return LineError(name, row.line, "pue below 1");
    std::string key = absl::StrCat(absl::AsciiStrToLower(row.fields[0]), "/",
                                   absl::AsciiStrToLower(row.fields[1]));
    if (!data->pue.emplace(key, *pue).second) {
      return LineError(name, row.line, absl::StrCat("duplicate row ", key));
    }
  }
  if (!data->pue.contains("unknown/*")) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": no 'unknown,*' default row"));
  }
  return absl::OkStatus();
}

absl::Status ParseEmbodied(absl::string_view text, absl::string_view name,
                           CarbonData* data) {
  absl::StatusOr<std::vector<CsvRow>> rows =
      ParseCsv(text, name, {"parameter", "value", "unit", "year", "source"});
  if (!rows.ok()) return rows.status();
  EmbodiedDefaults& e = data->embodied;
  const std::pair<const char*, double*> params[] = {
      {"base_kg", &e.base_kg},
      {"dram_base_gb", &e.dram_base_gb},
      {"dram_kg_per_gb", &e.dram_kg_per_gb},
      {"extra_socket_kg", &e.extra_socket_kg},
      {"hdd_kg", &e.hdd_kg},
      {"ssd_kg", &e.ssd_kg},
      {"gpu_kg", &e.gpu_kg},
      {"lifetime_hours", &e.lifetime_hours},
      {"vcpu_host_kg", &e.vcpu_host_kg},
      {"vcpu_host_vcpus", &e.vcpu_host_vcpus},
  };
  for (const CsvRow& row : *rows) {
    double* target = nullptr;
    for (const auto& [key, field] : params) {
      if (row.fields[0] == key) target = field;
    }
    if (target == nullptr) {
      return LineError(name, row.line,
                       absl::StrCat("unknown parameter '", row.fields[0], "'"));
    }
    absl::StatusOr<double> v = Number(row, 1, name);
    if (!v.ok()) return v.status();
    *target = *v;
  }
  if (e.lifetime_hours <= 0 || e.vcpu_host_vcpus <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": lifetime_hours and vcpu_host_vcpus must be > 0"));
  }
  return absl::OkStatus();
}

absl::Status ParseCurrencies(absl::string_view text, absl::string_view name,
                             CarbonData* data) {
  absl::StatusOr<std::vector<CsvRow>> rows = ParseCsv(text, name, {"code"});
  if (!rows.ok()) return rows.status();
  for (const CsvRow& row : *rows) {
    const std::string& c = row.fields[0];
    if (c.size() != 3 || !absl::ascii_isupper(c[0]) ||
        !absl::ascii_isupper(c[1]) || !absl::ascii_isupper(c[2])) {
      return LineError(name, row.line, absl::StrCat("bad code '", c, "'"));
    }
    data->currencies.insert(c);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseGridIntensity(absl::string_view text, absl::string_view name,
                                CarbonData* data) {
  absl::StatusOr<std::vector<CsvRow>> rows =
      ParseCsv(text, name, {"source", "year", "key", "g_per_kwh"});
  if (!rows.ok()) return rows.status();
  for (const CsvRow& row : *rows) {
    absl::StatusOr<int> year = Year(row, 1, name);
    if (!year.ok()) return year.status();
    absl::StatusOr<double> g = Number(row, 3, name);
    if (!g.ok()) return g.status();
    const std::string& key = row.fields[2];
    if (key.empty()) return LineError(name, row.line, "empty key");
    if (row.fields[0] == "ember") {
      std::string upper = absl::AsciiStrToUpper(key);
      if (!data->ember.emplace(upper, std::make_pair(*year, *g)).second) {
        return LineError(name, row.line,
                         absl::StrCat("duplicate ember key '", key, "'"));
      }
      if (upper == "WORLD") {
        data->world_year = *year;
        data->world_g_per_kwh = *g;
      }
    } else if (row.fields[0] == "electricitymaps") {
      if (!data->em_zones[key].emplace(*year, *g).second) {
        return LineError(name, row.line,
                         absl::StrCat("duplicate zone-year ", key, " ", *year));
      }
      data->em_zone_by_upper[absl::AsciiStrToUpper(key)] = key;
    } else {
      return LineError(name, row.line,
                       absl::StrCat("unknown source '", row.fields[0],
                                    "' (ember, electricitymaps)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseCloudRegions(absl::string_view text, absl::string_view name,
                               CarbonData* data) {
  absl::StatusOr<std::vector<CsvRow>> rows = ParseCsv(
      text, name, {"provider", "region", "em_zone", "country", "source"});
  if (!rows.ok()) return rows.status();
  for (const CsvRow& row : *rows) {
    RegionInfo info;
    info.provider = absl::AsciiStrToLower(row.fields[0]);
    info.region = absl::AsciiStrToLower(row.fields[1]);
    info.zone = row.fields[2];
    info.country = absl::AsciiStrToUpper(row.fields[3]);
    info.source = row.fields[4];
    if (info.provider != "aws" && info.provider != "gcp" &&
        info.provider != "azure") {
      return LineError(name, row.line,
                       absl::StrCat("unknown provider '", row.fields[0], "'"));
    }
    if (info.region.empty()) return LineError(name, row.line, "empty region");
    std::string key = absl::StrCat(info.provider, "/", info.region);
    if (data->regions.contains(key)) {
      return LineError(name, row.line, absl::StrCat("duplicate region ", key));
    }
    data->regions.emplace(info.region, info);  // first provider wins
    data->regions.emplace(key, std::move(info));
  }
  return absl::OkStatus();
}

absl::StatusOr<CarbonData> LoadCarbonData(const std::string& dir) {
  CarbonData data;
  data.dir = dir;
  struct File {
    const char* path;
    absl::Status (*parse)(absl::string_view, absl::string_view, CarbonData*);
  };
  const File files[] = {
      {"carbon/grid_intensity.csv", &ParseGridIntensity},
      {"carbon/cloud_regions.csv", &ParseCloudRegions},
      {"carbon/pue.csv", &ParsePue},
      {"carbon/embodied.csv", &ParseEmbodied},
      {"currencies.csv", &ParseCurrencies},
  };
  for (const File& f : files) {
    std::string path = absl::StrCat(dir, "/", f.path);
    absl::StatusOr<std::string> text = ReadTextFile(path);
    if (!text.ok()) {
      return absl::Status(
          text.status().code(),
          absl::StrCat("pricing data: ", text.status().message(),
                       " (data directory ", dir, ")"));
    }
    absl::Status s = f.parse(*text, path, &data);
    if (!s.ok()) return s;
  }
  if (data.world_year == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/carbon/grid_intensity.csv: no ember WORLD row"));
  }
  return data;
}

}  // namespace wattlens::pricing
