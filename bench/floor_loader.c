// SPDX-License-Identifier: Apache-2.0
/* floor_loader: loads and attaches the empty programs of floor.bpf.c, prints
 * "ready" once every selected program is attached, and holds them until
 * SIGTERM or SIGINT. The overhead harness waits for "ready" before it starts
 * a workload.
 *
 * usage: floor_loader --mode=rawtp|samehooks|switchhooks|allhooks
 * output: one line per attached program ("attached <name> id=<prog id>"),
 *         then "ready <count>"; errors go to stderr with a non-zero exit.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floor.skel.h"

static volatile sig_atomic_t stop;
static void OnSignal(int sig) {
  (void)sig;
  stop = 1;
}

/* libbpf's own messages: warnings and errors only, so "ready" stays easy to
 * find in the output. */
static int PrintLibbpf(enum libbpf_print_level level, const char* fmt,
                       va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}

static int Usage(void) {
  fprintf(stderr,
          "usage: floor_loader --mode=rawtp|samehooks|switchhooks|allhooks\n");
  return 2;
}

int main(int argc, char** argv) {
  int rawtp = 0, all = 0, sw = 0;
  if (argc != 2) return Usage();
  if (strcmp(argv[1], "--mode=rawtp") == 0) {
    rawtp = 1;
  } else if (strcmp(argv[1], "--mode=allhooks") == 0) {
    all = 1;
  } else if (strcmp(argv[1], "--mode=switchhooks") == 0) {
    sw = 1;
  } else if (strcmp(argv[1], "--mode=samehooks") != 0) {
    return Usage();
  }
  libbpf_set_print(PrintLibbpf);

  /* Signals are blocked until we wait for them, so a SIGTERM that arrives
   * during load is not lost and still detaches cleanly. */
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

  struct floor_bpf* skel = floor_bpf__open();
  if (!skel) {
    fprintf(stderr, "floor_loader: open: %s\n", strerror(errno));
    return 1;
  }
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    const int is_rawtp = prog == skel->progs.floor_rawtp_sys_enter;
    const int is_extra =
        strncmp(bpf_program__name(prog), "floor_net_", 10) == 0;
    const int is_switch =
        strncmp(bpf_program__name(prog), "floor_sw_", 9) == 0;
    bpf_program__set_autoload(prog, is_rawtp == rawtp && (all || !is_extra) &&
                                        (sw || !is_switch));
  }
  int err = floor_bpf__load(skel);
  if (err) {
    fprintf(stderr, "floor_loader: load: %s\n", strerror(-err));
    floor_bpf__destroy(skel);
    return 1;
  }

  /* Attach explicitly (rather than floor_bpf__attach) so each attached
   * program is named in the output and any failure is fatal. The links are
   * owned by the skeleton and released by floor_bpf__destroy. */
  int attached = 0;
  for (int i = 0; i < skel->skeleton->prog_cnt; ++i) {
    struct bpf_program* p = *skel->skeleton->progs[i].prog;
    if (!bpf_program__autoload(p)) continue;
    struct bpf_link* link = bpf_program__attach(p);
    if (!link) {
      fprintf(stderr, "floor_loader: attach %s: %s\n", bpf_program__name(p),
              strerror(errno));
      floor_bpf__destroy(skel);
      return 1;
    }
    *skel->skeleton->progs[i].link = link;
    struct bpf_prog_info info;
    __u32 len = sizeof(info);
    memset(&info, 0, sizeof(info));
    __u32 id = 0;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0)
      id = info.id;
    printf("attached %s id=%u\n", bpf_program__name(p), id);
    ++attached;
  }
  printf("ready %d\n", attached);
  fflush(stdout);

  while (!stop) sigsuspend(&old);
  floor_bpf__destroy(skel);
  return 0;
}
