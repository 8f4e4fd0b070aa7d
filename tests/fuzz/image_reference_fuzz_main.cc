// SPDX-License-Identifier: Apache-2.0
#include "tests/fuzz/fuzz_targets.h"

WATTLENS_FUZZ_MAIN(FuzzImageReference)
