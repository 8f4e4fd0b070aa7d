# SPDX-License-Identifier: Apache-2.0
# Compiles bpf/<name>.bpf.c with clang into a BTF-carrying object and
# generates its libbpf skeleton (<name>.skel.h) with bpftool. The skeleton
# embeds the object, so binaries need no .o files at run time.
# clang >= 15: sched.bpf.c holds exiting tasks as kptrs, which the kernel
# recognises by a BTF type tag that clang 14 does not emit.
function(wattlens_clang_version out clang)
  execute_process(COMMAND ${clang} -dumpversion OUTPUT_VARIABLE v
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(${out} "${v}" PARENT_SCOPE)
endfunction()
find_program(WATTLENS_BPF_CLANG NAMES clang-16 clang-15 clang REQUIRED)
wattlens_clang_version(WATTLENS_BPF_CLANG_VERSION ${WATTLENS_BPF_CLANG})
if(WATTLENS_BPF_CLANG_VERSION VERSION_LESS 15)
  # A build tree configured before the requirement caches plain clang.
  unset(WATTLENS_BPF_CLANG CACHE)
  find_program(WATTLENS_BPF_CLANG NAMES clang-16 clang-15)
  if(WATTLENS_BPF_CLANG)
    wattlens_clang_version(WATTLENS_BPF_CLANG_VERSION ${WATTLENS_BPF_CLANG})
  endif()
endif()
if(NOT WATTLENS_BPF_CLANG OR WATTLENS_BPF_CLANG_VERSION VERSION_LESS 15)
  message(FATAL_ERROR
          "wattlens: BPF programs need clang >= 15 (BTF type tags for kptrs); "
          "${WATTLENS_BPF_CLANG} is ${WATTLENS_BPF_CLANG_VERSION}. "
          "Debian 12: apt install clang-16 (scripts/install-deps.sh does).")
endif()
find_program(WATTLENS_LLVM_STRIP NAMES llvm-strip llvm-strip-14 REQUIRED)
find_program(WATTLENS_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(WATTLENS_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(WATTLENS_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "wattlens: no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(WATTLENS_BPF_INCLUDES
    -I${PROJECT_SOURCE_DIR}/bpf/include
    -I${PROJECT_SOURCE_DIR}/bpf/include/vmlinux/${WATTLENS_BPF_ARCH}
    -I${PROJECT_SOURCE_DIR}/bpf/shared)
file(GLOB WATTLENS_BPF_HEADERS ${PROJECT_SOURCE_DIR}/bpf/include/*.h
     ${PROJECT_SOURCE_DIR}/bpf/shared/*.h)

# wattlens_bpf_skeleton(<name> <source.bpf.c> [DEFINES <macro>...]): adds
# target <name>_skel whose output <name>.skel.h lands in
# CMAKE_CURRENT_BINARY_DIR; DEFINES builds a variant of one source.
function(wattlens_bpf_skeleton name src)
  cmake_parse_arguments(B "" "" "DEFINES" ${ARGN})
  list(TRANSFORM B_DEFINES PREPEND -D)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${WATTLENS_BPF_CLANG} -g -O2 -target bpf -mcpu=v3
            -D__TARGET_ARCH_${WATTLENS_BPF_ARCH} ${B_DEFINES} -Wall -Werror
            ${WATTLENS_BPF_INCLUDES} -c ${src} -o ${obj}.full
    COMMAND ${WATTLENS_LLVM_STRIP} -g ${obj}.full -o ${obj}
    DEPENDS ${src} ${WATTLENS_BPF_HEADERS}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${WATTLENS_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()
