// Sweep execution over MPI ranks: planning, dynamic scheduling, stage caching, durable results.
//
// Every rank resolves the same experiment (so every rank knows every point). Points that share an
// estimate (same model, data, calibration, partition, estimator and seed) form a group; a group is
// the unit of scheduling, so each estimate is computed once for all allocators, quantizers and
// budgets that use it. Rank 0 hands out groups on request from a scheduler thread (the only thread
// that calls MPI on rank 0) while its main thread works on groups too. Results flow to rank 0,
// the only writer. Seeds derive from the point, threads are fixed per rank, so a point's numbers
// do not depend on the rank count or the schedule.
#include "hawq/runner.h"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "hawq/allocation.h"
#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/experiment.h"
#include "hawq/fs.h"
#include "hawq/model.h"
#include "hawq/progress.h"
#include "hawq/quantizer.h"
#include "hawq/registry.h"
#include "hawq/report.h"
#include "hawq/results.h"
#include "hawq/sweep_exec.h"
#include "hawq/version.h"

namespace hawq {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }

constexpr int kTagRequest = 1, kTagAssign = 2, kTagResult = 3;

void send_str(const std::string& s, int dest, int tag) {
  MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, dest, tag, MPI_COMM_WORLD);
}

std::string recv_str(int src, int tag, MPI_Status* st_out = nullptr) {
  MPI_Status st;
  // Poll with sleeps: a blocking receive spins a core, which ranks sharing a node need for work.
  int flag = 0;
  while (true) {
    MPI_Iprobe(src, tag, MPI_COMM_WORLD, &flag, &st);
    if (flag) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string s(static_cast<std::size_t>(n), '\0');
  MPI_Recv(s.data(), n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, &st);
  if (st_out) *st_out = st;
  return s;
}

void quiet_barrier() {
  MPI_Request r;
  MPI_Ibarrier(MPI_COMM_WORLD, &r);
  int done = 0;
  while (!done) {
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct Group {
  std::string estimate_key;
  std::vector<std::size_t> points;
};

std::vector<Group> make_groups(const Experiment& e, const std::vector<std::size_t>& pending) {
  std::vector<Group> groups;
  std::map<std::string, std::size_t> by_key;
  for (auto i : pending) {
    const auto& p = e.points[i];
    if (p.estimate_key.empty()) {
      groups.push_back({"", {i}});
      continue;
    }
    auto it = by_key.find(p.estimate_key);
    if (it == by_key.end()) {
      by_key[p.estimate_key] = groups.size();
      groups.push_back({p.estimate_key, {i}});
    } else {
      groups[it->second].points.push_back(i);
    }
  }
  // Groups with an estimate are the long ones: hand them out first.
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return !a.estimate_key.empty() && b.estimate_key.empty(); });
  return groups;
}

std::string library_versions() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string m(mpi, static_cast<std::size_t>(len));
  if (auto nl = m.find('\n'); nl != std::string::npos) m = m.substr(0, nl);
  nlohmann::json j = {{"libtorch", TORCH_VERSION}, {"mpi", m}};
  return j.dump();
}

int default_threads(const Experiment& e, int size) {
  if (e.threads_per_rank > 0) return e.threads_per_rank;
  return size > 1 ? 1 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int validate_experiment(const RunOptions& o, std::ostream& out) {
  auto cfg = load_config(o.experiment, o.overrides);
  Experiment e = resolve_experiment(cfg);
  SweepExecutor exec(e);  // constructs model, data and every plugin: all parameter checks
  out << "experiment " << e.name << " (" << e.path << "): " << e.points.size() << " points, output " << e.output << "\n";
  out << "  model " << e.model.label() << ", data " << e.data.label() << ", " << exec.num_quantized_weights()
      << " quantizable weights\n";
  std::set<std::string> keys;
  for (const auto& p : e.points) keys.insert(p.estimate_key);
  keys.erase("");
  out << "  " << keys.size() << " distinct estimates\n";
  for (const auto& p : e.points)
    out << "  " << p.id << "  " << p.method.name << " est=" << p.estimator.label() << " alloc=" << p.allocator.label()
        << " quant=" << p.quantizer.label() << " budget=" << p.budget << " seed=" << p.seed << "\n";
  return 0;
}

int run_experiment(const RunOptions& o) {
  int provided = 0, inited = 0;
  MPI_Initialized(&inited);
  if (!inited) MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  // ---- resolve and validate on every rank; agree on success before any work.
  std::unique_ptr<Experiment> exp;
  std::unique_ptr<SweepExecutor> exec;
  std::unique_ptr<ResultStore> store;
  int code = 0;
  std::string error;
  try {
    auto cfg = load_config(o.experiment, o.overrides);
    exp = std::make_unique<Experiment>(resolve_experiment(cfg));
    if (!o.out.empty()) exp->output = o.out;
    torch::set_num_threads(default_threads(*exp, size));
    exec = std::make_unique<SweepExecutor>(*exp);
    if (rank == 0) {
      RunInfo info;
      info.experiment_name = exp->name;
      info.resolved_yaml = cfg.dump();
      info.base_fingerprint = exp->base_fingerprint;
      info.command_line = o.command_line;
      info.mpi_size = size;
      info.threads_per_rank = torch::get_num_threads();
      char host[256] = {0};
      ::gethostname(host, sizeof host - 1);
      info.host = host;
      info.started = iso_time_now();
      info.library_versions_json = library_versions();
      store = std::make_unique<ResultStore>(exp->output, info, o.force);
    }
  } catch (const UserError& ex) {
    code = 2;
    error = ex.what();
  } catch (const std::exception& ex) {
    code = 1;
    error = ex.what();
  }
  int worst = 0;
  MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (worst != 0) {
    if (code != 0 && (rank == 0 || size > 1)) std::fprintf(stderr, "hawq-bench[%d]: error: %s\n", rank, error.c_str());
    MPI_Finalize();
    return worst;
  }
  const Experiment& e = *exp;

  // ---- plan: rank 0 decides which points are pending (resume skips finished ones).
  std::vector<std::size_t> pending;
  std::mutex mu;  // guards store and counters on rank 0
  std::int64_t finished = 0, failed = 0, since_rebuild = 0;
  if (rank == 0) {
    for (const auto& p : e.points) {
      const auto* r = store->get("point", p.id);
      if (r && r->value("status", "") == "ok") continue;
      pending.push_back(p.index);
    }
    if (pending.size() < e.points.size())
      std::fprintf(stderr, "hawq-bench: resuming %s: %zu of %zu points already recorded\n", e.output.c_str(),
                   e.points.size() - pending.size(), e.points.size());
    // The full-precision baseline is the reference of every accuracy drop.
    const std::string bkey = exec->baseline_key();
    if (!store->has("baseline", bkey)) store->append("baseline", bkey, exec->baseline());
    store->rebuild(false);
  }
  // Every rank builds the same groups from rank 0's list of pending points.
  long long npending = static_cast<long long>(pending.size());
  MPI_Bcast(&npending, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  std::vector<unsigned long long> idx(pending.begin(), pending.end());
  idx.resize(static_cast<std::size_t>(npending));
  if (npending > 0) MPI_Bcast(idx.data(), static_cast<int>(npending), MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  pending.assign(idx.begin(), idx.end());
  std::vector<Group> groups = make_groups(e, pending);
  Progress progress("points", static_cast<std::int64_t>(pending.size()));

  auto record = [&](const nlohmann::json& msg) {  // rank 0 only, under mu
    const std::string kind = msg["kind"], key = msg["key"];
    store->append(kind, key, msg["record"]);
    if (kind != "point") return;
    ++finished;
    if (msg["record"].value("status", "") != "ok") {
      ++failed;
      std::fprintf(stderr, "hawq-bench: point %s failed: %s\n", key.c_str(), msg["record"].value("message", "").c_str());
    }
    progress.update(finished, msg["record"].value("method", "") + " " + std::to_string(msg["record"].value("budget_bits", 0.0)).substr(0, 4) + " bits");
    if (++since_rebuild >= e.rebuild_every) {
      store->rebuild(false);
      since_rebuild = 0;
    }
  };

  // Runs one group on this rank; `emit` receives estimate and point records.
  auto run_group = [&](std::size_t gi, const nlohmann::json* cached, const std::function<void(const nlohmann::json&)>& emit) {
    const Group& g = groups[gi];
    exec->run_group(g.points, cached, g_stop, emit);
  };

  if (rank == 0) {
    std::deque<std::size_t> queue;
    for (std::size_t i = 0; i < groups.size(); ++i) queue.push_back(i);
    auto next = [&](nlohmann::json& assign) -> bool {
      std::lock_guard<std::mutex> lk(mu);
      if (queue.empty() || g_stop) return false;
      std::size_t gi = queue.front();
      queue.pop_front();
      assign = {{"group", gi}, {"estimate", nullptr}};
      if (!groups[gi].estimate_key.empty())
        if (const auto* c = store->get("estimate", groups[gi].estimate_key)) assign["estimate"] = *c;
      return true;
    };
    std::thread scheduler;
    if (size > 1) {
      scheduler = std::thread([&] {
        int done_workers = 0;
        while (done_workers < size - 1) {
          MPI_Status st;
          std::string m = recv_str(MPI_ANY_SOURCE, MPI_ANY_TAG, &st);
          if (st.MPI_TAG == kTagRequest) {
            nlohmann::json a;
            if (!next(a)) {
              a = {{"group", -1}};
              ++done_workers;
            }
            send_str(a.dump(), st.MPI_SOURCE, kTagAssign);
          } else if (st.MPI_TAG == kTagResult) {
            std::lock_guard<std::mutex> lk(mu);
            record(nlohmann::json::parse(m));
          }
        }
      });
    }
    nlohmann::json a;
    while (next(a)) {
      const nlohmann::json* cached = a["estimate"].is_null() ? nullptr : &a["estimate"];
      run_group(a["group"].get<std::size_t>(), cached, [&](const nlohmann::json& msg) {
        std::lock_guard<std::mutex> lk(mu);
        record(msg);
      });
    }
    if (scheduler.joinable()) scheduler.join();
  } else {
    while (true) {
      send_str("", 0, kTagRequest);
      auto a = nlohmann::json::parse(recv_str(0, kTagAssign));
      const long long gi = a["group"].get<long long>();
      if (gi < 0) break;
      const nlohmann::json* cached = a["estimate"].is_null() ? nullptr : &a["estimate"];
      run_group(static_cast<std::size_t>(gi), cached, [&](const nlohmann::json& msg) { send_str(msg.dump(), 0, kTagResult); });
    }
  }
  quiet_barrier();

  int exit_code = 0;
  if (rank == 0) {
    progress.finish();
    store->rebuild(!g_stop);
    exit_code = failed > 0 ? 3 : 0;
    if (g_stop) {
      std::fprintf(stderr, "hawq-bench: stopped by signal after %lld points; rerun the same command to resume\n", (long long)finished);
      exit_code = 1;
    }
    std::fprintf(stderr, "hawq-bench: %lld points run (%lld failed) on %d rank(s); results in %s\n", (long long)finished,
                 (long long)failed, size, e.output.c_str());
    if (!o.quiet) {
      ReportOptions ro;
      ro.path = e.output;
      print_report(ro, std::cout);
    }
  }
  MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return exit_code;
}

}  // namespace hawq
