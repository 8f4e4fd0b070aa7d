// SPDX-License-Identifier: Apache-2.0
/* sysload: the per-syscall cost a traced process sees.
 *
 * Calls getppid() N times through syscall(2) (so no libc caching can skip the
 * kernel) and prints the mean wall time per call, from CLOCK_MONOTONIC,
 * and the mean on-CPU time per call, from CLOCK_PROCESS_CPUTIME_ID. getppid
 * is about the cheapest syscall there is, so whatever a tracer adds to
 * syscall entry/exit shows up nearly undiluted. BPF programs on the syscall
 * path run in this process's context, so the CPU time includes them; unlike
 * wall time it does not grow when another task shares the CPU.
 *
 * usage: sysload [iterations]   (default 3000000; a 5 % warm-up runs first)
 * output (one line, key=value): workload=sysload iterations=N ns_total=T
 *   ns_per_op=X cpu_ns_per_op=C preempted=P
 *   (P: involuntary context switches during the timed loop; > 0 means
 *   something else ran on this CPU)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { kDefaultIterations = 3000000, kMaxIterations = 1000000000 };

static long long ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long Preemptions(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nivcsw;
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
  const long preempted_before = Preemptions();
  const long long cpu_start = ClockNs(CLOCK_PROCESS_CPUTIME_ID);
  const long long start = ClockNs(CLOCK_MONOTONIC);
  Loop(n);
  const long long total = ClockNs(CLOCK_MONOTONIC) - start;
  const long long cpu = ClockNs(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  const long preempted = Preemptions() - preempted_before;
  printf(
      "workload=sysload iterations=%ld ns_total=%lld ns_per_op=%.2f "
      "cpu_ns_per_op=%.2f preempted=%ld\n",
      n, total, (double)total / (double)n, (double)cpu / (double)n, preempted);
  return 0;
}
