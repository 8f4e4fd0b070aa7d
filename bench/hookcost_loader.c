// SPDX-License-Identifier: Apache-2.0
/* hookcost_loader: loads and attaches the named programs of hookcost.bpf.c,
 * prints "ready" once attached and holds them until SIGTERM or SIGINT.
 * usage: hookcost_loader PROGRAM... */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "hookcost.skel.h"

static volatile sig_atomic_t stop;
static void OnSignal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: hookcost_loader PROGRAM...\n");
    return 2;
  }
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  struct hookcost_bpf* skel = hookcost_bpf__open();
  if (!skel) return 1;
  struct bpf_program* prog;
  int wanted = 0;
  bpf_object__for_each_program(prog, skel->obj) {
    int want = 0;
    for (int i = 1; i < argc; ++i)
      want |= !strcmp(argv[i], bpf_program__name(prog));
    bpf_program__set_autoload(prog, want);
    wanted += want;
  }
  if (wanted != argc - 1) {
    fprintf(stderr, "hookcost_loader: unknown program name\n");
    return 2;
  }
  if (hookcost_bpf__load(skel) || hookcost_bpf__attach(skel)) {
    fprintf(stderr, "hookcost_loader: load/attach failed\n");
    hookcost_bpf__destroy(skel);
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  while (!stop) sigsuspend(&old);
  hookcost_bpf__destroy(skel);
  return 0;
}
