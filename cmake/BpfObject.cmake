# Compiles bpf/<name>.bpf.c with clang into a BTF-carrying object and
# generates its libbpf skeleton (<name>.skel.h) with bpftool. The skeleton
# embeds the object, so binaries need no .o files at run time.
find_program(WATTLENS_BPF_CLANG NAMES clang clang-14 REQUIRED)
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

# wattlens_bpf_skeleton(<name> <source.bpf.c>): adds target <name>_skel whose
# output <name>.skel.h lands in CMAKE_CURRENT_BINARY_DIR.
function(wattlens_bpf_skeleton name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${WATTLENS_BPF_CLANG} -g -O2 -target bpf -mcpu=v3
            -D__TARGET_ARCH_${WATTLENS_BPF_ARCH} -Wall -Werror
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
