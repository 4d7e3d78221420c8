#include "node_recorder.h"

#include <fmt/format.h>

#include <algorithm>

namespace codestore::server {

NodeTracker::NodeTracker(std::string address, std::string server, std::string erts_vsn,
                         std::chrono::steady_clock::duration interval)
    : interval_(interval), last_handover_(std::chrono::steady_clock::now()) {
  identity_.address = std::move(address);
  identity_.server = std::move(server);
  identity_.erts_vsn = std::move(erts_vsn);
}

void NodeTracker::answered(const Answer& a, std::chrono::steady_clock::time_point /*now*/) {
  const std::int64_t t = static_cast<std::int64_t>(std::time(nullptr));
  if (identity_.first_seen == 0) identity_.first_seen = t;
  seen_at_ = t;
  ++requests_;
  ++requests_total_;
  pending_ = true;
  if (identity_.client_root.empty() && !a.client_root.empty()) identity_.client_root = a.client_root;
  // The node's channel: the one that served its last module or release file; before any, the
  // first that answered it (a node's paths all lead to one channel, but for erts's own files
  // outside its client root, which the default source answers).
  const bool fixes = a.served.has_value() || a.release.has_value();
  if (a.source != nullptr && a.source != source_ && (fixes || !channel_fixed_)) {
    source_ = a.source;
    std::string channel = a.source->channel();
    if (channel != identity_.channel) {
      identity_.channel = std::move(channel);
      identity_.generation = 0;
      if (!identity_.channel.empty()) {
        if (auto apps = a.source->channel_apps(); apps && *apps) identity_.generation = (*apps)->generation;
      }
    }
  }
  if (fixes) channel_fixed_ = true;
  if (a.release) identity_.release = *a.release;
  if (a.served) {
    ++modules_sent_;
    NodeModule& m = modules_[a.served->module];
    m.module = a.served->module;
    m.version = a.served->version;
    m.md5 = a.served->md5;
    m.app = a.served->lib;
    m.fetched_at = t;
    ++served_[{a.served->module, a.served->version}];
  }
}

NodeReport NodeTracker::take(std::chrono::steady_clock::time_point now) {
  NodeReport r = identity_;
  r.seen_at = seen_at_;
  r.requests = requests_;
  r.modules_sent = modules_sent_;
  r.modules.reserve(modules_.size());
  for (auto& [name, m] : modules_) r.modules.push_back(std::move(m));
  modules_.clear();
  r.served.reserve(served_.size());
  for (const auto& [key, count] : served_) r.served.push_back({key.first, key.second, count});
  served_.clear();
  requests_ = modules_sent_ = 0;
  pending_ = false;
  last_handover_ = now;
  return r;
}

NodeRecorder::NodeRecorder(ModuleSource& sink, std::chrono::milliseconds interval,
                           std::function<void(std::string_view)> log)
    : sink_(sink), interval_(interval), log_(std::move(log)) {
  thread_ = std::thread([this] { run(); });
}

void NodeRecorder::hand_over(std::uint64_t conn, NodeReport report, bool ended) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({conn, std::move(report), ended});
  }
  // No notify: the thread writes once per interval whatever arrived meanwhile.
}

void NodeRecorder::stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NodeRecorder::run() {
  for (;;) {
    std::vector<Item> batch;
    bool last = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, interval_, [this] { return stopping_; });
      batch.swap(queue_);
      last = stopping_;
    }
    if (!batch.empty()) write(std::move(batch));
    if (last) {
      // Whatever was handed over while the last batch was written.
      std::vector<Item> rest;
      {
        std::lock_guard<std::mutex> lock(mu_);
        rest.swap(queue_);
      }
      if (!rest.empty()) write(std::move(rest));
      return;
    }
  }
}

void NodeRecorder::write(std::vector<Item> items) {
  if (disabled_) return;
  // One report per connection: a connection may have handed over more than once meanwhile,
  // and its node's id (for a new node) is known only once the first is written.
  std::vector<std::uint64_t> order;
  std::map<std::uint64_t, Item> merged;
  for (Item& it : items) {
    auto [pos, fresh] = merged.try_emplace(it.conn);
    Item& m = pos->second;
    if (fresh) {
      order.push_back(it.conn);
      m = std::move(it);
      continue;
    }
    NodeReport& into = m.report;
    NodeReport& from = it.report;
    // The later report's identity is the newer; counts add; a module's later fetch wins.
    std::vector<NodeModule> modules = std::move(into.modules);
    std::vector<NodeServed> served = std::move(into.served);
    served.insert(served.end(), from.served.begin(), from.served.end());  // counts add on insert
    std::uint64_t requests = into.requests + from.requests, sent = into.modules_sent + from.modules_sent;
    into = std::move(from);
    into.requests = requests;
    into.modules_sent = sent;
    for (NodeModule& nm : into.modules) {
      auto same = std::find_if(modules.begin(), modules.end(),
                               [&](const NodeModule& x) { return x.module == nm.module; });
      if (same != modules.end()) {
        *same = std::move(nm);
      } else {
        modules.push_back(std::move(nm));
      }
    }
    into.modules = std::move(modules);
    into.served = std::move(served);
    m.ended = m.ended || it.ended;
  }
  std::vector<NodeReport> reports;
  reports.reserve(order.size());
  for (std::uint64_t conn : order) {
    NodeReport& r = merged[conn].report;
    auto id = ids_.find(conn);
    r.id = id == ids_.end() ? 0 : id->second;
    reports.push_back(std::move(r));
  }
  auto ids = sink_.record_nodes(reports);
  if (!ids) {
    if (ids.error().code() == Code::kNotSupported) {
      disabled_ = true;
      if (log_) log_(fmt::format("nodes are not recorded: {}", ids.error().message()));
      return;
    }
    // Serving goes on; these reports are lost, the next ones carry each node's identity again.
    if (log_) log_(fmt::format("error: {} nodes not recorded: {}", reports.size(), ids.error().to_string()));
    return;
  }
  for (std::size_t i = 0; i < order.size() && i < ids->size(); ++i) {
    if (merged[order[i]].ended) {
      ids_.erase(order[i]);
    } else {
      ids_[order[i]] = (*ids)[i];
    }
  }
}

}  // namespace codestore::server
