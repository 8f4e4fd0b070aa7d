// SPDX-License-Identifier: Apache-2.0
// Keeps a BPF object counting while no agent runs: its maps and the links of
// its attached programs are pinned in bpffs under
// <root>/<concern>-<layout>/, and the next agent adopts them instead of
// loading afresh, so an agent restart or upgrade leaves the kernel's
// counters running (Cilium keeps its datapath across agent restarts the same
// way).
//
// <layout> hashes the object's ELF bytes and its configuration (map sizes,
// programs loaded, read-only data). Adopted links keep running the programs
// of the agent that pinned them, so only an identical object may adopt them;
// a changed one (a new map layout, new program code or other map sizes)
// unpins the old set and starts fresh, and says so (PinOutcome::kFresh with
// reason "layout_changed"). A set found incomplete (a crash while pinning)
// is removed as well. Pinning fails soft: without bpffs the object loads
// unpinned and the outcome says why.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct bpf_object;
struct bpf_link;

namespace wattlens {

struct PinConfig {
  bool enabled = false;
  // bpffs directory owned by the agent (created when missing; its parent
  // must be a bpffs mount unless `require_bpffs` is false, for tests).
  std::string root = "/sys/fs/bpf/wattlens";
  bool require_bpffs = true;
};

enum class PinOutcome {
  kOff,          // pinning disabled (--bpf_pin=false)
  kFresh,        // loaded and pinned anew (reason: none, layout_changed,
                 // incomplete)
  kAdopted,      // the pinned maps and links of an earlier agent are in use
                 // (reason: none)
  kUnavailable,  // pinning wanted but impossible (reason: no_bpffs,
                 // pin_failed; the log has the error)
};
absl::string_view PinOutcomeName(PinOutcome o);

// What Prepare decided for one concern, from the directory alone (no BPF):
// split out so that it is testable on any filesystem.
struct PinPlan {
  std::string dir;  // <root>/<concern>-<layout>
  bool adopt = false;
  std::string reason;  // none; for a fresh start layout_changed, incomplete
  std::vector<std::string> removed;  // directories unpinned
};

// Decides adopt vs fresh for `concern` at `layout`: every sibling
// <concern>-<other> directory is removed (its pins unlinked, which detaches
// links nobody else holds); the own directory is adopted when it holds every
// name in `expected`, else emptied for a fresh set.
absl::StatusOr<PinPlan> PlanPins(const std::string& root,
                                 absl::string_view concern,
                                 absl::string_view layout,
                                 const std::vector<std::string>& expected);

// Removes every <concern>-* directory under `root` (or all with an empty
// `concern`): --bpf_unpin. Returns how many directories were removed.
absl::StatusOr<int> RemovePins(const std::string& root,
                               absl::string_view concern = "");

// Owns the links of one BPF object, pinned or adopted.
class ObjectPins {
 public:
  // Between open (configured) and load: hashes the object, plans, and sets
  // the maps' pin paths (libbpf then reuses pinned maps at load, or pins
  // the new ones). `extra` is configuration not visible in the object
  // (read-only values that differ between instances are left out of it).
  // `elf` is the skeleton's embedded object.
  static std::unique_ptr<ObjectPins> Prepare(const PinConfig& config,
                                             absl::string_view concern,
                                             bpf_object* obj, const void* elf,
                                             size_t elf_size,
                                             absl::string_view extra);
  ~ObjectPins();
  ObjectPins(const ObjectPins&) = delete;
  ObjectPins& operator=(const ObjectPins&) = delete;

  // After load: attaches every loaded auto-attach program (pinning its link
  // when pinning) or, adopted, opens the pinned links instead. Closing them
  // (the destructor) detaches only unpinned links.
  absl::Status Attach(bpf_object* obj);

  PinOutcome outcome() const { return outcome_; }
  const std::string& reason() const { return reason_; }
  const std::string& layout() const { return layout_; }

 private:
  ObjectPins() = default;
  std::string LinkPath(absl::string_view prog) const;

  PinOutcome outcome_ = PinOutcome::kOff;
  std::string reason_;
  std::string layout_;
  std::string dir_;
  std::vector<bpf_link*> links_;
};

}  // namespace wattlens
