// SPDX-License-Identifier: Apache-2.0
/* ctxload: the per-context-switch cost a traced process sees.
 *
 * A parent and a child, both pinned to the same CPU, bounce one byte over two
 * pipes. Each side blocks in read() until the other writes, so a round trip
 * is two context switches (parent -> child -> parent) and four syscalls
 * (2 write + 2 read). The switch count is not assumed: the parent reads both
 * tasks' voluntary/involuntary switch counters from /proc around the timed
 * loop and prints switches_per_op. cpu_ns_per_op is the on-CPU time of both
 * tasks (CLOCK_PROCESS_CPUTIME_ID clocks) per round trip: the switch path and
 * any BPF program on it are charged to one of the two, and unlike wall time
 * it does not grow when another task shares the CPU (switches_per_op above 2
 * shows that happened).
 *
 * usage: ctxload [round_trips [cpu]]
 *   round_trips  default 200000 (after a 5 % warm-up)
 *   cpu          default: the lowest CPU this process may run on (so
 *                `taskset -c 1 ctxload` pins both tasks to CPU 1)
 * output (one line, key=value): workload=ctxload cpu=C round_trips=N
 *   ns_total=T ns_per_op=X ns_per_switch=Y cpu_ns_per_op=Z switches_per_op=S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kDefaultRoundTrips = 200000, kMaxRoundTrips = 100000000 };

static long long ClockNs(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long NowNs(void) { return ClockNs(CLOCK_MONOTONIC); }

static int ReadByte(int fd) {
  char c;
  for (;;) {
    ssize_t r = read(fd, &c, 1);
    if (r == 1) return 1;
    if (r == 0) return 0; /* EOF: the other side is done */
    if (errno != EINTR) return -1;
  }
}

static int WriteByte(int fd) {
  const char c = 'x';
  for (;;) {
    ssize_t r = write(fd, &c, 1);
    if (r == 1) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

/* voluntary + nonvoluntary context switches of `pid`, -1 on error. */
static long long Switches(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long long total = 0;
  int seen = 0;
  while (fgets(line, sizeof(line), f)) {
    long long v;
    if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
        sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1) {
      total += v;
      ++seen;
    }
  }
  fclose(f);
  return seen == 2 ? total : -1;
}

static long long BothSwitches(pid_t a, pid_t b) {
  long long x = Switches(a), y = Switches(b);
  return x < 0 || y < 0 ? -1 : x + y;
}

static int ParseLong(const char* s, long lo, long hi, long* out) {
  char* end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int LowestAllowedCpu(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) return c;
  return -1;
}

int main(int argc, char** argv) {
  long n = kDefaultRoundTrips;
  long cpu = -1;
  if (argc > 1 && ParseLong(argv[1], 1, kMaxRoundTrips, &n) != 0) {
    fprintf(stderr, "ctxload: round_trips must be 1..%d\n", kMaxRoundTrips);
    return 2;
  }
  if (argc > 2 && ParseLong(argv[2], 0, CPU_SETSIZE - 1, &cpu) != 0) {
    fprintf(stderr, "ctxload: bad cpu\n");
    return 2;
  }
  if (cpu < 0) cpu = LowestAllowedCpu();
  if (cpu < 0) {
    perror("ctxload: sched_getaffinity");
    return 1;
  }
  /* Pin before fork: the child inherits the single-CPU mask, so every
   * hand-off is a switch on this CPU, never a cross-CPU wake-up. */
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET((int)cpu, &one);
  if (sched_setaffinity(0, sizeof(one), &one) != 0) {
    perror("ctxload: sched_setaffinity");
    return 1;
  }

  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) {
    perror("ctxload: pipe");
    return 1;
  }
  const pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) {
    perror("ctxload: fork");
    return 1;
  }
  if (child == 0) {
    /* Never outlive the parent, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    close(to_child[1]);
    close(to_parent[0]);
    for (;;) {
      int r = ReadByte(to_child[0]);
      if (r == 0) _exit(0);
      if (r < 0 || WriteByte(to_parent[1]) < 0) _exit(1);
    }
  }
  close(to_child[0]);
  close(to_parent[1]);

  clockid_t child_clock;
  int have_child_clock = clock_getcpuclockid(child, &child_clock) == 0;

  int failed = 0;
  long long start = 0, total = 0, sw_before = 0, sw_after = 0;
  long long cpu_before = 0, cpu_after = 0;
  const long warmup = n / 20 + 1;
  for (long i = 0; i < warmup + n; ++i) {
    if (i == warmup) {
      sw_before = BothSwitches(parent, child);
      cpu_before = ClockNs(CLOCK_PROCESS_CPUTIME_ID) +
                   (have_child_clock ? ClockNs(child_clock) : 0);
      start = NowNs();
    }
    if (WriteByte(to_child[1]) < 0 || ReadByte(to_parent[0]) != 1) {
      failed = 1;
      break;
    }
  }
  total = NowNs() - start;
  cpu_after = ClockNs(CLOCK_PROCESS_CPUTIME_ID) +
              (have_child_clock ? ClockNs(child_clock) : 0);
  sw_after = BothSwitches(parent, child);

  close(to_child[1]); /* EOF: the child exits */
  int status = 0;
  if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    failed = 1;
  if (failed) {
    fprintf(stderr, "ctxload: ping-pong failed\n");
    return 1;
  }
  const double per_op = (double)total / (double)n;
  const double sw_per_op = sw_before >= 0 && sw_after >= sw_before
                               ? (double)(sw_after - sw_before) / (double)n
                               : -1.0;
  const double cpu_per_op =
      have_child_clock ? (double)(cpu_after - cpu_before) / (double)n : -1.0;
  printf(
      "workload=ctxload cpu=%ld round_trips=%ld ns_total=%lld ns_per_op=%.2f "
      "ns_per_switch=%.2f cpu_ns_per_op=%.2f switches_per_op=%.3f\n",
      cpu, n, total, per_op, per_op / 2.0, cpu_per_op, sw_per_op);
  return 0;
}
