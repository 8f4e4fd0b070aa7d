// SPDX-License-Identifier: Apache-2.0
// QueryService: cluster views over ClusterState (sync API: few clients).
#pragma once

#include <atomic>
#include <cstdint>

#include "collector/cluster_state.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::collector {

class QueryServiceImpl final : public wattlens::v1::QueryService::Service {
 public:
  // require_client_cert: with TLS, queries need a verified certificate with
  // the reader role (transport::PeerRole::kReader): agents may only upload.
  QueryServiceImpl(ClusterState& state, bool require_client_cert,
                   size_t watch_queue = 4096)
      : state_(state),
        require_client_cert_(require_client_cert),
        watch_queue_(watch_queue) {}

  grpc::Status GetUsage(grpc::ServerContext* ctx,
                        const wattlens::v1::GetUsageRequest* req,
                        wattlens::v1::GetUsageResponse* resp) override;
  grpc::Status ListNodes(grpc::ServerContext* ctx,
                         const wattlens::v1::ListNodesRequest* req,
                         wattlens::v1::ListNodesResponse* resp) override;
  grpc::Status Watch(
      grpc::ServerContext* ctx, const wattlens::v1::WatchRequest* req,
      grpc::ServerWriter<wattlens::v1::WatchResponse>* writer) override;

  // Queries refused because the certificate lacks the reader role.
  uint64_t role_refusals() const { return role_refusals_.load(); }

 private:
  grpc::Status Authorize(grpc::ServerContext* ctx) const;
  ClusterState& state_;
  const bool require_client_cert_;
  const size_t watch_queue_;
  mutable std::atomic<uint64_t> role_refusals_{0};
};

}  // namespace wattlens::collector
