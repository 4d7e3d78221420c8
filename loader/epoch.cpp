#include "epoch.h"

#include <codestore/code_server.h>

#include <algorithm>
#include <limits>

namespace codestore::loader::detail {

EpochDomain& EpochDomain::global() {
  static EpochDomain* domain = new EpochDomain();  // leaked on purpose: see the header
  return *domain;
}

namespace {
// Gives the record back for reuse when the thread exits.
struct RecordOwner {
  EpochDomain::Record* record = nullptr;
  ~RecordOwner() {
    if (record != nullptr) record->in_use.store(false, std::memory_order_release);
  }
};
thread_local RecordOwner t_owner;
}  // namespace

EpochDomain::Record* EpochDomain::thread_record() {
  if (t_owner.record != nullptr) return t_owner.record;
  for (Record* r = records_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    bool expected = false;
    if (r->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      r->depth = 0;
      return t_owner.record = r;
    }
  }
  auto* r = new Record();
  Record* head = records_.load(std::memory_order_relaxed);
  do {
    r->next = head;
  } while (!records_.compare_exchange_weak(head, r, std::memory_order_acq_rel));
  return t_owner.record = r;
}

void EpochDomain::pin(Record* record) noexcept {
  if (record->depth++ != 0) return;
  // seq_cst: the pin must be visible to a reclaimer before this thread loads any pointer
  // (the writer's side: unlink, advance the epoch, then scan the pins).
  record->pinned.exchange(epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
}

void EpochDomain::unpin(Record* record) noexcept {
  if (--record->depth != 0) return;
  record->pinned.store(0, std::memory_order_release);
}

std::uint64_t EpochDomain::min_pinned() const {
  std::uint64_t lowest = std::numeric_limits<std::uint64_t>::max();
  for (Record* r = records_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    std::uint64_t p = r->pinned.load(std::memory_order_seq_cst);
    if (p != 0) lowest = std::min(lowest, p);
  }
  return lowest;
}

void EpochDomain::retire(std::shared_ptr<const void> object) {
  // A reader that pins after this increment sees an epoch > e and cannot reach the object
  // (it was unlinked before); one pinned with an epoch <= e might.
  std::uint64_t e = epoch_.fetch_add(1, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(retired_mutex_);
    retired_.emplace_back(e, std::move(object));
  }
  reclaim();
}

void EpochDomain::reclaim() {
  std::vector<std::shared_ptr<const void>> to_free;  // dropped outside the lock
  {
    std::lock_guard<std::mutex> lock(retired_mutex_);
    if (retired_.empty()) return;
    std::uint64_t lowest = min_pinned();
    auto keep = std::partition(retired_.begin(), retired_.end(),
                               [lowest](const auto& item) { return item.first >= lowest; });
    for (auto it = keep; it != retired_.end(); ++it) to_free.push_back(std::move(it->second));
    retired_.erase(keep, retired_.end());
  }
}

}  // namespace codestore::loader::detail

namespace codestore::loader {

ReadGuard::ReadGuard() noexcept {
  auto& domain = detail::EpochDomain::global();
  auto* record = domain.thread_record();
  domain.pin(record);
  record_ = record;
}

ReadGuard::~ReadGuard() {
  detail::EpochDomain::global().unpin(static_cast<detail::EpochDomain::Record*>(record_));
}

}  // namespace codestore::loader
