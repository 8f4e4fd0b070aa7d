// SPDX-License-Identifier: Apache-2.0
#include "collector/listener_probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace wattlens::collector {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

constexpr char kListen[] = "0A";  // TCP_LISTEN in /proc/net/tcp

// Connections waiting in the accept queue of the listening socket(s) on
// `port`, summed over IPv4 and IPv6; nullopt when no such socket is found.
std::optional<uint64_t> AcceptQueue(const std::string& proc_root, int port) {
  std::optional<uint64_t> total;
  for (const char* file : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in(proc_root + file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<absl::string_view> f =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      // sl local_address rem_address st tx_queue:rx_queue ...
      if (f.size() < 5 || f[3] != kListen) continue;
      const size_t colon = f[1].rfind(':');
      uint32_t local_port = 0;
      if (colon == absl::string_view::npos ||
          !absl::SimpleHexAtoi(f[1].substr(colon + 1), &local_port) ||
          local_port != static_cast<uint32_t>(port)) {
        continue;
      }
      const size_t q = f[4].find(':');
      uint64_t rx = 0;
      if (q == absl::string_view::npos ||
          !absl::SimpleHexAtoi(f[4].substr(q + 1), &rx)) {
        continue;
      }
      total = total.value_or(0) + rx;
    }
  }
  return total;
}

}  // namespace

std::string ProbeHost(const std::string& listen_address) {
  std::string host = listen_address;
  if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

absl::Status ProbeListener(const std::string& host, int port,
                           absl::Duration timeout,
                           const std::string& proc_root) {
  const absl::Time deadline = absl::Now() + timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  const std::string service = absl::StrCat(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &ai);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(ai, &freeaddrinfo);
  const std::string where = absl::StrCat(host, " port ", port);
  Fd fd(socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open a socket: ", strerror(errno)));
  }
  if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": ", strerror(errno)));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (poll(&p, 1, static_cast<int>(ms > 0 ? ms : 0)) <= 0) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": no answer"));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": ", strerror(err)));
    }
  }
  uint64_t queued = 0;
  while (true) {
    const std::optional<uint64_t> q = AcceptQueue(proc_root, port);
    // No listening socket visible (another network namespace view): the
    // completed connect is all the evidence there is.
    if (!q.has_value() || *q == 0) return absl::OkStatus();
    queued = *q;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(10));  // the accept queue has no event
  }
  return absl::UnavailableError(absl::StrCat(
      "the gRPC listener on ", where, " is not accepting: ", queued,
      " connections still queued after ", absl::FormatDuration(timeout),
      " (out of file descriptors? see the collector log)"));
}

}  // namespace wattlens::collector
