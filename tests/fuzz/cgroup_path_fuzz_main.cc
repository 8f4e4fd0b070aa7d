#include "tests/fuzz/fuzz_targets.h"

WATTLENS_FUZZ_MAIN(FuzzCgroupPath)
