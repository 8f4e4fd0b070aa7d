// SPDX-License-Identifier: Apache-2.0
#include "collector/store.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector {
namespace {

// Counters are stored packed (Counters::Pack: a version byte and one
// varint per field), one BLOB per series state and per bucket. Fifteen
// integer columns per row made the single writer thread the limit at
// 10,000 nodes; a bucket row now holds the bucket's total, written with
// INSERT OR REPLACE from memory, so no SQL arithmetic is needed.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS nodes(
  node TEXT PRIMARY KEY, epoch INTEGER, sequence INTEGER,
  epochs_seen INTEGER, report_time_ns INTEGER, seen_ns INTEGER,
  agent_version TEXT, spec BLOB);
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, path TEXT NOT NULL,
  epoch INTEGER, cgroup_id INTEGER, counters BLOB,
  systemd_unit TEXT, ns TEXT, pod TEXT, container TEXT,
  workload_kind TEXT, workload TEXT, project TEXT,
  UNIQUE(node, path));
CREATE TABLE IF NOT EXISTS buckets(
  series INTEGER, bucket INTEGER, counters BLOB,
  PRIMARY KEY(series, bucket)) WITHOUT ROWID;
)sql";

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db)));
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()),
                    SQLITE_TRANSIENT);
}
void BindU64(sqlite3_stmt* s, int i, uint64_t v) {
  sqlite3_bind_int64(s, i, static_cast<sqlite3_int64>(v));
}
void BindCounters(sqlite3_stmt* s, int i, const Counters& c) {
  const std::string packed = c.Pack();
  sqlite3_bind_blob(s, i, packed.data(), static_cast<int>(packed.size()),
                    SQLITE_TRANSIENT);
}
absl::Status ColumnCounters(sqlite3_stmt* s, int i, Counters* out) {
  const void* blob = sqlite3_column_blob(s, i);
  const int size = sqlite3_column_bytes(s, i);
  if (!blob || !Counters::Unpack(blob, static_cast<size_t>(size), out)) {
    return absl::DataLossError("damaged counters blob");
  }
  return absl::OkStatus();
}
std::string ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         sqlite3_column_bytes(s, i))
           : std::string();
}

std::string SeriesKey(const std::string& node, const std::string& path) {
  std::string key;
  key.reserve(node.size() + 1 + path.size());
  key.append(node).push_back('\0');
  key.append(path);
  return key;
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(StoreOptions options,
                                                   const Clock& clock) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(
          options.path.c_str(), &db,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
          nullptr) != SQLITE_OK) {
    absl::Status st = absl::UnavailableError(absl::StrCat(
        "open ", options.path, ": ", db ? sqlite3_errmsg(db) : "no memory"));
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<Store> store(new Store(std::move(options), clock, db));
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec(store->options_.sync_full
                                  ? "PRAGMA synchronous=FULL"
                                  : "PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA cache_size=-65536"));  // 64 MiB
  RETURN_IF_ERROR(store->Exec(kSchema));
  {
    // A store written by an older collector (before integer series ids, or
    // before the cost counters and node specs).
    Stmt probe_series, probe_nodes;
    if (sqlite3_prepare_v2(db, "SELECT id, counters FROM series LIMIT 0",
                           -1, &probe_series.s, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT s.spec, b.counters FROM nodes s, buckets b "
                           "LIMIT 0",
                           -1,
                           &probe_nodes.s, nullptr) != SQLITE_OK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store ", store->options_.path,
          " has an older schema (before series ids or cost counters); move "
          "it away to start a new one"));
    }
  }
  RETURN_IF_ERROR(store->Prepare());
  return store;
}

Store::Store(StoreOptions options, const Clock& clock, sqlite3* db)
    : options_(std::move(options)), clock_(clock), db_(db) {}

Store::~Store() {
  Stop();
  for (sqlite3_stmt* s : {upsert_node_, upsert_series_, upsert_counters_,
                          update_series_, upsert_bucket_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status st = absl::InternalError(
        absl::StrCat("sqlite: ", err ? err : "error", " in: ", sql));
    sqlite3_free(err);
    return st;
  }
  return absl::OkStatus();
}

absl::Status Store::Prepare() {
  struct {
    sqlite3_stmt** out;
    const char* sql;
  } stmts[] = {
      {&upsert_node_,
       "INSERT INTO nodes VALUES(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT(node) DO "
       "UPDATE SET epoch=?2, sequence=?3, epochs_seen=?4, report_time_ns=?5, "
       "seen_ns=?6, agent_version=?7, spec=COALESCE(?8, spec)"},
      {&upsert_series_,
       "INSERT INTO series(node, path, epoch, cgroup_id, counters, "
       "systemd_unit, ns, pod, container, workload_kind, workload, project) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
       "ON CONFLICT(node, path) DO UPDATE SET epoch=?3, cgroup_id=?4, "
       "counters=?5, systemd_unit=?6, ns=?7, pod=?8, container=?9, "
       "workload_kind=?10, workload=?11, project=?12 RETURNING id"},
      {&upsert_counters_,
       "INSERT INTO series(node, path, epoch, cgroup_id, counters) "
       "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(node, path) DO UPDATE SET "
       "epoch=?3, cgroup_id=?4, counters=?5 RETURNING id"},
      {&update_series_,
       "UPDATE series SET epoch=?2, cgroup_id=?3, counters=?4 WHERE id=?1"},
      {&upsert_bucket_,
       "INSERT OR REPLACE INTO buckets(series, bucket, counters) "
       "VALUES(?1, ?2, ?3)"},
  };
  for (auto& s : stmts) {
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.out,
                           nullptr) != SQLITE_OK) {
      return SqliteError(db_, "prepare");
    }
  }
  return absl::OkStatus();
}

absl::Status Store::LoadInto(ClusterState& state) {
  // Buckets are stored as indexes at the resolution they were written with.
  int64_t stored_res = options_.resolution_ns;
  {
    Stmt q;
    sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='resolution_ns'",
                       -1, &q.s, nullptr);
    if (q.s && sqlite3_step(q.s) == SQLITE_ROW) {
      stored_res = sqlite3_column_int64(q.s, 0);
    }
  }
  const int64_t now_real = clock_.RealtimeNs();
  const int64_t cutoff_ns = now_real - options_.retention_ns;
  size_t nodes = 0, series = 0, buckets = 0;
  {
    Stmt q;
    if (sqlite3_prepare_v2(db_,
                           "SELECT node, epoch, sequence, epochs_seen, "
                           "report_time_ns, seen_ns, agent_version, spec "
                           "FROM nodes",
                           -1, &q.s, nullptr) != SQLITE_OK) {
      return SqliteError(db_, "load nodes");
    }
    while (sqlite3_step(q.s) == SQLITE_ROW) {
      RestoredNode n;
      n.node_name = ColumnText(q.s, 0);
      n.epoch = sqlite3_column_int64(q.s, 1);
      n.sequence = sqlite3_column_int64(q.s, 2);
      n.epochs_seen = sqlite3_column_int64(q.s, 3);
      n.report_time_ns = sqlite3_column_int64(q.s, 4);
      n.seen_realtime_ns = sqlite3_column_int64(q.s, 5);
      n.agent_version = ColumnText(q.s, 6);
      if (const void* b = sqlite3_column_blob(q.s, 7)) {
        n.spec.assign(static_cast<const char*>(b), sqlite3_column_bytes(q.s, 7));
      }
      if (n.seen_realtime_ns < cutoff_ns) continue;
      state.RestoreNode(n);
      ++nodes;
    }
  }
  {
    Stmt q;
    if (sqlite3_prepare_v2(db_,
                           "SELECT node, path, epoch, cgroup_id, counters, "
                           "systemd_unit, ns, pod, container, workload_kind, "
                           "workload, project, id FROM series",
                           -1, &q.s, nullptr) != SQLITE_OK) {
      return SqliteError(db_, "load series");
    }
    while (sqlite3_step(q.s) == SQLITE_ROW) {
      RestoredSeries s;
      s.node_name = ColumnText(q.s, 0);
      s.labels.cgroup_path = ColumnText(q.s, 1);
      s.epoch = sqlite3_column_int64(q.s, 2);
      s.cgroup_id = sqlite3_column_int64(q.s, 3);
      if (absl::Status st = ColumnCounters(q.s, 4, &s.cumulative); !st.ok()) {
        return absl::DataLossError(absl::StrCat(
            "store ", options_.path, ": series ", s.node_name, " ",
            s.labels.cgroup_path, ": ", st.message()));
      }
      s.labels.systemd_unit = ColumnText(q.s, 5);
      s.labels.ns = ColumnText(q.s, 6);
      s.labels.pod = ColumnText(q.s, 7);
      s.labels.container = ColumnText(q.s, 8);
      s.labels.workload_kind = ColumnText(q.s, 9);
      s.labels.workload = ColumnText(q.s, 10);
      s.labels.project = ColumnText(q.s, 11);
      series_ids_[SeriesKey(s.node_name, s.labels.cgroup_path)] =
          sqlite3_column_int64(q.s, 12);
      state.RestoreSeries(s);
      ++series;
    }
  }
  // Buckets stored at another resolution are re-indexed (and merged) here
  // and rewritten below, once.
  const bool rebucket = stored_res != options_.resolution_ns;
  std::map<std::pair<int64_t, int64_t>, Counters> rebucketed;
  {
    Stmt q;
    if (sqlite3_prepare_v2(
            db_,
            "SELECT s.node, s.path, b.bucket, b.counters, b.series FROM "
            "buckets b JOIN series s ON s.id = b.series WHERE b.bucket >= ?1 "
            "ORDER BY s.node, s.path, b.bucket",
            -1, &q.s, nullptr) != SQLITE_OK) {
      return SqliteError(db_, "load buckets");
    }
    sqlite3_bind_int64(q.s, 1, cutoff_ns / stored_res);
    while (sqlite3_step(q.s) == SQLITE_ROW) {
      const int64_t start_ns = sqlite3_column_int64(q.s, 2) * stored_res;
      const int64_t bucket = start_ns / options_.resolution_ns;
      Counters c;
      if (absl::Status st = ColumnCounters(q.s, 3, &c); !st.ok()) {
        return absl::DataLossError(absl::StrCat(
            "store ", options_.path, ": bucket of ", ColumnText(q.s, 0), " ",
            ColumnText(q.s, 1), ": ", st.message()));
      }
      state.RestoreBucket(ColumnText(q.s, 0), ColumnText(q.s, 1), bucket, c);
      if (rebucket) {
        rebucketed[{sqlite3_column_int64(q.s, 4), bucket}].Add(c);
      }
      ++buckets;
    }
  }
  if (rebucket) {
    RETURN_IF_ERROR(Exec("BEGIN; DELETE FROM buckets"));
    for (const auto& [key, c] : rebucketed) {
      sqlite3_reset(upsert_bucket_);
      sqlite3_bind_int64(upsert_bucket_, 1, key.first);
      sqlite3_bind_int64(upsert_bucket_, 2, key.second);
      BindCounters(upsert_bucket_, 3, c);
      if (sqlite3_step(upsert_bucket_) != SQLITE_DONE) {
        Exec("ROLLBACK").IgnoreError();
        return SqliteError(db_, "rebucket");
      }
    }
    RETURN_IF_ERROR(Exec("COMMIT"));
  }
  RETURN_IF_ERROR(
      Exec(absl::StrCat("INSERT OR REPLACE INTO meta VALUES('resolution_ns',",
                        options_.resolution_ns, ")")
               .c_str()));
  spdlog::info("store {}: restored {} nodes, {} series, {} buckets",
               options_.path, nodes, series, buckets);
  return absl::OkStatus();
}

void Store::Start() {
  last_retention_mono_ns_ = clock_.MonotonicNs();
  writer_ = std::thread([this] { WriterLoop(); });
}

void Store::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

void Store::Submit(NodeWrite&& write, Done done) {
  absl::MutexLock lock(&mu_);
  ++submitted_;
  stats_.queued.fetch_add(1, std::memory_order_relaxed);
  queue_.push_back({std::move(write), std::move(done)});
}

void Store::SubmitBarrier(Done done) {
  absl::MutexLock lock(&mu_);
  ++submitted_;
  stats_.queued.fetch_add(1, std::memory_order_relaxed);
  queue_.push_back({NodeWrite{}, std::move(done), /*barrier=*/true});
}

void Store::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = submitted_;
  auto done = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return committed_ >= target;
  };
  mu_.Await(absl::Condition(&done));
}

absl::Status Store::WriteOne(const NodeWrite& w) {
  sqlite3_stmt* s = upsert_node_;
  sqlite3_reset(s);
  BindText(s, 1, w.node_name);
  BindU64(s, 2, w.epoch);
  BindU64(s, 3, w.sequence);
  BindU64(s, 4, w.epochs_seen);
  sqlite3_bind_int64(s, 5, w.report_time_ns);
  sqlite3_bind_int64(s, 6, w.seen_realtime_ns);
  BindText(s, 7, w.agent_version);
  if (w.node_spec.empty()) {
    sqlite3_bind_null(s, 8);  // unchanged: keep the stored one
  } else {
    sqlite3_bind_blob(s, 8, w.node_spec.data(),
                      static_cast<int>(w.node_spec.size()), SQLITE_TRANSIENT);
  }
  if (sqlite3_step(s) != SQLITE_DONE) return SqliteError(db_, "node");
  uint64_t rows = 1;
  for (const SeriesWrite& sw : w.series) {
    const std::string key = SeriesKey(w.node_name, sw.cgroup_path);
    auto cached = series_ids_.find(key);
    int64_t id = cached == series_ids_.end() ? 0 : cached->second;
    bool written = false;
    if (id && !sw.labels) {
      // The hot path: a known series, counters only, by rowid.
      s = update_series_;
      sqlite3_reset(s);
      sqlite3_bind_int64(s, 1, id);
      BindU64(s, 2, sw.epoch);
      BindU64(s, 3, sw.cgroup_id);
      BindCounters(s, 4, sw.cumulative);
      if (sqlite3_step(s) != SQLITE_DONE) return SqliteError(db_, "series");
      written = sqlite3_changes(db_) == 1;  // 0: deleted by retention
    }
    if (!written) {
      s = sw.labels ? upsert_series_ : upsert_counters_;
      sqlite3_reset(s);
      BindText(s, 1, w.node_name);
      BindText(s, 2, sw.cgroup_path);
      BindU64(s, 3, sw.epoch);
      BindU64(s, 4, sw.cgroup_id);
      BindCounters(s, 5, sw.cumulative);
      if (sw.labels) {
        const WorkloadLabels& l = *sw.labels;
        const int p = 6;
        BindText(s, p, l.systemd_unit);
        BindText(s, p + 1, l.ns);
        BindText(s, p + 2, l.pod);
        BindText(s, p + 3, l.container);
        BindText(s, p + 4, l.workload_kind);
        BindText(s, p + 5, l.workload);
        BindText(s, p + 6, l.project);
      }
      if (sqlite3_step(s) != SQLITE_ROW) return SqliteError(db_, "series");
      id = sqlite3_column_int64(s, 0);
      sqlite3_reset(s);
      series_ids_[key] = id;
    }
    ++rows;
    if (sw.delta.IsZero()) continue;
    s = upsert_bucket_;
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, sw.bucket);
    BindCounters(s, 3, sw.bucket_total);  // the bucket's total, from memory
    if (sqlite3_step(s) != SQLITE_DONE) return SqliteError(db_, "bucket");
    ++rows;
  }
  stats_.rows.fetch_add(rows, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Store::ApplyRetention() {
  const int64_t now_real = clock_.RealtimeNs();
  const int64_t cutoff_ns = now_real - options_.retention_ns;
  const std::string sql = absl::StrCat(
      "BEGIN; DELETE FROM buckets WHERE bucket < ",
      cutoff_ns / options_.resolution_ns,
      "; DELETE FROM series WHERE node IN (SELECT node FROM nodes WHERE "
      "seen_ns < ",
      cutoff_ns, "); DELETE FROM nodes WHERE seen_ns < ", cutoff_ns,
      "; COMMIT");
  const int64_t before = sqlite3_total_changes64(db_);
  RETURN_IF_ERROR(Exec(sql.c_str()));
  // Series of gone nodes may have been deleted: forget their ids (a write
  // for an unknown or deleted id goes through the upsert and gets a new one).
  if (sqlite3_total_changes64(db_) != before) series_ids_.clear();
  return absl::OkStatus();
}

void Store::WriterLoop() {
  std::vector<Item> batch;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      if (queue_.empty() && stopping_) return;
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    if (!batch.empty()) {
      absl::Status st = Exec("BEGIN");
      for (const Item& it : batch) {
        if (!st.ok()) break;
        if (!it.barrier) st = WriteOne(it.write);
      }
      if (st.ok()) {
        st = Exec("COMMIT");
      } else {
        Exec("ROLLBACK").IgnoreError();
      }
      if (st.ok()) {
        stats_.commits.fetch_add(1, std::memory_order_relaxed);
        stats_.writes.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        stats_.failures.fetch_add(batch.size(), std::memory_order_relaxed);
        // Ids handed out inside the rolled-back transaction may be reused
        // for other series: the cache must not outlive it.
        series_ids_.clear();
        if (!failing_) {
          spdlog::error(
              "store commit of {} reports failed, retrying every {} ms "
              "until it succeeds (nothing is acknowledged meanwhile): {}",
              batch.size(), options_.retry_ns / 1'000'000, st.ToString());
        }
        failing_ = true;
        absl::MutexLock lock(&mu_);
        if (!stopping_) {
          // Back at the head, in order: memory already holds these reports
          // and the agents keep them until they are acknowledged.
          queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                        std::make_move_iterator(batch.end()));
          batch.clear();
          mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               absl::Nanoseconds(options_.retry_ns));
          continue;
        }
      }
      if (st.ok() && failing_) {
        failing_ = false;
        spdlog::info("store commits succeed again");
      }
      stats_.last_commit_ns.store(clock_.RealtimeNs(),
                                  std::memory_order_relaxed);
      for (Item& it : batch) {
        if (it.done) it.done(st);
      }
      {
        absl::MutexLock lock(&mu_);
        committed_ += batch.size();
      }
      stats_.queued.fetch_sub(batch.size(), std::memory_order_relaxed);
      batch.clear();
    }
    const int64_t now = clock_.MonotonicNs();
    if (now - last_retention_mono_ns_ >= 60'000'000'000) {
      last_retention_mono_ns_ = now;
      if (absl::Status st = ApplyRetention(); !st.ok()) {
        spdlog::warn("store retention: {}", st.ToString());
      }
    }
  }
}

}  // namespace wattlens::collector
