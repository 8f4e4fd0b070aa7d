// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/sched_program.h"

#include <bpf/bpf.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/bpf/libbpf_log.h"
#include "agent/common/status_macros.h"
#include "exe.skel.h"
#include "sched.skel.h"
#include "sched_nokfunc.skel.h"
#include "spdlog/spdlog.h"

namespace wattlens {

namespace {

// The sched skeleton opened on one of the two builds of sched.bpf.c: with the
// task kfuncs (sampled needs them) or without (sched_switch, loadable without
// CAP_SYS_ADMIN where vmlinux lacks them). Both come from one source, so
// their maps, programs and read-only data match the skeleton's by name and
// layout (the BPF tests run sched_switch, and its read-only settings, from
// the other build). nullptr with errno set.
sched_bpf* OpenSched(bool kfuncs) {
  auto* skel = static_cast<sched_bpf*>(calloc(1, sizeof(sched_bpf)));
  if (!skel) {
    errno = ENOMEM;
    return nullptr;
  }
  int err = sched_bpf__create_skeleton(skel);
  if (!err && !kfuncs) {
    skel->skeleton->data = const_cast<void*>(
        sched_nokfunc_bpf__elf_bytes(&skel->skeleton->data_sz));
  }
  if (!err) err = bpf_object__open_skeleton(skel->skeleton, nullptr);
  if (err) {
    sched_bpf__destroy(skel);
    errno = -err;
    return nullptr;
  }
  return skel;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchedProgram>> SchedProgram::Create(
    const SchedProgramConfig& config, int ncpus, EventFn on_event) {
  if (config.ringbuf_bytes < 4096 ||
      (config.ringbuf_bytes & (config.ringbuf_bytes - 1))) {
    return absl::InvalidArgumentError(
        "ring buffer size must be a power of two of at least 4096 bytes");
  }
  const bool sampled = config.cpu_time_source == CpuTimeSource::kSampled;
  sched_bpf* skel = OpenSched(/*kfuncs=*/sampled);
  if (!skel) return absl::ErrnoToStatus(errno, "opening sched BPF object");
  std::unique_ptr<SchedProgram> owner(
      new SchedProgram(skel, ncpus, config, std::move(on_event)));
  skel->rodata->wakeup_bytes = config.ringbuf_bytes / 4;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);  // the clock of task->start_time
  skel->rodata->load_ns = now.tv_sec * 1'000'000'000ull + now.tv_nsec;
  skel->rodata->exe_paths = config.exe_paths;
  // Only the chosen source's programs are loaded. The iterator and the
  // harvest run on demand (SampleAll, HarvestRunning).
  bpf_program__set_autoload(skel->progs.wl_sched_sample, sampled);
  bpf_program__set_autoload(skel->progs.wl_sched_free, sampled);
  bpf_program__set_autoload(skel->progs.wl_sched_exit, sampled);
  bpf_program__set_autoload(skel->progs.wl_sched_switch, !sampled);
  bpf_program__set_autoload(skel->progs.wl_sched_harvest, !sampled);
  bpf_program__set_autoattach(skel->progs.wl_sched_sample, false);
  bpf_program__set_autoattach(skel->progs.wl_sched_harvest, false);
  // The held exiting threads (kptrs) only exist for sampled, so that
  // sched_switch still loads on kernels without task kptrs.
  bpf_map__set_autocreate(skel->maps.dying, sampled);
  bpf_map__set_autocreate(skel->maps.held_threads, sampled);
  if (config.dying_entries == 0) {
    return absl::InvalidArgumentError("the dying-thread map needs entries");
  }
  int err = bpf_map__set_max_entries(skel->maps.oncpu, config.map_entries);
  if (!err) {
    err = bpf_map__set_max_entries(skel->maps.dying, config.dying_entries);
  }
  if (!err) {
    err =
        bpf_map__set_max_entries(skel->maps.held_threads, config.dying_entries);
  }
  if (!err) {
    err = bpf_map__set_max_entries(skel->maps.events, config.ringbuf_bytes);
  }
  if (err) return LibbpfError(err, "sizing sched maps");
  // load_ns is left out of the layout: adopted, the programs keep the
  // pinned read-only data, and with it the first agent's load time, so a
  // thread that started while no agent ran is charged from its start.
  const void* elf = skel->skeleton->data;
  const size_t elf_size = skel->skeleton->data_sz;
  owner->pins_ = ObjectPins::Prepare(
      config.pin, "sched", skel->obj, elf, elf_size,
      absl::StrCat(CpuTimeSourceName(config.cpu_time_source), " ",
                   config.ringbuf_bytes, config.exe_paths ? " exe" : ""));
  LibbpfLogCapture log;
  if ((err = sched_bpf__load(skel))) {
    return log.Error(
        err, absl::StrCat("loading the sched BPF object (",
                          CpuTimeSourceName(config.cpu_time_source), ")"));
  }
  owner->rb_ =
      ring_buffer__new(bpf_map__fd(skel->maps.events),
                       &SchedProgram::HandleRecord, owner.get(), nullptr);
  if (!owner->rb_)
    return absl::ErrnoToStatus(errno, "creating ring buffer reader");
  RETURN_IF_ERROR(owner->pins_->Attach(skel->obj));
  if (sampled) {
    owner->iter_link_ =
        bpf_program__attach_iter(skel->progs.wl_sched_sample, nullptr);
    if (!owner->iter_link_) {
      return absl::ErrnoToStatus(errno, "attaching the task iterator");
    }
    // The baseline of every thread that predates the agent, so that only
    // one ending before this loses what it ran since the load.
    owner->SampleAll();
    if (!owner->harvest_error_.empty()) {
      return absl::UnavailableError(owner->harvest_error_);
    }
  }
  return owner;
}

SchedProgram::~SchedProgram() {
  // Detach first so nothing writes into the ring while it is torn down.
  bpf_link__destroy(iter_link_);
  pins_.reset();
  sched_bpf__detach(skel_);
  ring_buffer__free(rb_);
  sched_bpf__destroy(skel_);
}

std::optional<std::string> ExePathFromWire(const wl_exe_path& p) {
  if (p.truncated || p.len == 0 || p.len > sizeof(p.names)) return std::nullopt;
  std::vector<absl::string_view> names;
  absl::string_view all(p.names, p.len);
  while (!all.empty()) {
    const size_t end = all.find('\0');
    names.push_back(all.substr(0, end));
    if (end == absl::string_view::npos) break;
    all.remove_prefix(end + 1);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    absl::StrAppend(&path, "/", *it);
  }
  return path;
}

int SchedProgram::HandleRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<SchedProgram*>(ctx);
  if (size < sizeof(wl_event)) {
    ++self->short_records_;
    return 0;
  }
  wl_event e;
  std::memcpy(&e, data, sizeof(e));
  if (e.type == WL_EVENT_EXEC && size >= sizeof(wl_exec_event) &&
      self->on_exe_) {
    const auto* exe = &static_cast<const wl_exec_event*>(data)->exe;
    if (std::optional<std::string> path = ExePathFromWire(*exe)) {
      self->on_exe_(e.tgid, e.start_ns, e.timestamp_ns, *std::move(path));
    } else if (exe->truncated) {
      ++self->exe_unusable_;
    }
  }
  self->on_event_(e);
  return 0;
}

absl::StatusOr<int> SchedProgram::ScanExecutables(const ExeFn& fn) {
  // An object of its own, loaded for the scan only (bpf/exe.bpf.c): a
  // verifier that refuses it costs the scan, never the sched source.
  std::unique_ptr<exe_bpf, void (*)(exe_bpf*)> exe(exe_bpf__open(),
                                                    exe_bpf__destroy);
  if (!exe) return absl::ErrnoToStatus(errno, "opening the exe BPF object");
  {
    LibbpfLogCapture log;
    if (int err = exe_bpf__load(exe.get())) {
      return log.Error(err, "loading the exe BPF object");
    }
  }
  bpf_link* link = bpf_program__attach_iter(exe->progs.wl_exe_scan, nullptr);
  if (!link) return absl::ErrnoToStatus(errno, "attaching the exe iterator");
  const int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) {
    const int err = errno;
    bpf_link__destroy(link);
    return absl::ErrnoToStatus(err, "creating the exe iterator");
  }
  // The seq file hands out whole records; a read returns as many as fit.
  std::vector<char> buf(64 * sizeof(wl_exe_record));
  std::string pending;
  int named = 0;
  absl::Status status;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, "reading the exe iterator");
      break;
    }
    if (n == 0) break;
    pending.append(buf.data(), static_cast<size_t>(n));
    size_t off = 0;
    for (; off + sizeof(wl_exe_record) <= pending.size();
         off += sizeof(wl_exe_record)) {
      wl_exe_record r;
      std::memcpy(&r, pending.data() + off, sizeof(r));
      if (std::optional<std::string> path = ExePathFromWire(r.exe)) {
        fn(r.tgid, r.start_ns, 0, *std::move(path));
        ++named;
      } else if (r.exe.truncated) {
        ++exe_unusable_;
      }
    }
    pending.erase(0, off);
  }
  close(fd);
  bpf_link__destroy(link);
  if (!status.ok()) return status;
  return named;
}

absl::StatusOr<int> SchedProgram::PollEvents(int timeout_ms) {
  // Records are submitted without wake-ups, so epoll usually times out
  // having consumed nothing: drain explicitly after the wait.
  int n = ring_buffer__poll(rb_, timeout_ms);
  if (n < 0 && n != -EINTR) return LibbpfError(n, "polling ring buffer");
  int m = ring_buffer__consume(rb_);
  if (m < 0) return LibbpfError(m, "consuming ring buffer");
  return (n < 0 ? 0 : n) + m;
}

absl::StatusOr<int> SchedProgram::ConsumeEvents() {
  int n = ring_buffer__consume(rb_);
  if (n < 0) return LibbpfError(n, "consuming ring buffer");
  return n;
}

void SchedProgram::SampleAll() {
  if (!harvest_error_.empty()) return;
  // Each read() runs the program over a batch of threads; the program
  // writes nothing to the seq file, so reads return 0 at the end.
  const int fd = bpf_iter_create(bpf_link__fd(iter_link_));
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        break;
      }
    }
    close(fd);
  }
  if (!err) return;
  harvest_error_ =
      absl::StrCat("threads are not sampled (task iterator: ", strerror(err),
                   "): on-CPU time arrives when a thread is freed; exiting "
                   "threads already held lose their last slice");
  spdlog::warn("sched: {}", harvest_error_);
}

void SchedProgram::HarvestRunning() {
  if (config_.cpu_time_source == CpuTimeSource::kSampled) {
    SampleAll();
    return;
  }
  if (!harvest_error_.empty()) return;
  const int fd = bpf_program__fd(skel_->progs.wl_sched_harvest);
  for (int cpu = 0; cpu < ncpus_; ++cpu) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.flags = BPF_F_TEST_RUN_ON_CPU;
    opts.cpu = cpu;
    if (bpf_prog_test_run_opts(fd, &opts) == 0) continue;
    const int err = errno;
    if (err == ENXIO) continue;  // a possible CPU that is offline
    harvest_error_ = absl::StrCat(
        "running slices are not harvested (BPF_PROG_TEST_RUN on CPU ", cpu,
        ": ", strerror(err), "): on-CPU time arrives at switch-out");
    spdlog::warn("sched: {}", harvest_error_);
    return;
  }
}

absl::Status SchedProgram::ReadOnCpu(
    const std::function<void(const wl_sched_key&, uint64_t)>& fn,
    MapReadStats* stats) {
  HarvestRunning();
  return ReadPerCpuMap<wl_sched_key, uint64_t>(
      bpf_map__fd(skel_->maps.oncpu), ncpus_, config_.map_entries, fn, stats);
}

absl::Status SchedProgram::ReadOnCpuPerCpu(
    const std::function<void(const wl_sched_key&, uint64_t, const uint64_t*)>&
        fn,
    MapReadStats* stats) {
  HarvestRunning();
  std::vector<uint64_t> values(ncpus_);
  return ForEachMapEntry(
      bpf_map__fd(skel_->maps.oncpu), sizeof(wl_sched_key), sizeof(uint64_t),
      /*per_cpu=*/true, ncpus_, config_.map_entries,
      [&](const void* kp, const void* vp) {
        wl_sched_key key;
        std::memcpy(&key, kp, sizeof(key));
        std::memcpy(values.data(), vp, values.size() * sizeof(uint64_t));
        uint64_t sum = 0;
        for (uint64_t v : values) sum += v;
        fn(key, sum, values.data());
      },
      stats);
}

absl::Status SchedProgram::DeleteKeys(const std::vector<wl_sched_key>& keys) {
  return DeleteMapKeys(bpf_map__fd(skel_->maps.oncpu), keys.data(),
                       sizeof(wl_sched_key), keys.size());
}

absl::StatusOr<DropCounts> SchedProgram::ReadDrops() {
  return ReadDropCounts(skel_->maps.drops, ncpus_);
}

std::vector<ProgramStats> SchedProgram::ReadProgramStats() {
  return wattlens::ReadProgramStats(skel_->obj);
}

}  // namespace wattlens
