// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/pinning.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace wattlens {
namespace {

// FNV-1a: stable across processes and builds, unlike absl::Hash.
uint64_t Fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// bpffs names: libbpf's internal map names carry a dot (".bss").
std::string PinName(absl::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

std::string LinkName(absl::string_view prog) {
  return absl::StrCat("link_", prog);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0)
      continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Unlinks every pin in `dir`, then the directory. bpffs pins are files.
absl::Status RemoveDir(const std::string& dir) {
  for (const std::string& name : ListDir(dir)) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return absl::ErrnoToStatus(errno, absl::StrCat("unpinning ", path));
    }
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("removing ", dir));
  }
  return absl::OkStatus();
}

absl::Status EnsureRoot(const PinConfig& config) {
  if (config.require_bpffs) {
    const std::string parent =
        config.root.substr(0, config.root.find_last_of('/'));
    struct statfs fs;
    if (statfs(parent.empty() ? "/" : parent.c_str(), &fs) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("statfs ", parent));
    }
    if (fs.f_type != BPF_FS_MAGIC) {
      return absl::FailedPreconditionError(
          absl::StrCat(parent, " is not a bpffs mount"));
    }
  }
  if (mkdir(config.root.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", config.root));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view PinOutcomeName(PinOutcome o) {
  switch (o) {
    case PinOutcome::kOff:
      return "off";
    case PinOutcome::kFresh:
      return "fresh";
    case PinOutcome::kAdopted:
      return "adopted";
    case PinOutcome::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

absl::StatusOr<PinPlan> PlanPins(const std::string& root,
                                 absl::string_view concern,
                                 absl::string_view layout,
                                 const std::vector<std::string>& expected) {
  PinPlan plan;
  const std::string own = absl::StrCat(concern, "-", layout);
  plan.dir = absl::StrCat(root, "/", own);
  plan.reason = "none";
  const std::string prefix = absl::StrCat(concern, "-");
  for (const std::string& name : ListDir(root)) {
    if (!absl::StartsWith(name, prefix) || name == own) continue;
    // Another layout of this concern: its programs count into maps this
    // agent cannot read, so they go, and what they counted with them.
    const std::string dir = absl::StrCat(root, "/", name);
    if (absl::Status s = RemoveDir(dir); !s.ok()) return s;
    plan.removed.push_back(dir);
    plan.reason = "layout_changed";
  }
  struct stat st;
  if (stat(plan.dir.c_str(), &st) != 0) {
    if (mkdir(plan.dir.c_str(), 0700) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", plan.dir));
    }
    return plan;
  }
  const std::vector<std::string> present = ListDir(plan.dir);
  bool complete = !expected.empty();
  for (const std::string& name : expected) {
    if (!std::binary_search(present.begin(), present.end(), name)) {
      complete = false;
      break;
    }
  }
  if (complete) {
    plan.adopt = true;
    plan.reason = "none";
    return plan;
  }
  // Pinned by an agent that died while pinning, or emptied by hand: a
  // partial set cannot be trusted to have counted everything.
  if (absl::Status s = RemoveDir(plan.dir); !s.ok()) return s;
  if (mkdir(plan.dir.c_str(), 0700) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", plan.dir));
  }
  if (!present.empty()) {
    plan.removed.push_back(plan.dir);
    plan.reason = "incomplete";
  }
  return plan;
}

absl::StatusOr<int> RemovePins(const std::string& root,
                               absl::string_view concern) {
  int removed = 0;
  const std::string prefix = concern.empty() ? "" : absl::StrCat(concern, "-");
  for (const std::string& name : ListDir(root)) {
    if (!absl::StartsWith(name, prefix)) continue;
    const std::string dir = absl::StrCat(root, "/", name);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (absl::Status s = RemoveDir(dir); !s.ok()) return s;
    ++removed;
  }
  return removed;
}

std::unique_ptr<ObjectPins> ObjectPins::Prepare(const PinConfig& config,
                                                absl::string_view concern,
                                                bpf_object* obj,
                                                const void* elf,
                                                size_t elf_size,
                                                absl::string_view extra) {
  std::unique_ptr<ObjectPins> pins(new ObjectPins());
  if (!config.enabled) return pins;
  // The layout: the object's bytes and everything configured between open
  // and load that the kernel objects depend on.
  uint64_t h = Fnv1a(0xcbf29ce484222325ull, elf, elf_size);
  std::vector<std::string> expected;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (!bpf_map__autocreate(map)) continue;
    const std::string desc =
        absl::StrFormat("map %s %u %u", bpf_map__name(map),
                        bpf_map__max_entries(map), bpf_map__type(map));
    h = Fnv1a(h, desc.data(), desc.size());
    expected.push_back(PinName(bpf_map__name(map)));
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const bool attached =
        bpf_program__autoload(prog) && bpf_program__autoattach(prog);
    const std::string desc =
        absl::StrFormat("prog %s %d %d", bpf_program__name(prog),
                        bpf_program__autoload(prog), attached);
    h = Fnv1a(h, desc.data(), desc.size());
    if (attached) expected.push_back(LinkName(bpf_program__name(prog)));
  }
  h = Fnv1a(h, extra.data(), extra.size());
  std::sort(expected.begin(), expected.end());
  pins->layout_ = absl::StrFormat("%016x", h);

  absl::Status root = EnsureRoot(config);
  absl::StatusOr<PinPlan> plan =
      root.ok() ? PlanPins(config.root, concern, pins->layout_, expected)
                : absl::StatusOr<PinPlan>(root);
  if (!plan.ok()) {
    // A code for the metric's label; the message goes to the log.
    pins->outcome_ = PinOutcome::kUnavailable;
    pins->reason_ = absl::IsFailedPrecondition(plan.status()) ? "no_bpffs"
                                                               : "pin_failed";
    spdlog::warn("{}: BPF state not pinned ({}): an agent restart loses what "
                 "runs while no agent does",
                 std::string(concern), plan.status().ToString());
    return pins;
  }
  for (const std::string& dir : plan->removed) {
    spdlog::info("{}: unpinned {} ({})", std::string(concern), dir,
                 plan->reason);
  }
  pins->dir_ = plan->dir;
  pins->outcome_ = plan->adopt ? PinOutcome::kAdopted : PinOutcome::kFresh;
  pins->reason_ = plan->reason;
  bpf_object__for_each_map(map, obj) {
    if (!bpf_map__autocreate(map)) continue;
    const std::string path =
        absl::StrCat(pins->dir_, "/", PinName(bpf_map__name(map)));
    if (int err = bpf_map__set_pin_path(map, path.c_str())) {
      pins->outcome_ = PinOutcome::kUnavailable;
      pins->reason_ = "pin_failed";
      spdlog::warn("{}: BPF state not pinned (pin path {}: {})",
                   std::string(concern), path, strerror(-err));
      return pins;
    }
  }
  return pins;
}

ObjectPins::~ObjectPins() {
  // Closing a pinned link leaves it attached: the pin holds it.
  for (bpf_link* l : links_) bpf_link__destroy(l);
}

std::string ObjectPins::LinkPath(absl::string_view prog) const {
  return absl::StrCat(dir_, "/", LinkName(prog));
}

absl::Status ObjectPins::Attach(bpf_object* obj) {
  bool pinning = outcome_ == PinOutcome::kFresh;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog))
      continue;
    const std::string path = LinkPath(bpf_program__name(prog));
    if (outcome_ == PinOutcome::kAdopted) {
      // The earlier agent's program keeps counting; attaching this one as
      // well would count every event twice.
      bpf_link* link = bpf_link__open(path.c_str());
      if (!link) {
        return absl::ErrnoToStatus(errno,
                                   absl::StrCat("opening pinned link ", path));
      }
      links_.push_back(link);
      continue;
    }
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      return LibbpfError(-errno,
                         absl::StrCat("attaching ", bpf_program__name(prog)));
    }
    links_.push_back(link);
    if (pinning) {
      if (int err = bpf_link__pin(link, path.c_str())) {
        // Soft: this agent counts as before, the next one starts fresh.
        outcome_ = PinOutcome::kUnavailable;
        reason_ = "pin_failed";
        spdlog::warn("BPF state not pinned: pinning link {}: {}", path,
                     strerror(-err));
        if (absl::Status s = RemoveDir(dir_); !s.ok()) {
          spdlog::warn("{}", s.ToString());
        }
        pinning = false;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace wattlens
