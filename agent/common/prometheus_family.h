// SPDX-License-Identifier: Apache-2.0
// Building prometheus-cpp metric families by hand, for Collectables that
// render an immutable snapshot on each scrape (agent and collector).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace wattlens::prom {

inline prometheus::MetricFamily Family(std::string name, std::string help,
                                       prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Appends one sample; counters and gauges only.
inline void Add(prometheus::MetricFamily& f,
                std::vector<prometheus::ClientMetric::Label> labels,
                double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace wattlens::prom
