#include "collector/store.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/common/status_macros.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector {
namespace {

// "a INTEGER, b INTEGER, ..." / "a, b, ..." / "?k, ?k+1, ..." / "a=?k, ..."
// over the counter columns, so adding a counter is one line in counters.h.
std::string CounterColumns(const char* prefix, const char* suffix) {
  std::string out;
  for (const char* n : Counters::kNames) {
    if (!out.empty()) out += ", ";
    absl::StrAppend(&out, prefix, n, suffix);
  }
  return out;
}
std::string CounterParams(int first) {
  std::string out;
  for (size_t i = 0; i < Counters::kNames.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", "?", first + static_cast<int>(i));
  }
  return out;
}
std::string CounterAssign(int first, bool add) {
  std::string out;
  for (size_t i = 0; i < Counters::kNames.size(); ++i) {
    const char* n = Counters::kNames[i];
    absl::StrAppend(&out, i ? ", " : "", n, "=", add ? n : "",
                    add ? "+" : "", "?", first + static_cast<int>(i));
  }
  return out;
}
constexpr int kNumCounters = static_cast<int>(Counters::kNames.size());

std::string Schema() {
  return absl::StrCat(R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS nodes(
  node TEXT PRIMARY KEY, epoch INTEGER, sequence INTEGER,
  epochs_seen INTEGER, report_time_ns INTEGER, seen_ns INTEGER,
  agent_version TEXT, spec BLOB);
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, path TEXT NOT NULL,
  epoch INTEGER, cgroup_id INTEGER, )sql",
                      CounterColumns("", " INTEGER"), R"sql(,
  systemd_unit TEXT, ns TEXT, pod TEXT, container TEXT,
  workload_kind TEXT, workload TEXT, project TEXT,
  UNIQUE(node, path));
CREATE TABLE IF NOT EXISTS buckets(
  series INTEGER, bucket INTEGER, )sql",
                      CounterColumns("", " INTEGER"), R"sql(,
  PRIMARY KEY(series, bucket)) WITHOUT ROWID;
)sql");
}
// Series are keyed by an integer id (the rowid) in every hot write: long
// text keys ((node, cgroup path), ~100 bytes on Kubernetes) made each
// update a wide B-tree walk and capped the writer at ~115 k rows/s.

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
void BindCounters(sqlite3_stmt* s, int first, const Counters& c) {
  int i = first;
  for (auto f : Counters::kFields) BindU64(s, i++, c.*f);
}
Counters ColumnCounters(sqlite3_stmt* s, int first) {
  Counters c;
  int i = first;
  for (auto f : Counters::kFields) {
    c.*f = static_cast<uint64_t>(sqlite3_column_int64(s, i++));
  }
  return c;
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
  RETURN_IF_ERROR(store->Exec(Schema().c_str()));
  {
    // A store written by an older collector (before integer series ids, or
    // before the cost counters and node specs).
    Stmt probe_series, probe_nodes;
    if (sqlite3_prepare_v2(db, "SELECT id, elapsed_ns FROM series LIMIT 0",
                           -1, &probe_series.s, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT spec FROM nodes LIMIT 0", -1,
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
  const int n = kNumCounters;
  const std::string cols = CounterColumns("", "");
  const int label0 = 5 + n;  // first label parameter of the series upsert
  const std::string upsert_series = absl::StrCat(
      "INSERT INTO series(node, path, epoch, cgroup_id, ", cols,
      ", systemd_unit, ns, pod, container, workload_kind, workload, project) "
      "VALUES(?1, ?2, ?3, ?4, ",
      CounterParams(5), ", ?", label0, ", ?", label0 + 1, ", ?", label0 + 2,
      ", ?", label0 + 3, ", ?", label0 + 4, ", ?", label0 + 5, ", ?",
      label0 + 6, ") ON CONFLICT(node, path) DO UPDATE SET epoch=?3, "
      "cgroup_id=?4, ",
      CounterAssign(5, false), ", systemd_unit=?", label0, ", ns=?", label0 + 1,
      ", pod=?", label0 + 2, ", container=?", label0 + 3, ", workload_kind=?",
      label0 + 4, ", workload=?", label0 + 5, ", project=?", label0 + 6,
      " RETURNING id");
  const std::string upsert_counters = absl::StrCat(
      "INSERT INTO series(node, path, epoch, cgroup_id, ", cols,
      ") VALUES(?1, ?2, ?3, ?4, ", CounterParams(5),
      ") ON CONFLICT(node, path) DO UPDATE SET epoch=?3, cgroup_id=?4, ",
      CounterAssign(5, false), " RETURNING id");
  const std::string update_series =
      absl::StrCat("UPDATE series SET epoch=?2, cgroup_id=?3, ",
                   CounterAssign(4, false), " WHERE id=?1");
  const std::string upsert_bucket = absl::StrCat(
      "INSERT INTO buckets(series, bucket, ", cols, ") VALUES(?1, ?2, ",
      CounterParams(3), ") ON CONFLICT(series, bucket) DO UPDATE SET ",
      CounterAssign(3, true));
  struct {
    sqlite3_stmt** out;
    std::string sql;
  } stmts[] = {
      {&upsert_node_,
       "INSERT INTO nodes VALUES(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT(node) DO "
       "UPDATE SET epoch=?2, sequence=?3, epochs_seen=?4, report_time_ns=?5, "
       "seen_ns=?6, agent_version=?7, spec=COALESCE(?8, spec)"},
      {&upsert_series_, upsert_series},
      {&upsert_counters_, upsert_counters},
      {&update_series_, update_series},
      {&upsert_bucket_, upsert_bucket},
  };
  for (auto& s : stmts) {
    if (sqlite3_prepare_v3(db_, s.sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT,
                           s.out,
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
    const std::string sql = absl::StrCat(
        "SELECT node, path, epoch, cgroup_id, ", CounterColumns("", ""),
        ", systemd_unit, ns, pod, container, workload_kind, workload, "
        "project, id FROM series");
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr) !=
        SQLITE_OK) {
      return SqliteError(db_, "load series");
    }
    while (sqlite3_step(q.s) == SQLITE_ROW) {
      RestoredSeries s;
      s.node_name = ColumnText(q.s, 0);
      s.labels.cgroup_path = ColumnText(q.s, 1);
      s.epoch = sqlite3_column_int64(q.s, 2);
      s.cgroup_id = sqlite3_column_int64(q.s, 3);
      s.cumulative = ColumnCounters(q.s, 4);
      const int l = 4 + kNumCounters;
      s.labels.systemd_unit = ColumnText(q.s, l);
      s.labels.ns = ColumnText(q.s, l + 1);
      s.labels.pod = ColumnText(q.s, l + 2);
      s.labels.container = ColumnText(q.s, l + 3);
      s.labels.workload_kind = ColumnText(q.s, l + 4);
      s.labels.workload = ColumnText(q.s, l + 5);
      s.labels.project = ColumnText(q.s, l + 6);
      series_ids_[SeriesKey(s.node_name, s.labels.cgroup_path)] =
          sqlite3_column_int64(q.s, l + 7);
      state.RestoreSeries(s);
      ++series;
    }
  }
  {
    Stmt q;
    const std::string sql = absl::StrCat(
        "SELECT s.node, s.path, b.bucket, ", CounterColumns("b.", ""),
        " FROM buckets b JOIN series s ON s.id = b.series WHERE b.bucket >= "
        "?1 ORDER BY s.node, s.path, b.bucket");
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr) !=
        SQLITE_OK) {
      return SqliteError(db_, "load buckets");
    }
    sqlite3_bind_int64(q.s, 1, cutoff_ns / stored_res);
    while (sqlite3_step(q.s) == SQLITE_ROW) {
      const int64_t start_ns = sqlite3_column_int64(q.s, 2) * stored_res;
      state.RestoreBucket(ColumnText(q.s, 0), ColumnText(q.s, 1),
                          start_ns / options_.resolution_ns,
                          ColumnCounters(q.s, 3));
      ++buckets;
    }
  }
  if (stored_res != options_.resolution_ns) {
    // Rewrite the stored indexes at the new resolution, once.
    RETURN_IF_ERROR(Exec("BEGIN"));
    Stmt q;
    std::string sums;
    for (const char* c : Counters::kNames) {
      absl::StrAppend(&sums, ", SUM(", c, ") AS ", c);
    }
    const std::string sql = absl::StrCat(
        "CREATE TEMP TABLE b2 AS SELECT series, (bucket*?1)/?2 AS bucket", sums,
        " FROM buckets GROUP BY 1,2");
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr);
    sqlite3_bind_int64(q.s, 1, stored_res);
    sqlite3_bind_int64(q.s, 2, options_.resolution_ns);
    if (sqlite3_step(q.s) != SQLITE_DONE) return SqliteError(db_, "rebucket");
    RETURN_IF_ERROR(
        Exec("DELETE FROM buckets; INSERT INTO buckets SELECT * "
             "FROM b2; DROP TABLE b2; COMMIT"));
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
        const int p = 5 + kNumCounters;
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
    BindCounters(s, 3, sw.delta);
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
        st = WriteOne(it.write);
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
        spdlog::error("store commit of {} reports failed: {}", batch.size(),
                      st.ToString());
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
