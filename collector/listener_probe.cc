// SPDX-License-Identifier: Apache-2.0
#include "collector/listener_probe.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
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

int RemainingMs(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(ms);
}

absl::Status WaitFor(int fd, short events, absl::Time deadline,
                     const char* what) {
  pollfd p{fd, events, 0};
  while (true) {
    const int n = poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return absl::OkStatus();
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat("no ", what, " in time"));
    }
    if (errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll: ", strerror(errno)));
    }
  }
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// Sends a ClientHello; the ServerHello (or a close) is the answer.
absl::Status StartTls(int fd) {
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return absl::InternalError("SSL_CTX_new failed");
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    return absl::InternalError("SSL_new failed");
  }
  SSL_set_alpn_protos(ssl.get(),
                      reinterpret_cast<const unsigned char*>("\x02h2"), 3);
  SSL_set_connect_state(ssl.get());
  const int rc = SSL_do_handshake(ssl.get());
  const int err = SSL_get_error(ssl.get(), rc);
  if (rc != 1 && err != SSL_ERROR_WANT_READ) {
    return absl::UnavailableError("could not send a TLS ClientHello");
  }
  return absl::OkStatus();
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

absl::Status ProbeListener(const std::string& host, int port, bool tls,
                           absl::Duration timeout) {
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
  Fd fd(socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open a socket: ", strerror(errno)));
  }
  const std::string where = absl::StrCat(host, " port ", port);
  if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": ", strerror(errno)));
    }
    if (absl::Status st = WaitFor(fd.get(), POLLOUT, deadline, "connection");
        !st.ok()) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": ", st.message()));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return absl::UnavailableError(
          absl::StrCat("connect to ", where, ": ", strerror(err)));
    }
  }
  if (tls) {
    if (absl::Status st = StartTls(fd.get()); !st.ok()) return st;
  } else {
    static constexpr char kPreface[] =
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        "\x00\x00\x00\x04\x00\x00\x00\x00\x00";  // + an empty SETTINGS frame
    const ssize_t n =
        send(fd.get(), kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(sizeof(kPreface) - 1)) {
      return absl::UnavailableError(
          absl::StrCat("cannot write to ", where, ": ", strerror(errno)));
    }
  }
  if (absl::Status st = WaitFor(fd.get(), POLLIN, deadline, "answer");
      !st.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the gRPC listener on ", where, " accepted no connection within ",
        absl::FormatDuration(timeout),
        " (out of file descriptors? see the collector log)"));
  }
  return absl::OkStatus();
}

}  // namespace wattlens::collector
