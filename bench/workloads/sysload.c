/* sysload: the per-syscall cost a traced process sees.
 *
 * Calls getppid() N times through syscall(2) (so no libc caching can skip the
 * kernel) and prints the mean wall time per call, from CLOCK_MONOTONIC.
 * getppid is about the cheapest syscall there is, so whatever a tracer adds
 * to syscall entry/exit shows up nearly undiluted.
 *
 * usage: sysload [iterations]   (default 3000000; a 5 % warm-up runs first)
 * output (one line, key=value): workload=sysload iterations=N ns_total=T
 *                               ns_per_op=X
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { kDefaultIterations = 3000000, kMaxIterations = 1000000000 };

static long long NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* volatile sink: the compiler must keep every call. */
static volatile long sink;

static void Loop(long n) {
  for (long i = 0; i < n; ++i) sink = syscall(SYS_getppid);
}

int main(int argc, char** argv) {
  long n = kDefaultIterations;
  if (argc > 1) {
    char* end = NULL;
    errno = 0;
    n = strtol(argv[1], &end, 10);
    if (errno || *end || n < 1 || n > kMaxIterations) {
      fprintf(stderr, "sysload: iterations must be 1..%d\n", kMaxIterations);
      return 2;
    }
  }
  Loop(n / 20 + 1); /* warm caches, TLB and the branch predictors */
  long long start = NowNs();
  Loop(n);
  long long total = NowNs() - start;
  printf("workload=sysload iterations=%ld ns_total=%lld ns_per_op=%.2f\n", n,
         total, (double)total / (double)n);
  return 0;
}
