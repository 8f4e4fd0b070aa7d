// SPDX-License-Identifier: Apache-2.0
#include "collector/query_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "proto/transport/tls.h"

namespace wattlens::collector {

using google::protobuf::util::TimeUtil;

grpc::Status QueryServiceImpl::Authorize(grpc::ServerContext* ctx) const {
  if (!require_client_cert_) return grpc::Status::OK;
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "a verified client certificate is required");
  }
  if (transport::RoleOf(*auth) != transport::PeerRole::kReader) {
    role_refusals_.fetch_add(1);
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("queries need a reader certificate (URI SAN ",
                     transport::kReaderRoleUri,
                     "); this client certificate is not one"));
  }
  return grpc::Status::OK;
}

grpc::Status QueryServiceImpl::GetUsage(
    grpc::ServerContext* ctx, const wattlens::v1::GetUsageRequest* req,
    wattlens::v1::GetUsageResponse* resp) {
  if (grpc::Status st = Authorize(ctx); !st.ok()) return st;
  auto r = state_.GetUsage(*req);
  if (!r.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(r.status().code()),
                        std::string(r.status().message()));
  }
  *resp = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status QueryServiceImpl::ListNodes(
    grpc::ServerContext* ctx, const wattlens::v1::ListNodesRequest*,
    wattlens::v1::ListNodesResponse* resp) {
  if (grpc::Status st = Authorize(ctx); !st.ok()) return st;
  *resp = state_.ListNodes();
  return grpc::Status::OK;
}

grpc::Status QueryServiceImpl::Watch(
    grpc::ServerContext* ctx, const wattlens::v1::WatchRequest* req,
    grpc::ServerWriter<wattlens::v1::WatchResponse>* writer) {
  if (grpc::Status st = Authorize(ctx); !st.ok()) return st;
  // Subscribe first, then list: a change between the two is seen twice
  // rather than never.
  auto sub = state_.events().Subscribe(watch_queue_, req->include_reports());
  const auto now = TimeUtil::GetCurrentTime();
  const wattlens::v1::ListNodesResponse nodes = state_.ListNodes();
  for (const auto& n : nodes.nodes()) {
    wattlens::v1::WatchResponse ev;
    *ev.mutable_time() = now;
    auto* s = ev.mutable_node_status();
    s->set_node_name(n.node_name());
    s->set_state(n.state());
    s->set_epoch(n.epoch());
    s->set_message("current state");
    if (!writer->Write(ev)) {
      state_.events().Unsubscribe(sub);
      return grpc::Status::OK;
    }
  }
  wattlens::v1::WatchResponse ev;
  // The timeout only bounds how late a cancelled client is noticed.
  while (!ctx->IsCancelled()) {
    if (!sub->Next(&ev, absl::Milliseconds(500))) continue;
    if (!writer->Write(ev)) break;
  }
  state_.events().Unsubscribe(sub);
  return grpc::Status::OK;
}

}  // namespace wattlens::collector
