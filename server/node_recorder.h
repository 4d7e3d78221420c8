// Recording the nodes a boot server serves (docs/model.md, "Nodes") without slowing the
// serving: each connection's thread keeps what it learns in a NodeTracker (no lock, no I/O)
// and hands it over about once per interval and at its end; one NodeRecorder thread merges
// what every connection handed over and writes it in one transaction per interval
// (ModuleSource::record_nodes, Store::record_nodes), never one per module served.
//
// The protocol has no node name: a node is one connection. What its requests reveal: its
// address, the client root its paths are under, the channel that serves them (and that
// channel's generation when it was first served), the release whose files it reads (a client
// root's bin/start.boot is the channel's release's boot script), the module versions it
// fetches; its erts version is the one discovery required (the server answers no other).
#pragma once

#include <codestore/boot_server.h>
#include <codestore/node_types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "file_service.h"

namespace codestore::server {

// One connection's node, as its thread learns it.
//
// Thread safety: thread-compatible: owned and used by its connection's thread alone.
class NodeTracker {
 public:
  NodeTracker(std::string address, std::string server, std::string erts_vsn,
              std::chrono::steady_clock::duration interval);

  // After an answer was sent: `a` is the answer (its source, client root, release, the module
  // it sent). Cheap: no lock, no I/O; a source's channel and generation are asked once per
  // source the node moves to.
  void answered(const Answer& a, std::chrono::steady_clock::time_point now);
  // Whether something is waiting and the interval since the last hand-over has passed.
  bool due(std::chrono::steady_clock::time_point now) const {
    return pending_ && now - last_handover_ >= interval_;
  }
  // Whether any request was answered at all (a connection that never sent one is no node).
  bool seen() const { return requests_total_ != 0; }
  // What to hand over: the node's identity as known now, and the counts and modules since
  // the last take().
  NodeReport take(std::chrono::steady_clock::time_point now);

 private:
  NodeReport identity_;  // address, server, erts, client root, channel, release, generation, first seen
  const ModuleSource* source_ = nullptr;  // the source the channel was taken from
  bool channel_fixed_ = false;            // a module or store file fixed it
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_handover_;
  bool pending_ = false;
  std::uint64_t requests_total_ = 0;
  std::uint64_t requests_ = 0, modules_sent_ = 0;
  std::int64_t seen_at_ = 0;
  std::map<std::string, NodeModule, std::less<>> modules_;                // since the last take, by module
  std::map<std::pair<std::string, std::int64_t>, std::uint64_t> served_;  // (module, version) -> sent
};

// The one thread that writes nodes.
//
// Thread safety: hand_over() and stop() may be called from any thread (mu_ guards the queue
// and the stop flag); the recording thread alone calls the sink and uses ids_.
class NodeRecorder {
 public:
  // `sink` writes (ModuleSource::record_nodes of the server's source); `log` says what failed.
  NodeRecorder(ModuleSource& sink, std::chrono::milliseconds interval,
               std::function<void(std::string_view)> log);
  ~NodeRecorder() { stop(); }
  NodeRecorder(const NodeRecorder&) = delete;
  NodeRecorder& operator=(const NodeRecorder&) = delete;

  // Queues what connection `conn` (the server's own number for it) learned; `ended`: its
  // last report.
  void hand_over(std::uint64_t conn, NodeReport report, bool ended);
  // Writes what is queued and joins the thread. Idempotent.
  void stop();

 private:
  struct Item {
    std::uint64_t conn = 0;
    NodeReport report;
    bool ended = false;
  };
  void run();
  void write(std::vector<Item> items);

  ModuleSource& sink_;
  const std::chrono::milliseconds interval_;
  const std::function<void(std::string_view)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> queue_;  // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  std::mutex stop_mu_;       // serializes stop()
  std::thread thread_;
  // The recording thread's own:
  std::unordered_map<std::uint64_t, std::int64_t> ids_;  // connection -> nodes.id
  bool disabled_ = false;                                // the sink keeps no nodes
};

}  // namespace codestore::server
