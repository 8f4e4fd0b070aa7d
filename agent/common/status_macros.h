// SPDX-License-Identifier: Apache-2.0
// Status propagation helpers used at every boundary (no exceptions).
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define WL_CONCAT_INNER_(a, b) a##b
#define WL_CONCAT_(a, b) WL_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    ::absl::Status wl_status_ = (expr);      \
    if (!wl_status_.ok()) return wl_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, StatusOrExpr()): binds the value or returns the
// error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  WL_ASSIGN_OR_RETURN_IMPL_(WL_CONCAT_(wl_statusor_, __LINE__), lhs, expr)
#define WL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

namespace wattlens {

// errno -> status with context ("context: strerror"), via absl's mapping.
inline absl::Status ErrnoToStatus(int err, const std::string& context) {
  return absl::ErrnoToStatus(err, context);
}

// libbpf returns -errno; converts once, with what was being done.
inline absl::Status LibbpfError(int ret, absl::string_view context) {
  return absl::ErrnoToStatus(ret < 0 ? -ret : ret, context);
}

}  // namespace wattlens
