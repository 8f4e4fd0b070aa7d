// SPDX-License-Identifier: Apache-2.0
/* netload: TCP ping-pong of 64-byte messages over loopback between two
 * processes pinned to one CPU (the caller pins with taskset). Each round trip
 * is two send+recv pairs. Prints wall and CPU (both processes) ns per
 * send+recv.
 * usage: netload [round_trips] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static int full(int fd, char* buf, int write_side) {
  int done = 0;
  while (done < MSG) {
    ssize_t n = write_side ? write(fd, buf + done, MSG - done)
                           : read(fd, buf + done, MSG - done);
    if (n <= 0) return -1;
    done += (int)n;
  }
  return 0;
}

static double now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 100000;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (bind(l, (struct sockaddr*)&sa, len) || listen(l, 1) ||
      getsockname(l, (struct sockaddr*)&sa, &len)) {
    perror("netload: listen");
    return 1;
  }
  pid_t server = fork();
  if (server == 0) {
    int c = accept(l, NULL, NULL);
    char buf[MSG];
    for (long i = 0; i < rounds; ++i) {
      if (full(c, buf, 0) || full(c, buf, 1)) _exit(2);
    }
    _exit(0);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(s, (struct sockaddr*)&sa, len)) {
    perror("netload: connect");
    return 1;
  }
  char buf[MSG] = {0};
  double w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  for (long i = 0; i < rounds; ++i) {
    if (full(s, buf, 1) || full(s, buf, 0)) {
      fprintf(stderr, "netload: short exchange\n");
      return 1;
    }
  }
  double w1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  close(s);
  int st = 0;
  struct rusage ru;
  wait4(server, &st, 0, &ru);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) return 1;
  double server_cpu = ru.ru_utime.tv_sec * 1e9 + ru.ru_utime.tv_usec * 1e3 +
                      ru.ru_stime.tv_sec * 1e9 + ru.ru_stime.tv_usec * 1e3;
  double ops = 2.0 * rounds; /* send+recv pairs */
  printf("ns_per_op=%.1f cpu_ns_per_op=%.1f ops=%.0f\n", (w1 - w0) / ops,
         (c1 - c0 + server_cpu) / ops, ops);
  return 0;
}
