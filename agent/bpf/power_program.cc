// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/power_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/bpf/network_program.h"  // KernelHasTracepoint
#include "agent/common/status_macros.h"
#include "power.skel.h"
#include "spdlog/spdlog.h"

namespace wattlens {
namespace {

// Above any real CPU clock: a torn read of the counters, not a frequency.
constexpr uint64_t kMaxPlausibleKhz = 20'000'000;

std::optional<uint64_t> NominalKhz(absl::string_view model_name) {
  // "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"
  size_t at = model_name.rfind('@');
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest =
      absl::StripAsciiWhitespace(model_name.substr(at + 1));
  double scale = 0;
  if (absl::EndsWith(rest, "GHz")) {
    scale = 1e6;
  } else if (absl::EndsWith(rest, "MHz")) {
    scale = 1e3;
  } else {
    return std::nullopt;
  }
  rest.remove_suffix(3);
  std::optional<double> v = power::ParseDouble(rest);
  if (!v || *v <= 0) return std::nullopt;
  return static_cast<uint64_t>(std::llround(*v * scale));
}

}  // namespace

absl::string_view FrequencySourceName(FrequencySource source) {
  switch (source) {
    case FrequencySource::kNone:
      return "none";
    case FrequencySource::kTracepoint:
      return "tracepoint";
    case FrequencySource::kCpufreqCur:
      return "cpufreq-sysfs";
    case FrequencySource::kCpufreqMax:
      return "cpufreq-max";
    case FrequencySource::kCpuinfoMhz:
      return "cpuinfo-mhz";
    case FrequencySource::kNominal:
      return "nominal";
  }
  return "none";
}

std::vector<CpuFrequency> ParseCpuinfoFrequencies(absl::string_view text,
                                                  int ncpus) {
  std::vector<CpuFrequency> out(ncpus > 0 ? ncpus : 0);
  int cpu = -1;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, colon));
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (key == "processor") {
      if (!absl::SimpleAtoi(value, &cpu)) cpu = -1;
      continue;
    }
    if (cpu < 0 || cpu >= static_cast<int>(out.size())) continue;
    if (key == "cpu MHz") {
      std::optional<double> mhz = power::ParseDouble(value);
      if (mhz && *mhz > 0) {
        out[cpu] = {static_cast<uint64_t>(std::llround(*mhz * 1000)),
                    FrequencySource::kCpuinfoMhz};
      }
    } else if (key == "model name" &&
               out[cpu].source != FrequencySource::kCpuinfoMhz) {
      if (std::optional<uint64_t> khz = NominalKhz(value)) {
        out[cpu] = {*khz, FrequencySource::kNominal};
      }
    }
  }
  return out;
}

std::vector<CpuFrequency> ReadFallbackFrequencies(
    const power::FileSystem& fs, int ncpus,
    std::vector<CpuFrequency>* cpuinfo) {
  std::vector<CpuFrequency> out(ncpus > 0 ? ncpus : 0);
  bool need_cpuinfo = false;
  for (int cpu = 0; cpu < ncpus; ++cpu) {
    const std::string dir =
        absl::StrCat("/sys/devices/system/cpu/cpu", cpu, "/cpufreq/");
    absl::StatusOr<uint64_t> cur =
        power::ReadUint64(fs, dir + "scaling_cur_freq");
    if (cur.ok() && *cur > 0) {
      out[cpu] = {*cur, FrequencySource::kCpufreqCur};
      continue;
    }
    absl::StatusOr<uint64_t> max =
        power::ReadUint64(fs, dir + "cpuinfo_max_freq");
    if (max.ok() && *max > 0) {
      out[cpu] = {*max, FrequencySource::kCpufreqMax};
      continue;
    }
    need_cpuinfo = true;
  }
  if (!need_cpuinfo) return out;
  std::vector<CpuFrequency> parsed;
  if (cpuinfo && !cpuinfo->empty()) {
    parsed = *cpuinfo;
  } else {
    absl::StatusOr<std::string> text = fs.ReadFile("/proc/cpuinfo");
    if (text.ok()) parsed = ParseCpuinfoFrequencies(*text, ncpus);
    if (cpuinfo) *cpuinfo = parsed;
  }
  for (int cpu = 0; cpu < ncpus && cpu < static_cast<int>(parsed.size());
       ++cpu) {
    if (out[cpu].source == FrequencySource::kNone) out[cpu] = parsed[cpu];
  }
  return out;
}

PowerProgram::PowerProgram(const PowerProgramConfig& config, int ncpus,
                           const Clock& clock)
    : config_(config),
      ncpus_(ncpus),
      clock_(clock),
      fs_(std::make_shared<power::RootedFileSystem>(config.fs_root,
                                                    config.proc_root)),
      last_(ncpus > 0 ? ncpus : 0) {}

absl::StatusOr<std::unique_ptr<PowerProgram>> PowerProgram::Create(
    const PowerProgramConfig& config, int ncpus, const Clock& clock) {
  if (ncpus <= 0) return absl::InvalidArgumentError("no possible CPUs");
  std::unique_ptr<PowerProgram> owner(new PowerProgram(config, ncpus, clock));
  if (config.load_bpf) {
    // Probe features, not versions.
    const bool freq = KernelHasTracepoint("cpu_frequency");
    const bool idle = KernelHasTracepoint("cpu_idle");
    std::vector<std::string> missing;
    if (!freq) missing.push_back("power:cpu_frequency");
    if (!idle) missing.push_back("power:cpu_idle");
    if (!missing.empty()) {
      owner->missing_tracepoints_ =
          absl::StrCat("kernel lacks ", absl::StrJoin(missing, " and "));
    }
    if (freq || idle) {
      power_bpf* skel = power_bpf__open();
      if (!skel) return absl::ErrnoToStatus(errno, "opening power BPF object");
      owner->skel_ = skel;
      bpf_program__set_autoload(skel->progs.wl_cpu_frequency, freq);
      bpf_program__set_autoload(skel->progs.wl_cpu_idle, idle);
      int err = bpf_map__set_max_entries(skel->maps.cpu_power, ncpus);
      if (err) return LibbpfError(err, "sizing cpu_power");
      if ((err = power_bpf__load(skel))) {
        return LibbpfError(err, "loading power BPF object (verifier)");
      }
      if ((err = power_bpf__attach(skel))) {
        return LibbpfError(err, "attaching power tracepoints");
      }
    }
  }
  owner->Sample();  // the baseline: the first real sample is a delta
  owner->samples_ = 0;
  return owner;
}

PowerProgram::~PowerProgram() {
  if (skel_) power_bpf__destroy(skel_);
}

std::vector<ProgramStats> PowerProgram::ReadProgramStats() {
  if (!skel_) return {};
  return wattlens::ReadProgramStats(skel_->obj);
}

PowerInterval PowerProgram::Sample() {
  const int64_t now = clock_.MonotonicNs();
  PowerInterval out;
  out.interval_ns = last_ns_ ? now - last_ns_ : 0;
  last_ns_ = now;
  const uint64_t unow = static_cast<uint64_t>(now);

  std::vector<wl_cpu_power> v(ncpus_);
  if (skel_) {
    const int fd = bpf_map__fd(skel_->maps.cpu_power);
    for (uint32_t cpu = 0; cpu < static_cast<uint32_t>(ncpus_); ++cpu) {
      if (bpf_map_lookup_elem(fd, &cpu, &v[cpu]) != 0) v[cpu] = {};
    }
  }
  bool need_fallback = false;
  for (const wl_cpu_power& p : v) need_fallback |= p.freq_changes == 0;
  std::vector<CpuFrequency> fallback;
  if (need_fallback) {
    if (config_.cpuinfo_refresh_every &&
        samples_ % config_.cpuinfo_refresh_every == 0) {
      cpuinfo_.clear();
    }
    fallback = ReadFallbackFrequencies(*fs_, ncpus_, &cpuinfo_);
  }
  ++samples_;

  int fallback_cpus = 0;
  std::array<int, 6> by_source{};
  for (int cpu = 0; cpu < ncpus_; ++cpu) {
    const wl_cpu_power& p = v[cpu];
    Last& l = last_[cpu];
    uint64_t khz_us = p.khz_us;
    if (p.khz && unow > p.khz_since_ns) {
      khz_us += p.khz * ((unow - p.khz_since_ns) / 1000);
    }
    uint64_t idle_ns = p.idle_ns;
    if (p.idle_since_ns && unow > p.idle_since_ns) {
      idle_ns += unow - p.idle_since_ns;
    }
    CpuInterval c;
    if (p.freq_changes == 0) {
      c.khz = fallback[cpu].khz;
      c.source = fallback[cpu].source;
      ++fallback_cpus;
    } else {
      c.source = FrequencySource::kTracepoint;
      // Counters wrap modulo 2^64: unsigned differences.
      const uint64_t busy_us = (p.busy_ns - l.busy_ns) / 1000;
      const uint64_t wall_us =
          out.interval_ns > 0 ? static_cast<uint64_t>(out.interval_ns) / 1000
                              : 0;
      if (busy_us > 0) {
        c.khz = (p.busy_khz_us - l.busy_khz_us) / busy_us;
      } else if (l.khz && wall_us > 0) {
        c.khz = (khz_us - l.khz_us) / wall_us;
      }
      if (c.khz == 0 || c.khz > kMaxPlausibleKhz) c.khz = p.khz;
    }
    if (p.idle_entries > 0) out.idle_tracked = true;
    // A torn read may look like a step back: count nothing then.
    c.idle_ns = idle_ns >= l.idle_ns ? idle_ns - l.idle_ns : 0;
    if (out.interval_ns > 0) {
      c.idle_ns = std::min<uint64_t>(c.idle_ns, out.interval_ns);
    }
    c.idle_entries =
        p.idle_entries >= l.idle_entries ? p.idle_entries - l.idle_entries : 0;
    l.khz_us = khz_us;
    l.busy_ns = p.busy_ns;
    l.busy_khz_us = p.busy_khz_us;
    l.idle_ns = std::max(l.idle_ns, idle_ns);
    l.idle_entries = std::max<uint64_t>(l.idle_entries, p.idle_entries);
    l.khz = p.khz;
    out.idle_ns_total += l.idle_ns;
    out.idle_entries_total += l.idle_entries;
    out.freq_changes_total += p.freq_changes;
    ++by_source[static_cast<int>(c.source)];
    out.cpus.push_back(c);
  }

  // Mean frequency, weighted by busy time where idle residency is known.
  unsigned __int128 num = 0, den = 0;
  uint64_t lo = ~uint64_t{0}, hi = 0;
  for (const CpuInterval& c : out.cpus) {
    if (!c.khz) continue;
    uint64_t w = 1;
    if (out.idle_tracked && out.interval_ns > 0) {
      w = static_cast<uint64_t>(out.interval_ns) - c.idle_ns;
    }
    num += static_cast<unsigned __int128>(c.khz) * w;
    den += w;
    lo = std::min(lo, c.khz);
    hi = std::max(hi, c.khz);
  }
  if (den == 0) {  // every CPU idle all interval: plain mean
    for (const CpuInterval& c : out.cpus) {
      if (c.khz) {
        num += c.khz;
        ++den;
      }
    }
  }
  out.mean_khz = den ? static_cast<uint64_t>(num / den) : 0;
  out.uniform = hi == 0 || (hi - lo) * 100 <= hi;
  out.source = static_cast<FrequencySource>(
      std::max_element(by_source.begin(), by_source.end()) - by_source.begin());

  std::vector<std::string> notes;
  if (!config_.load_bpf) notes.push_back("power BPF not loaded");
  if (!missing_tracepoints_.empty()) notes.push_back(missing_tracepoints_);
  if (fallback_cpus > 0) {
    FrequencySource fb = FrequencySource::kNone;
    for (const CpuFrequency& f : fallback) {
      if (f.source != FrequencySource::kNone) {
        fb = f.source;
        break;
      }
    }
    out.fallback_cpus = fallback_cpus;
    out.fallback_source = fb;
    notes.push_back(absl::StrCat(
        "power:cpu_frequency has not fired on ", fallback_cpus, " of ", ncpus_,
        " CPUs (no cpufreq driver, e.g. a VM): frequency from ",
        fb == FrequencySource::kNone ? "nowhere (CPU time unweighted)"
                                     : FrequencySourceName(fb)));
  }
  if (skel_ && !out.idle_tracked) {
    notes.push_back(
        "power:cpu_idle has not fired (idle outside cpuidle, e.g. a VM): no "
        "idle residency");
  }
  std::string reason = absl::StrJoin(notes, "; ");
  if (reason != degraded_ && !reason.empty()) {
    spdlog::info("power: {}", reason);
  }
  degraded_ = std::move(reason);
  return out;
}

}  // namespace wattlens
