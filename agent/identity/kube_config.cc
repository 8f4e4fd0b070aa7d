// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/kube_config.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace wattlens::identity {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxKubeconfigBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 64 << 10;
constexpr int kMaxYamlDepth = 32;
constexpr size_t kMaxYamlNodes = 100'000;  // bounds alias expansion

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string s;
  s.resize(max + 1);
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  if (s.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than ", max, " bytes"));
  }
  return s;
}

// libyaml's document tree -> JSON, so kubeconfig and API objects are read
// with the same checked accessors. Scalars stay strings.
class YamlToJson {
 public:
  explicit YamlToJson(yaml_document_t* doc) : doc_(doc) {}
  absl::StatusOr<json> Convert(yaml_node_t* node, int depth) {
    if (node == nullptr) return json();
    if (depth > kMaxYamlDepth || ++nodes_ > kMaxYamlNodes) {
      return absl::InvalidArgumentError("YAML too deep or too large");
    }
    switch (node->type) {
      case YAML_SCALAR_NODE:
        return json(
            std::string(reinterpret_cast<const char*>(node->data.scalar.value),
                        node->data.scalar.length));
      case YAML_SEQUENCE_NODE: {
        json arr = json::array();
        for (yaml_node_item_t* it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; ++it) {
          absl::StatusOr<json> v =
              Convert(yaml_document_get_node(doc_, *it), depth + 1);
          if (!v.ok()) return v.status();
          arr.push_back(*std::move(v));
        }
        return arr;
      }
      case YAML_MAPPING_NODE: {
        json obj = json::object();
        for (yaml_node_pair_t* p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; ++p) {
          yaml_node_t* k = yaml_document_get_node(doc_, p->key);
          if (k == nullptr || k->type != YAML_SCALAR_NODE) continue;
          std::string key(reinterpret_cast<const char*>(k->data.scalar.value),
                          k->data.scalar.length);
          absl::StatusOr<json> v =
              Convert(yaml_document_get_node(doc_, p->value), depth + 1);
          if (!v.ok()) return v.status();
          obj[key] = *std::move(v);
        }
        return obj;
      }
      default:
        return json();
    }
  }

 private:
  yaml_document_t* doc_;
  size_t nodes_ = 0;
};

absl::StatusOr<json> ParseYaml(const std::string& text,
                               const std::string& name) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    return absl::ResourceExhaustedError("yaml_parser_initialize");
  }
  yaml_parser_set_input_string(
      &parser, reinterpret_cast<const unsigned char*>(text.data()),
      text.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    std::string err =
        absl::StrCat(name, ":", parser.problem_mark.line + 1, ": ",
                     parser.problem != nullptr ? parser.problem : "YAML error");
    yaml_parser_delete(&parser);
    return absl::InvalidArgumentError(err);
  }
  YamlToJson conv(&doc);
  absl::StatusOr<json> out = conv.Convert(yaml_document_get_root_node(&doc), 0);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return out;
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The `inner` object of the list entry named `name` ({name, <inner>: {}}).
const json* Named(const json& root, const char* list, const std::string& name,
                  const char* inner) {
  if (!root.is_object()) return nullptr;
  auto l = root.find(list);
  if (l == root.end() || !l->is_array()) return nullptr;
  for (const json& e : *l) {
    if (Str(e, "name") != name) continue;
    auto in = e.find(inner);
    if (in != e.end() && in->is_object()) return &*in;
  }
  return nullptr;
}

std::string Resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return absl::StrCat(dir, "/", path);
}

absl::StatusOr<std::string> Base64Pem(const std::string& data,
                                      absl::string_view what) {
  std::string out;
  if (!absl::Base64Unescape(data, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not valid base64"));
  }
  return out;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<KubeApiConfig> InClusterConfig(const EnvLookup& env,
                                              const std::string& sa_dir) {
  std::optional<std::string> host = env("KUBERNETES_SERVICE_HOST");
  std::optional<std::string> port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port || host->empty() || port->empty()) {
    return absl::FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set; use "
        "--kubeconfig");
  }
  KubeApiConfig c;
  c.source = "in-cluster";
  bool ipv6 = host->find(':') != std::string::npos;
  c.server = absl::StrCat("https://", ipv6 ? "[" : "", *host, ipv6 ? "]" : "",
                          ":", *port);
  c.token_file = absl::StrCat(sa_dir, "/token");
  c.ca_file = absl::StrCat(sa_dir, "/ca.crt");
  struct stat st;
  if (stat(c.token_file.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("service-account token ", c.token_file, " is missing"));
  }
  if (stat(c.ca_file.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("service-account CA ", c.ca_file, " is missing"));
  }
  return c;
}

absl::StatusOr<KubeApiConfig> LoadKubeconfig(const std::string& path,
                                             absl::string_view context) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxKubeconfigBytes);
  if (!text.ok()) return text.status();
  absl::StatusOr<json> root = ParseYaml(*text, path);
  if (!root.ok()) return root.status();
  std::string dir = ".";
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }

  std::string ctx_name =
      context.empty() ? Str(*root, "current-context") : std::string(context);
  if (ctx_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no current-context and no context given"));
  }
  const json* ctx = Named(*root, "contexts", ctx_name, "context");
  if (ctx == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": context \"", ctx_name, "\" not found"));
  }
  std::string cluster_name = Str(*ctx, "cluster");
  std::string user_name = Str(*ctx, "user");
  const json* cluster = Named(*root, "clusters", cluster_name, "cluster");
  if (cluster == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cluster \"", cluster_name, "\" not found"));
  }
  KubeApiConfig c;
  c.source = path;
  c.server = std::string(absl::StripSuffix(Str(*cluster, "server"), "/"));
  if (!absl::StartsWith(c.server, "https://") &&
      !absl::StartsWith(c.server, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cluster server \"", c.server, "\" is not an http(s) URL"));
  }
  c.ca_file = Resolve(dir, Str(*cluster, "certificate-authority"));
  if (std::string d = Str(*cluster, "certificate-authority-data"); !d.empty()) {
    absl::StatusOr<std::string> pem =
        Base64Pem(d, "certificate-authority-data");
    if (!pem.ok()) return pem.status();
    c.ca_pem = *std::move(pem);
  }
  c.insecure_skip_tls_verify =
      absl::AsciiStrToLower(Str(*cluster, "insecure-skip-tls-verify")) ==
      "true";

  const json* user =
      user_name.empty() ? nullptr : Named(*root, "users", user_name, "user");
  if (!user_name.empty() && user == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path, ": user \"", user_name, "\" not found"));
  }
  if (user != nullptr) {
    if (user->contains("exec") || user->contains("auth-provider")) {
      return absl::UnimplementedError(absl::StrCat(
          path, ": user \"", user_name,
          "\" uses an exec or auth-provider plugin; use a token or a client "
          "certificate"));
    }
    c.token = Str(*user, "token");
    c.token_file = Resolve(dir, Str(*user, "tokenFile"));
    c.client_cert_file = Resolve(dir, Str(*user, "client-certificate"));
    c.client_key_file = Resolve(dir, Str(*user, "client-key"));
    if (std::string d = Str(*user, "client-certificate-data"); !d.empty()) {
      absl::StatusOr<std::string> pem = Base64Pem(d, "client-certificate-data");
      if (!pem.ok()) return pem.status();
      c.client_cert_pem = *std::move(pem);
    }
    if (std::string d = Str(*user, "client-key-data"); !d.empty()) {
      absl::StatusOr<std::string> pem = Base64Pem(d, "client-key-data");
      if (!pem.ok()) return pem.status();
      c.client_key_pem = *std::move(pem);
    }
    bool has_cert = !c.client_cert_file.empty() || !c.client_cert_pem.empty();
    bool has_key = !c.client_key_file.empty() || !c.client_key_pem.empty();
    if (has_cert != has_key) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": user \"", user_name,
          "\" has a client certificate without a key or the reverse"));
    }
  }
  return c;
}

std::string NodeName(const EnvLookup& env,
                     std::optional<std::string> hostname) {
  if (std::optional<std::string> n = env("NODE_NAME"); n && !n->empty()) {
    return *n;
  }
  if (hostname) return *hostname;
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

TokenSource::TokenSource(const KubeApiConfig& config, const Clock& clock)
    : file_(config.token_file), clock_(clock), token_(config.token) {}

std::string TokenSource::Token() {
  absl::MutexLock lock(&mu_);
  if (file_.empty()) return token_;
  int64_t now = clock_.MonotonicNs();
  if (read_once_ && now - last_read_ns_ < kRecheckNs) return token_;
  last_read_ns_ = now;
  absl::StatusOr<std::string> t = ReadSmallFile(file_, kMaxTokenBytes);
  if (t.ok()) {
    std::string fresh(absl::StripAsciiWhitespace(*t));
    if (!fresh.empty()) {
      if (read_once_ && fresh != token_) ++reloads_;
      token_ = std::move(fresh);
      read_once_ = true;
    }
  }
  return token_;
}

uint64_t TokenSource::reloads() const {
  absl::MutexLock lock(&mu_);
  return reloads_;
}

}  // namespace wattlens::identity
