// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/cgroup_path_parser.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

using ::testing::HasSubstr;

constexpr char kId[] =
    "7b5d0c4a2f1e3d6b8a9c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d";
constexpr char kId2[] =
    "e3c1b5a7d9f0214365879a0bcdef0123456789abcdef0123456789abcdef0123";
constexpr char kUid[] = "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08";
constexpr char kUidUnderscore[] = "0f4c7a2e_93d1_4b6a_8e25_1c7d9b3f6a08";
// Static pods: the kubelet's config hash, 32 hex digits.
constexpr char kStaticHash[] = "5b3c1f0d2e4a69788c7b6a5d4e3f2a1b";

struct Case {
  std::string name;
  std::string path;
  CgroupKind kind;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  CgroupDriver driver = CgroupDriver::kUnknown;
  QosClass qos = QosClass::kUnknown;
  std::string container_id = "";
  std::string pod_uid = "";
  std::string unit = "";
  bool monitor = false;
};

std::string SdPod(absl::string_view qos) {
  if (qos.empty()) {
    return absl::StrCat("/kubepods.slice/kubepods-pod", kUidUnderscore,
                        ".slice");
  }
  return absl::StrCat("/kubepods.slice/kubepods-", qos, ".slice/kubepods-", qos,
                      "-pod", kUidUnderscore, ".slice");
}

std::string FsPod(absl::string_view qos) {
  if (qos.empty()) return absl::StrCat("/kubepods/pod", kUid);
  return absl::StrCat("/kubepods/", qos, "/pod", kUid);
}

std::vector<Case> Cases() {
  using K = CgroupKind;
  using R = ContainerRuntime;
  using D = CgroupDriver;
  using Q = QosClass;
  std::vector<Case> c = {
      // systemd driver, each runtime, each QoS class.
      {"containerd_systemd_burstable",
       SdPod("burstable") + "/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kBurstable, kId, kUid},
      {"containerd_systemd_besteffort",
       SdPod("besteffort") + "/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kBestEffort, kId,
       kUid},
      {"containerd_systemd_guaranteed",
       SdPod("") + "/cri-containerd-" + kId + ".scope", K::kPodContainer,
       R::kContainerd, D::kSystemd, Q::kGuaranteed, kId, kUid},
      {"crio_systemd", SdPod("burstable") + "/crio-" + kId + ".scope",
       K::kPodContainer, R::kCrio, D::kSystemd, Q::kBurstable, kId, kUid},
      {"crio_systemd_nested_container_cgroup",
       SdPod("besteffort") + "/crio-" + kId + ".scope/container",
       K::kPodContainer, R::kCrio, D::kSystemd, Q::kBestEffort, kId, kUid},
      {"crio_conmon_systemd",
       SdPod("burstable") + "/crio-conmon-" + kId + ".scope", K::kPodContainer,
       R::kCrio, D::kSystemd, Q::kBurstable, kId, kUid, "", true},
      {"docker_systemd_cri_dockerd",
       SdPod("burstable") + "/docker-" + kId + ".scope", K::kPodContainer,
       R::kDocker, D::kSystemd, Q::kBurstable, kId, kUid},
      {"podman_systemd_in_pod_slice", SdPod("") + "/libpod-" + kId + ".scope",
       K::kPodContainer, R::kPodman, D::kSystemd, Q::kGuaranteed, kId, kUid},
      // cgroupfs driver: containerd and Docker use the bare id.
      {"containerd_cgroupfs_burstable", FsPod("burstable") + "/" + kId,
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kBurstable, kId, kUid},
      {"docker_cgroupfs_besteffort", FsPod("besteffort") + "/" + kId,
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kBestEffort, kId, kUid},
      {"containerd_cgroupfs_guaranteed", FsPod("") + "/" + kId,
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kGuaranteed, kId, kUid},
      {"crio_cgroupfs", FsPod("burstable") + "/crio-" + kId, K::kPodContainer,
       R::kCrio, D::kCgroupfs, Q::kBurstable, kId, kUid},
      {"crio_conmon_cgroupfs", FsPod("burstable") + "/crio-conmon-" + kId,
       K::kPodContainer, R::kCrio, D::kCgroupfs, Q::kBurstable, kId, kUid, "",
       true},
      {"podman_cgroupfs_in_pod", FsPod("") + "/libpod-" + kId, K::kPodContainer,
       R::kPodman, D::kCgroupfs, Q::kGuaranteed, kId, kUid},
      // Pod-level and QoS-level cgroups.
      {"pod_level_systemd", SdPod("burstable"), K::kPod, R::kUnknown,
       D::kSystemd, Q::kBurstable, "", kUid},
      {"pod_level_cgroupfs", FsPod("besteffort"), K::kPod, R::kUnknown,
       D::kCgroupfs, Q::kBestEffort, "", kUid},
      {"static_pod_hash_systemd",
       std::string("/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod") +
           kStaticHash + ".slice/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kBurstable, kId,
       kStaticHash},
      {"qos_slice", "/kubepods.slice/kubepods-burstable.slice", K::kPodQosLevel,
       R::kUnknown, D::kSystemd, Q::kBurstable},
      {"kubepods_slice", "/kubepods.slice", K::kPodQosLevel, R::kUnknown,
       D::kSystemd, Q::kUnknown},
      {"kubepods_cgroupfs_besteffort", "/kubepods/besteffort", K::kPodQosLevel,
       R::kUnknown, D::kCgroupfs, Q::kBestEffort},
      {"pod_with_unrecognised_child", FsPod("burstable") + "/not-a-container",
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kBurstable, "", kUid},
      // Nesting prefixes: kind (cgroupRoot /kubelet), kind seen from the
      // host (inside the node's Docker container), k3d, custom cgroup root.
      {"kind_node_view",
       std::string("/kubelet.slice/kubelet-kubepods.slice/"
                   "kubelet-kubepods-besteffort.slice/"
                   "kubelet-kubepods-besteffort-pod") +
           kUidUnderscore + ".slice/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kBestEffort, kId,
       kUid},
      {"kind_host_view",
       std::string("/system.slice/docker-") + kId2 +
           ".scope/kubelet.slice/kubelet-kubepods.slice/"
           "kubelet-kubepods-pod" +
           kUidUnderscore + ".slice/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kGuaranteed, kId,
       kUid},
      {"k3d_cgroupfs_in_docker",
       std::string("/docker/") + kId2 + "/kubepods/burstable/pod" + kUid + "/" +
           kId,
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kBurstable, kId, kUid},
      {"custom_cgroup_root",
       std::string("/custom/root") + FsPod("") + "/" + kId, K::kPodContainer,
       R::kUnknown, D::kCgroupfs, Q::kGuaranteed, kId, kUid},
      {"no_leading_slash",
       SdPod("burstable").substr(1) + "/cri-containerd-" + kId + ".scope",
       K::kPodContainer, R::kContainerd, D::kSystemd, Q::kBurstable, kId, kUid},
      {"trailing_and_double_slashes",
       "//kubepods//burstable/pod" + std::string(kUid) + "//" + kId + "/",
       K::kPodContainer, R::kUnknown, D::kCgroupfs, Q::kBurstable, kId, kUid},
      // Containers outside Kubernetes.
      {"docker_systemd_standalone",
       std::string("/system.slice/docker-") + kId + ".scope", K::kContainer,
       R::kDocker, D::kSystemd, Q::kUnknown, kId, "",
       std::string("docker-") + kId + ".scope"},
      {"docker_cgroupfs_standalone", std::string("/docker/") + kId,
       K::kContainer, R::kDocker, D::kCgroupfs, Q::kUnknown, kId},
      {"podman_machine_slice",
       std::string("/machine.slice/libpod-") + kId + ".scope/container",
       K::kContainer, R::kPodman, D::kSystemd, Q::kUnknown, kId, "",
       std::string("libpod-") + kId + ".scope"},
      {"podman_rootless",
       std::string("/user.slice/user-1000.slice/user@1000.service/user.slice/"
                   "libpod-") +
           kId + ".scope",
       K::kContainer, R::kPodman, D::kSystemd, Q::kUnknown, kId, "",
       std::string("libpod-") + kId + ".scope"},
      {"podman_conmon",
       std::string("/machine.slice/libpod-conmon-") + kId + ".scope",
       K::kContainer, R::kPodman, D::kSystemd, Q::kUnknown, kId, "",
       std::string("libpod-conmon-") + kId + ".scope", true},
      {"podman_cgroupfs", std::string("/libpod_parent/libpod-") + kId,
       K::kContainer, R::kPodman, D::kCgroupfs, Q::kUnknown, kId},
      {"nerdctl_systemd",
       std::string("/system.slice/nerdctl-") + kId + ".scope", K::kContainer,
       R::kContainerd, D::kSystemd, Q::kUnknown, kId, "",
       std::string("nerdctl-") + kId + ".scope"},
      {"containerd_cgroupfs_namespace", std::string("/default/") + kId,
       K::kContainer, R::kUnknown, D::kCgroupfs, Q::kUnknown, kId},
      // Host.
      {"systemd_service", "/system.slice/nginx.service", K::kSystemdUnit,
       R::kUnknown, D::kSystemd, Q::kUnknown, "", "", "nginx.service"},
      {"systemd_template_service",
       "/system.slice/system-getty.slice/getty@tty1.service", K::kSystemdUnit,
       R::kUnknown, D::kSystemd, Q::kUnknown, "", "", "getty@tty1.service"},
      {"user_session", "/user.slice/user-1000.slice/session-3.scope",
       K::kSystemdUnit, R::kUnknown, D::kSystemd, Q::kUnknown, "", "",
       "session-3.scope"},
      {"user_service",
       "/user.slice/user-1000.slice/user@1000.service/app.slice/"
       "pipewire.service",
       K::kSystemdUnit, R::kUnknown, D::kSystemd, Q::kUnknown, "", "",
       "pipewire.service"},
      {"init_scope", "/init.scope", K::kSystemdUnit, R::kUnknown, D::kSystemd,
       Q::kUnknown, "", "", "init.scope"},
      {"kubelet_service", "/system.slice/kubelet.service", K::kSystemdUnit,
       R::kUnknown, D::kSystemd, Q::kUnknown, "", "", "kubelet.service"},
      {"host_slice_only", "/system.slice", K::kHostOther, R::kUnknown,
       D::kUnknown, Q::kUnknown, "", "", "system.slice"},
      {"user_slice_only", "/user.slice/user-0.slice", K::kHostOther,
       R::kUnknown, D::kUnknown, Q::kUnknown, "", "", "user-0.slice"},
      {"plain_path_no_unit", "/wattlens-test/burner", K::kHostOther},
      {"bare_slice_suffix_not_a_unit", "/x/.slice", K::kHostOther},
      {"k3s_cgroupfs_agent", "/k3s", K::kHostOther},
      {"root", "/", K::kRoot},
      {"root_many_slashes", "///", K::kRoot},
      // Near misses: must not be taken for pods or containers.
      {"podman_word_not_pod", "/podman/whatever", K::kHostOther},
      {"pod_without_kubepods", std::string("/foo/pod") + kUid + "/" + kId,
       K::kContainer, R::kUnknown, D::kCgroupfs, Q::kUnknown, kId},
      {"bad_uid_chars", "/kubepods.slice/kubepods-podxyz_not_hex.slice",
       K::kHostOther, R::kUnknown, D::kUnknown, Q::kUnknown, "", "",
       "kubepods-podxyz_not_hex.slice"},
      {"short_hex_not_container", "/system.slice/docker-abc.scope",
       K::kSystemdUnit, R::kUnknown, D::kSystemd, Q::kUnknown, "", "",
       "docker-abc.scope"},
      {"uppercase_id_rejected",
       std::string("/system.slice/docker-") +
           "7B5D0C4A2F1E3D6B8A9C0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D" +
           ".scope",
       K::kSystemdUnit, R::kUnknown, D::kSystemd, Q::kUnknown, "", "",
       "docker-"
       "7B5D0C4A2F1E3D6B8A9C0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D."
       "scope"},
      {"unicode_is_host_other", "/system.slice/caf\xc3\xa9-\xe2\x9c\x93",
       K::kHostOther, R::kUnknown, D::kUnknown, Q::kUnknown, "", "",
       "system.slice"},
  };
  return c;
}

class CgroupPathParserTest : public ::testing::TestWithParam<Case> {};

TEST_P(CgroupPathParserTest, Parses) {
  const Case& c = GetParam();
  absl::StatusOr<CgroupIdentity> id = ParseCgroupPath(c.path);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(CgroupKindName(id->kind), CgroupKindName(c.kind));
  EXPECT_EQ(ContainerRuntimeName(id->runtime), ContainerRuntimeName(c.runtime));
  if (c.kind != CgroupKind::kHostOther && c.kind != CgroupKind::kRoot) {
    EXPECT_EQ(id->driver, c.driver);
  }
  EXPECT_EQ(QosClassName(id->qos), QosClassName(c.qos));
  EXPECT_EQ(id->container_id, c.container_id);
  EXPECT_EQ(id->pod_uid, c.pod_uid);
  EXPECT_EQ(id->systemd_unit, c.unit);
  EXPECT_EQ(id->runtime_monitor, c.monitor);
  EXPECT_EQ(id->path.front(), '/');
}

INSTANTIATE_TEST_SUITE_P(Paths, CgroupPathParserTest,
                         ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(CgroupPathParserHostileTest, RejectsWithClearErrors) {
  struct Bad {
    std::string path;
    std::string message;
  };
  std::string with_nul = "/kubepods.slice";
  with_nul.push_back('\0');
  with_nul += "x";
  std::vector<Bad> bad = {
      {"", "empty"},
      {std::string(5000, 'a'), "longer than 4096"},
      {"/" + std::string(300, 'a'), "component longer than 255"},
      {"/kubepods/../etc", "'..'"},
      {"/./kubepods", "'.'"},
      {with_nul, "control byte 0x0"},
      {"/system.slice/a\nb.service", "control byte 0xa"},
      {"/x\x7f", "control byte 0x7f"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<CgroupIdentity> id = ParseCgroupPath(b.path);
    ASSERT_FALSE(id.ok()) << b.path;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(id.status().message(), HasSubstr(b.message));
  }
}

TEST(CgroupPathParserHostileTest, DeepAndRepetitiveButValidPaths) {
  std::string deep;
  while (deep.size() + 12 < kMaxCgroupPathBytes) deep += "/kubepods";
  auto id = ParseCgroupPath(deep);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->kind, CgroupKind::kPodQosLevel);

  std::string pods;
  while (pods.size() + 60 < kMaxCgroupPathBytes) {
    pods += absl::StrCat("/kubepods/pod", kUid);
  }
  id = ParseCgroupPath(pods);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->kind, CgroupKind::kPod);
  EXPECT_EQ(id->pod_uid, kUid);
}

TEST(CgroupPathParserTest, KernelThreadHint) {
  auto id = ParseCgroupPath("/", TaskHint::kKernelThread);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->kind, CgroupKind::kKernel);
  EXPECT_EQ(CgroupKindName(id->kind), "kernel");
}

TEST(CgroupPathParserTest, RuntimeFromContainerIdScheme) {
  EXPECT_EQ(RuntimeFromContainerIdScheme("containerd"),
            ContainerRuntime::kContainerd);
  EXPECT_EQ(RuntimeFromContainerIdScheme("cri-o"), ContainerRuntime::kCrio);
  EXPECT_EQ(RuntimeFromContainerIdScheme("docker"), ContainerRuntime::kDocker);
  EXPECT_EQ(RuntimeFromContainerIdScheme("rkt"), ContainerRuntime::kUnknown);
}

}  // namespace
}  // namespace wattlens::identity
