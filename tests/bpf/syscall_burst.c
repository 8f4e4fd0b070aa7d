// SPDX-License-Identifier: Apache-2.0
/* Makes a known number of syscalls in a cgroup: a child started directly in
 * it (clone3 with CLONE_INTO_CGROUP, so no syscall straddles a migration)
 * returns from clone3, makes `rounds` times `burst` getppid() calls and one
 * nanosleep of `sleep_us`, and calls exit_group: rounds * (burst + 1) + 2
 * syscalls in the cgroup, printed. The parent, outside it, waits.
 * Usage: syscall_burst <cgroup dir> <rounds> <burst> <sleep_us> */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const long rounds = atol(argv[2]), burst = atol(argv[3]);
  const long sleep_us = atol(argv[4]);
  int cg = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return 3;
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = (uint64_t)cg;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return 4;
  if (pid == 0) {
    for (long r = 0; r < rounds; ++r) {
      for (long i = 0; i < burst; ++i) syscall(SYS_getppid);
      struct timespec ts = {sleep_us / 1000000, (sleep_us % 1000000) * 1000};
      syscall(SYS_nanosleep, &ts, NULL);
    }
    syscall(SYS_exit_group, 0);
  }
  int status = 0;
  if (waitpid((pid_t)pid, &status, 0) != pid) return 5;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 6;
  printf("%ld\n", rounds * (burst + 1) + 2);
  return 0;
}
