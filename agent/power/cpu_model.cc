// SPDX-License-Identifier: Apache-2.0
#include "agent/power/cpu_model.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/common/status_macros.h"

namespace wattlens::power {

const std::vector<MicroarchWatts>& CcfMicroarchTable() {
  // Values copied from CCF's AWS table (EPYC 3rd Gen from its GCP/Azure
  // tables, which AWS lacks). Graviton2 uses the EPYC 2nd Gen row, as CCF
  // does for lack of data.
  static const std::vector<MicroarchWatts> kTable = {
      {"Cascade Lake", 0.64, 3.97},     {"Skylake", 0.65, 4.26},
      {"Broadwell", 0.71, 3.69},        {"Haswell", 1.00, 4.74},
      {"Coffee Lake", 1.14, 5.42},      {"Sandy Bridge", 2.17, 8.58},
      {"Ivy Bridge", 3.04, 8.25},       {"AMD EPYC 1st Gen", 0.82, 2.55},
      {"AMD EPYC 2nd Gen", 0.47, 1.69}, {"AMD EPYC 3rd Gen", 0.45, 2.02},
      {"AWS Graviton2", 0.47, 1.69},
  };
  return kTable;
}

MicroarchWatts LookupCcfWatts(absl::string_view microarch) {
  for (const MicroarchWatts& row : CcfMicroarchTable()) {
    if (row.name == microarch) return row;
  }
  return kCcfFallback;
}

absl::StatusOr<CpuInfo> ParseCpuInfo(absl::string_view text) {
  CpuInfo info;
  bool first_block_done = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "processor") {
      if (info.logical_cpus > 0) first_block_done = true;
      ++info.logical_cpus;
      continue;
    }
    if (first_block_done) continue;  // the first CPU describes them all
    if (key == "vendor_id") {
      info.vendor = std::string(value);
    } else if (key == "model name") {
      info.model_name = std::string(value);
    } else if (key == "cpu family") {
      (void)absl::SimpleAtoi(value, &info.family);
    } else if (key == "model") {
      (void)absl::SimpleAtoi(value, &info.model);
    } else if (key == "stepping") {
      (void)absl::SimpleAtoi(value, &info.stepping);
    } else if (key == "CPU part" && info.model_name.empty()) {
      // Arm: no model name; keep the part number for the lookup.
      info.model_name = absl::StrCat("Arm part ", value);
    }
  }
  if (info.logical_cpus == 0) {
    return absl::InvalidArgumentError("cpuinfo lists no processor");
  }
  return info;
}

absl::StatusOr<CpuInfo> ReadCpuInfo(const FileSystem& fs) {
  ASSIGN_OR_RETURN(std::string text, fs.ReadFile("/proc/cpuinfo"));
  return ParseCpuInfo(text);
}

absl::StatusOr<double> ReadMemoryGb(const FileSystem& fs) {
  ASSIGN_OR_RETURN(std::string text, fs.ReadFile("/proc/meminfo"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    uint64_t kib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) break;
    return static_cast<double>(kib) * 1024.0 / 1e9;
  }
  return absl::InvalidArgumentError("no MemTotal in /proc/meminfo");
}

namespace {

std::string IntelByModel(int model, int stepping) {
  switch (model) {
    case 42:
    case 45:
      return "Sandy Bridge";
    case 58:
    case 62:
      return "Ivy Bridge";
    case 60:
    case 63:
    case 69:
    case 70:
      return "Haswell";
    case 61:
    case 71:
    case 79:
    case 86:
      return "Broadwell";
    case 78:
    case 94:
      return "Skylake";
    case 85:
      // Skylake-SP, Cascade Lake and Cooper Lake share model 85.
      return stepping >= 5 ? "Cascade Lake" : "Skylake";
    case 142:
    case 158:
    case 165:
      return "Coffee Lake";
    case 106:
    case 108:
      return "Ice Lake";
    case 143:
      return "Sapphire Rapids";
    default:
      return "";
  }
}

std::string AmdByFamilyModel(int family, int model) {
  if (family == 23) {  // Zen, Zen 2
    if (model < 0x30) return "AMD EPYC 1st Gen";
    return "AMD EPYC 2nd Gen";
  }
  if (family == 25) {  // Zen 3 (Milan 0x0x, client 0x2x-0x5x), else Zen 4
    if (model < 0x10 || (model >= 0x20 && model < 0x60)) {
      return "AMD EPYC 3rd Gen";
    }
    return "AMD EPYC 4th Gen";
  }
  if (family == 26) return "AMD EPYC 5th Gen";
  return "";
}

// The alphanumeric token right after `prefix` in `name`, or "".
absl::string_view TokenAfter(absl::string_view name, absl::string_view prefix) {
  const size_t at = name.find(prefix);
  if (at == absl::string_view::npos) return "";
  absl::string_view rest = name.substr(at + prefix.size());
  size_t n = 0;
  while (n < rest.size() &&
         absl::ascii_isalnum(static_cast<unsigned char>(rest[n]))) {
    ++n;
  }
  return rest.substr(0, n);
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string ByModelName(const std::string& name) {
  // Xeon Scalable ("Gold 6148"): the second digit is the generation.
  for (absl::string_view tier : {"Platinum ", "Gold ", "Silver ", "Bronze "}) {
    absl::string_view model = TokenAfter(name, tier);
    if (model.size() < 4 || !AllDigits(model.substr(0, 4))) continue;
    switch (model[1]) {
      case '1':
        return "Skylake";
      case '2':
        return "Cascade Lake";
      case '3':
        return "Ice Lake";
      default:
        return "";
    }
  }
  // Xeon E5/E7 ("E5-2686 v4"): no version is Sandy Bridge.
  for (absl::string_view family : {"E5-", "E7-"}) {
    absl::string_view model = TokenAfter(name, family);
    if (model.size() < 4 || !AllDigits(model.substr(0, 4))) continue;
    // `model` points into `name`: what follows it is the version, if any.
    const size_t after =
        static_cast<size_t>(model.data() - name.data()) + model.size();
    absl::string_view rest = absl::string_view(name).substr(after);
    if (rest.size() >= 3 && rest[0] == ' ' && rest[1] == 'v') {
      switch (rest[2]) {
        case '2':
          return "Ivy Bridge";
        case '3':
          return "Haswell";
        case '4':
          return "Broadwell";
        default:
          return "";
      }
    }
    return "Sandy Bridge";
  }
  // EPYC ("EPYC 7R32", "EPYC 9654"): the fourth character is the generation.
  absl::string_view epyc = TokenAfter(name, "EPYC ");
  if (epyc.size() == 4 &&
      absl::ascii_isdigit(static_cast<unsigned char>(epyc[0]))) {
    switch (epyc[3]) {
      case '1':
        return "AMD EPYC 1st Gen";
      case '2':
        return "AMD EPYC 2nd Gen";
      case '3':
        return "AMD EPYC 3rd Gen";
      case '4':
        return "AMD EPYC 4th Gen";
      case '5':
        return "AMD EPYC 5th Gen";
      default:
        break;
    }
  }
  if (absl::StrContains(name, "Xeon(R) E-2") ||
      absl::StrContains(name, "Xeon E-2")) {
    return "Coffee Lake";
  }
  // Neoverse N1 (Graviton2, Ampere Altra).
  if (absl::StrContains(name, "Arm part 0xd0c")) return "AWS Graviton2";
  return "";
}

}  // namespace

std::string DetectMicroarchitecture(const CpuInfo& cpu) {
  std::string by_id;
  if (cpu.vendor == "GenuineIntel" && cpu.family == 6) {
    by_id = IntelByModel(cpu.model, cpu.stepping);
  } else if (cpu.vendor == "AuthenticAMD") {
    by_id = AmdByFamilyModel(cpu.family, cpu.model);
  }
  if (!by_id.empty()) return by_id;
  return ByModelName(cpu.model_name);
}

}  // namespace wattlens::power
