# SPDX-License-Identifier: Apache-2.0
# All third-party dependencies, from Debian 12 packages.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.1)
find_package(Threads REQUIRED)
find_package(absl REQUIRED)
find_package(spdlog REQUIRED)
find_package(GTest REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC REQUIRED)
if(WATTLENS_SCOPE STREQUAL "ALL")
  find_package(benchmark REQUIRED)
endif()
find_package(prometheus-cpp REQUIRED)
