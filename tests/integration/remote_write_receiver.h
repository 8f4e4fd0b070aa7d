// SPDX-License-Identifier: Apache-2.0
//
// A scripted remote-write receiver on 127.0.0.1:0 for tests: HTTP/1.1 with
// keep-alive, answers each POST with the next scripted status (or closes the
// connection without answering, kClose), records every request's headers
// and body.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace wattlens::testing {

struct ReceivedRequest {
  std::string method, path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class ScriptedReceiver {
 public:
  static constexpr int kClose = -1;

  ScriptedReceiver() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 8);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedReceiver() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  int port() const { return port_; }
  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", port_, "/api/v1/write");
  }
  // Answers for the next requests, in order; then `default`.
  void Script(std::vector<int> codes) {
    absl::MutexLock lock(&mu_);
    script_.assign(codes.begin(), codes.end());
  }
  void SetDefault(int code) {
    absl::MutexLock lock(&mu_);
    default_ = code;
  }
  std::vector<ReceivedRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  bool WaitForRequests(size_t n, absl::Duration timeout) const {
    using Arg = std::pair<const std::vector<ReceivedRequest>*, size_t>;
    absl::MutexLock lock(&mu_);
    Arg arg{&requests_, n};
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Arg* a) { return a->first->size() >= a->second; }, &arg),
        timeout);
  }

 private:
  // Waits for `fd` to be readable, giving up when the receiver stops.
  bool Readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int n = poll(&p, 1, 50);
      if (n > 0) return true;
      if (n < 0) return false;
    }
    return false;
  }
  void Run() {
    while (Readable(fd_)) {
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Serve(c);
      close(c);
    }
  }
  // One connection: requests until the peer closes or the script says so.
  void Serve(int c) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!Readable(c)) return;
        const ssize_t n = read(c, chunk, sizeof(chunk));
        if (n <= 0) return;
        buf.append(chunk, n);
      }
      ReceivedRequest r;
      std::vector<std::string> lines =
          absl::StrSplit(buf.substr(0, end), "\r\n");
      std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
      if (first.size() >= 2) {
        r.method = first[0];
        r.path = first[1];
      }
      size_t length = 0;
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
        std::string value(
            absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
        if (name == "content-length") absl::SimpleAtoi(value, &length);
        r.headers[name] = value;
      }
      buf.erase(0, end + 4);
      while (buf.size() < length) {
        if (!Readable(c)) return;
        const ssize_t n = read(c, chunk, sizeof(chunk));
        if (n <= 0) return;
        buf.append(chunk, n);
      }
      r.body = buf.substr(0, length);
      buf.erase(0, length);
      int code;
      {
        absl::MutexLock lock(&mu_);
        if (script_.empty()) {
          code = default_;
        } else {
          code = script_.front();
          script_.pop_front();
        }
        requests_.push_back(std::move(r));
      }
      if (code == kClose) return;
      const std::string resp = absl::StrCat(
          "HTTP/1.1 ", code, " Scripted\r\nContent-Length: 0\r\n\r\n");
      if (write(c, resp.data(), resp.size()) !=
          static_cast<ssize_t>(resp.size())) {
        return;
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::deque<int> script_ ABSL_GUARDED_BY(mu_);
  int default_ ABSL_GUARDED_BY(mu_) = 204;
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens::testing
