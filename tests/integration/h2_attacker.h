// SPDX-License-Identifier: Apache-2.0
// A deliberately abusive HTTP/2 client for the hardening tests: raw frames
// over loopback TCP, optionally inside TLS (with or without a client
// certificate), so a test can send what no gRPC client would: streams reset
// as soon as they open (CVE-2023-44487), streams left open, header blocks
// that never end (CONTINUATION), oversized metadata. Everything it sends is
// bounded by the caller (counts and deadlines); what the server sends back is
// read and discarded, SETTINGS and PING are acknowledged.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

namespace wattlens::testing {

// Process-wide figures the flood tests assert on.
inline int64_t ReadStatusField(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      return std::stoll(line.substr(n + 1));
    }
  }
  return -1;
}
// Memory the process holds for its own data. Under AddressSanitizer, RSS also
// holds the quarantine (freed blocks kept poisoned, up to 256 MiB by default)
// and redzones, so growth there says nothing about the collector; the
// sanitizer allocator's count of live heap bytes does.
#if defined(__SANITIZE_ADDRESS__)
// Exported by libasan; GCC ships no header for it.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
inline int64_t RssBytes() {
  return static_cast<int64_t>(__sanitizer_get_current_allocated_bytes());
}
#else
inline int64_t RssBytes() { return ReadStatusField("VmRSS") * 1024; }
#endif
inline int64_t Threads() { return ReadStatusField("Threads"); }

// Plain TCP connection to 127.0.0.1:port; -1 on failure.
inline int DialLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class H2Attacker {
 public:
  struct Tls {
    std::string cert, key;  // empty: no client certificate
  };

  // Plaintext when `tls` is null. nullptr when the connection (or the TLS
  // handshake, as far as the client can tell) fails.
  static std::unique_ptr<H2Attacker> Dial(int port, const Tls* tls) {
    const int fd = DialLoopback(port);
    if (fd < 0) return nullptr;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{0, 200'000};  // a full send buffer means the server stalls us
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::unique_ptr<H2Attacker> c(new H2Attacker(fd));
    if (tls != nullptr && !c->StartTls(*tls)) return nullptr;
    static constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (!c->Write(std::string(kPreface, sizeof(kPreface) - 1))) return nullptr;
    if (!c->Frame(kSettings, 0, 0, "")) return nullptr;
    // A large connection window so the server never waits on us.
    if (!c->Frame(kWindowUpdate, 0, 0, Be32(0x7fff0000))) return nullptr;
    return c;
  }

  ~H2Attacker() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    close(fd_);
  }

  // HEADERS for a POST to `path`; `padding` bytes of extra metadata;
  // `end_headers` false leaves the header block open for CONTINUATION.
  bool Headers(uint32_t stream, const std::string& path, size_t padding = 0,
               bool end_headers = true) {
    std::string block;
    block += '\x83';                     // :method POST
    block += '\x86';                     // :scheme http
    Literal(&block, 4, "", path);        // :path
    Literal(&block, 1, "", "attacker");  // :authority
    Literal(&block, 0, "content-type", "application/grpc");
    Literal(&block, 0, "te", "trailers");
    if (padding > 0) Literal(&block, 0, "x-pad", std::string(padding, 'p'));
    return Frame(kHeaders, end_headers ? kEndHeaders : 0, stream, block);
  }

  // One CONTINUATION of `bytes` junk metadata.
  bool Continuation(uint32_t stream, size_t bytes, bool end_headers) {
    std::string block;
    Literal(&block, 0, "x-more", std::string(bytes, 'c'));
    return Frame(kContinuation, end_headers ? kEndHeaders : 0, stream, block);
  }

  bool Reset(uint32_t stream) {
    return Frame(kRstStream, 0, stream, Be32(8 /* CANCEL */));
  }

  // Reads whatever the server sent (without blocking when nothing is
  // there), answering SETTINGS and PING. False once the server closed.
  bool Pump() {
    while (true) {
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0) return open_;
      }
      char buf[16384];
      const int n = ssl_ != nullptr
                        ? SSL_read(ssl_, buf, sizeof(buf))
                        : static_cast<int>(recv(fd_, buf, sizeof(buf), 0));
      if (n <= 0) {
        open_ = false;
        return false;
      }
      in_.append(buf, static_cast<size_t>(n));
      while (in_.size() >= 9) {
        const size_t len = (static_cast<uint8_t>(in_[0]) << 16) |
                           (static_cast<uint8_t>(in_[1]) << 8) |
                           static_cast<uint8_t>(in_[2]);
        if (in_.size() < 9 + len) break;
        const uint8_t type = static_cast<uint8_t>(in_[3]);
        const uint8_t flags = static_cast<uint8_t>(in_[4]);
        if (type == kSettings && (flags & 1) == 0) {
          Frame(kSettings, 1, 0, "");
        } else if (type == kPing && (flags & 1) == 0) {
          Frame(kPing, 1, 0, in_.substr(9, len));
        } else if (type == kGoAway) {
          goaway_ = true;
        } else if (type == kRstStream) {
          ++resets_received_;
        } else if (type == kSettings) {
          settings_acked_ = true;
        }
        in_.erase(0, 9 + len);
      }
    }
  }

  bool open() const { return open_; }
  bool goaway() const { return goaway_; }
  // Streams the server reset (refused or cancelled).
  uint64_t resets_received() const { return resets_received_; }
  // The server acknowledged our SETTINGS.
  bool settings_acked() const { return settings_acked_; }

 private:
  static constexpr uint8_t kHeaders = 1, kRstStream = 3, kSettings = 4,
                           kPing = 6, kGoAway = 7, kWindowUpdate = 8,
                           kContinuation = 9;
  static constexpr uint8_t kEndHeaders = 4;

  explicit H2Attacker(int fd) : fd_(fd) {}

  bool StartTls(const Tls& tls) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return false;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (!tls.cert.empty() &&
        (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx_, tls.key.c_str(), SSL_FILETYPE_PEM) !=
             1)) {
      return false;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>("\x02h2"),
                        3);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }

  static std::string Be32(uint32_t v) {
    std::string s(4, '\0');
    s[0] = static_cast<char>(v >> 24);
    s[1] = static_cast<char>(v >> 16);
    s[2] = static_cast<char>(v >> 8);
    s[3] = static_cast<char>(v);
    return s;
  }

  // HPACK integer with an n-bit prefix (RFC 7541 5.1).
  static void Int(std::string* out, uint8_t first, int n, size_t v) {
    const size_t max = (1u << n) - 1;
    if (v < max) {
      out->push_back(static_cast<char>(first | v));
      return;
    }
    out->push_back(static_cast<char>(first | max));
    v -= max;
    while (v >= 128) {
      out->push_back(static_cast<char>((v % 128) + 128));
      v /= 128;
    }
    out->push_back(static_cast<char>(v));
  }
  static void Str(std::string* out, const std::string& s) {
    Int(out, 0, 7, s.size());
    *out += s;
  }
  // Literal header field without indexing (RFC 7541 6.2.2): by static
  // table index when `index` > 0, else with the literal `name`.
  static void Literal(std::string* out, int index, const std::string& name,
                      const std::string& value) {
    Int(out, 0, 4, static_cast<size_t>(index));
    if (index == 0) Str(out, name);
    Str(out, value);
  }

  bool Frame(uint8_t type, uint8_t flags, uint32_t stream,
             const std::string& payload) {
    std::string f(9, '\0');
    f[0] = static_cast<char>(payload.size() >> 16);
    f[1] = static_cast<char>(payload.size() >> 8);
    f[2] = static_cast<char>(payload.size());
    f[3] = static_cast<char>(type);
    f[4] = static_cast<char>(flags);
    f.replace(5, 4, Be32(stream & 0x7fffffff));
    return Write(f + payload);
  }

  bool Write(const std::string& data) {
    if (!open_) return false;
    size_t off = 0;
    while (off < data.size()) {
      const int n =
          ssl_ != nullptr
              ? SSL_write(ssl_, data.data() + off,
                          static_cast<int>(data.size() - off))
              : static_cast<int>(send(fd_, data.data() + off, data.size() - off,
                                      MSG_NOSIGNAL));
      if (n <= 0) {
        open_ = false;
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  const int fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string in_;
  bool open_ = true;
  bool goaway_ = false;
  bool settings_acked_ = false;
  uint64_t resets_received_ = 0;
};

}  // namespace wattlens::testing
