# SPDX-License-Identifier: Apache-2.0
# Warning and sanitizer flags for project targets only (generated and
# third-party code keeps its own). Use wattlens_target_defaults(<target>).
set(WATTLENS_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter)

if(WATTLENS_SANITIZE)
  set(_san -fsanitize=${WATTLENS_SANITIZE} -fno-omit-frame-pointer)
  if(WATTLENS_SANITIZE MATCHES "undefined")
    list(APPEND _san -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

function(wattlens_target_defaults target)
  target_compile_options(${target} PRIVATE ${WATTLENS_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()
