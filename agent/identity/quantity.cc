// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/quantity.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace wattlens::identity {
namespace {

using u128 = unsigned __int128;

constexpr size_t kMaxQuantityBytes = 64;
constexpr int kMaxSignificantDigits = 30;  // < 2^100, leaves headroom
constexpr int kMaxExponent = 40;
constexpr u128 kInt64Max = std::numeric_limits<int64_t>::max();

absl::Status Bad(absl::string_view q, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("quantity \"", q.substr(0, kMaxQuantityBytes), "\": ", why));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Multiplies `v` by 10^e (e >= 0); false on overflow past 2^126.
bool MulPow10(u128& v, int e) {
  constexpr u128 kLimit = u128{1} << 126;
  for (int i = 0; i < e; ++i) {
    if (v > kLimit / 10) return v == 0;
    v *= 10;
  }
  return true;
}

}  // namespace

absl::StatusOr<int64_t> ParseQuantityScaled(absl::string_view q, int scale10) {
  if (q.empty()) return Bad(q, "empty");
  if (q.size() > kMaxQuantityBytes) return Bad(q, "too long");
  size_t i = 0;
  if (q[i] == '+') {
    ++i;
  } else if (q[i] == '-') {
    return Bad(q, "negative");
  }
  u128 mantissa = 0;
  int digits = 0, frac_len = 0;
  bool any = false, dot = false;
  for (; i < q.size(); ++i) {
    char c = q[i];
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (!IsDigit(c)) break;
    any = true;
    if (mantissa == 0 && c == '0') {
      if (dot) ++frac_len;
      continue;
    }
    if (++digits > kMaxSignificantDigits) {
      return Bad(q, "too many significant digits");
    }
    mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
    if (dot) ++frac_len;
  }
  if (!any) return Bad(q, "no digits");

  absl::string_view suffix = q.substr(i);
  int dec_exp = 0, bin_exp = 0;
  if (suffix.empty()) {
  } else if (suffix == "Ki") {
    bin_exp = 10;
  } else if (suffix == "Mi") {
    bin_exp = 20;
  } else if (suffix == "Gi") {
    bin_exp = 30;
  } else if (suffix == "Ti") {
    bin_exp = 40;
  } else if (suffix == "Pi") {
    bin_exp = 50;
  } else if (suffix == "Ei") {
    bin_exp = 60;
  } else if (suffix == "n") {
    dec_exp = -9;
  } else if (suffix == "u") {
    dec_exp = -6;
  } else if (suffix == "m") {
    dec_exp = -3;
  } else if (suffix == "k") {
    dec_exp = 3;
  } else if (suffix == "M") {
    dec_exp = 6;
  } else if (suffix == "G") {
    dec_exp = 9;
  } else if (suffix == "T") {
    dec_exp = 12;
  } else if (suffix == "P") {
    dec_exp = 15;
  } else if (suffix == "E") {
    dec_exp = 18;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    absl::string_view e = suffix.substr(1);
    bool neg = false;
    if (!e.empty() && (e[0] == '+' || e[0] == '-')) {
      neg = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 3) return Bad(q, "bad exponent");
    for (char c : e) {
      if (!IsDigit(c)) return Bad(q, "bad exponent");
      dec_exp = dec_exp * 10 + (c - '0');
    }
    if (dec_exp > kMaxExponent) return absl::OutOfRangeError("exponent");
    if (neg) dec_exp = -dec_exp;
  } else {
    return Bad(q, "unknown suffix");
  }
  if (mantissa == 0) return 0;

  // value * 10^scale = mantissa * 2^bin_exp * 10^e10
  int e10 = dec_exp + scale10 - frac_len;
  u128 num = mantissa;
  if (bin_exp > 0) {
    if (num >= (u128{1} << (126 - bin_exp))) {
      return absl::OutOfRangeError(absl::StrCat("quantity \"", q, "\""));
    }
    num <<= bin_exp;
  }
  if (e10 >= 0) {
    if (!MulPow10(num, e10) || num > kInt64Max) {
      return absl::OutOfRangeError(
          absl::StrCat("quantity \"", q, "\" does not fit in int64"));
    }
    return static_cast<int64_t>(num);
  }
  u128 den = 1;
  if (!MulPow10(den, -e10)) return 1;  // below one unit: rounds up to 1
  u128 result = num / den + (num % den != 0 ? 1 : 0);
  if (result > kInt64Max) {
    return absl::OutOfRangeError(
        absl::StrCat("quantity \"", q, "\" does not fit in int64"));
  }
  return static_cast<int64_t>(result);
}

}  // namespace wattlens::identity
