// SPDX-License-Identifier: Apache-2.0
/* manyproc: keeps N idle processes alive, so the agent is measured on a node
 * with realistic process counts (its /proc scans, identity resolution and
 * map sizes all scale with live processes).
 *
 * Forks N children that block in pause(). Prints "ready N" once all exist,
 * then waits for SIGTERM or SIGINT, kills and reaps every child, and exits.
 * Children die with the parent (PR_SET_PDEATHSIG), so a killed harness leaves
 * nothing behind.
 *
 * usage: manyproc [count]   (default 1000, at most 20000)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kDefaultCount = 1000, kMaxCount = 20000 };

static volatile sig_atomic_t stop;
static void OnSignal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  long n = kDefaultCount;
  if (argc > 1) {
    char* end = NULL;
    errno = 0;
    n = strtol(argv[1], &end, 10);
    if (errno || *end || n < 1 || n > kMaxCount) {
      fprintf(stderr, "manyproc: count must be 1..%d\n", kMaxCount);
      return 2;
    }
  }
  pid_t* kids = calloc((size_t)n, sizeof(pid_t));
  if (!kids) return 1;

  /* Block the stop signals until we wait for them: none can be lost between
   * the check of `stop` and sigsuspend. Children unblock their copy. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction sa = {0};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  const pid_t parent = getpid();
  long made = 0;
  for (; made < n; ++made) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("manyproc: fork");
      break;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      sigprocmask(SIG_SETMASK, &old, NULL);
      for (;;) pause();
    }
    kids[made] = pid;
  }
  int rc = 0;
  if (made == n) {
    printf("ready %ld\n", made);
    fflush(stdout);
    while (!stop) sigsuspend(&old);
  } else {
    rc = 1;
  }
  for (long i = 0; i < made; ++i) kill(kids[i], SIGKILL);
  for (long i = 0; i < made; ++i) waitpid(kids[i], NULL, 0);
  free(kids);
  return rc;
}
