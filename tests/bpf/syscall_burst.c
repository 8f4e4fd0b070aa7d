// SPDX-License-Identifier: Apache-2.0
/* Moves itself into a cgroup, then makes a fixed sequence of syscalls:
 * `rounds` times `burst` getppid() calls and one nanosleep of `sleep_us`.
 * Statically linked, so two runs with the same arguments make the same
 * number of syscalls in the cgroup: the e2e restart test compares a run
 * across agent restarts with one the agent saw whole.
 * Usage: syscall_burst <cgroup dir> <rounds> <burst> <sleep_us> */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  char path[4096];
  snprintf(path, sizeof(path), "%s/cgroup.procs", argv[1]);
  const long rounds = atol(argv[2]), burst = atol(argv[3]);
  const long sleep_us = atol(argv[4]);
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, "0", 1) != 1) return 3;
  close(fd);
  struct timespec ts = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
  for (long r = 0; r < rounds; ++r) {
    for (long i = 0; i < burst; ++i) syscall(SYS_getppid);
    while (nanosleep(&ts, &ts) != 0) {
    }
    ts.tv_sec = sleep_us / 1000000;
    ts.tv_nsec = (sleep_us % 1000000) * 1000;
  }
  return 0;
}
