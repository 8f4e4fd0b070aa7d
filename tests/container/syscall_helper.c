// SPDX-License-Identifier: Apache-2.0
// Runs inside the test's nginx container (statically linked, bind-mounted
// read-only) so that the container's cgroup makes system calls and CPU time
// the test knows exactly. Commands on stdin, one per line:
//   s N    N getppid() calls
//   b MS   burn MS milliseconds of its own CPU time
// After each command it writes one line "done K": K is every system call it
// made for that command, from the read()s that returned the command through
// that write, itself included. Between commands it is blocked in read(),
// which the agent counts only when it returns (sys_exit), so the next
// command's K covers it. No stdio: every system call is one of ours.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t calls;

static long Getppid(void) {
  ++calls;
  return syscall(SYS_getppid);
}

static int64_t CpuNs(void) {
  struct timespec ts;
  ++calls;
  // CPU-time clocks are never served by the vDSO: a real system call.
  syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void Say(const char* text) {
  ++calls;
  ssize_t n = write(1, text, strlen(text));
  (void)n;
}

int main(void) {
  Say("ready\n");
  calls = 0;
  char line[128];
  size_t len = 0;
  for (;;) {
    ++calls;
    ssize_t n = read(0, line + len, sizeof(line) - 1 - len);
    if (n <= 0) return 0;
    len += (size_t)n;
    line[len] = '\0';
    char* nl;
  next:
    nl = strchr(line, '\n');
    if (nl == NULL) {
      if (len == sizeof(line) - 1) return 2;
      continue;
    }
    *nl = '\0';
    long arg = strtol(line + 1, NULL, 10);
    if (line[0] == 's') {
      for (long i = 0; i < arg; ++i) Getppid();
    } else if (line[0] == 'b') {
      int64_t end = CpuNs() + arg * 1000000LL;
      volatile uint64_t spin = 0;
      while (CpuNs() < end) {
        for (int i = 0; i < 1000000; ++i) spin += (uint64_t)i;
      }
    }
    char out[64];
    // This write is part of K.
    snprintf(out, sizeof(out), "done %llu\n", (unsigned long long)(calls + 1));
    Say(out);
    calls = 0;
    // A second command already read: handled without another read().
    size_t used = (size_t)(nl + 1 - line);
    memmove(line, nl + 1, len - used + 1);
    len -= used;
    goto next;
  }
}
