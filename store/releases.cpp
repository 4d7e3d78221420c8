// Releases as schema 2 knew them: named snapshots of the active set. Since schema 4 a snapshot
// is a generation of a channel with a label (docs/model.md): create makes one, rollback makes
// a channel's content that generation's (in a new generation), delete removes the label.
// Erlang releases (name, vsn) are apart from these (the `releases` table).
#include <map>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;

Release Store::Impl::release(const std::string& name, bool with_modules) {
  const auto [channel, number] = labelled_generation(name);
  Release r;
  r.name = name;
  r.channel = channel;
  r.generation = number;
  {
    auto& s = stmt("SELECT created_at, reason FROM generations WHERE channel = ? AND number = ?");
    Done done{s};
    s.bind(1, channel);
    s.bind(2, number);
    if (!s.step()) fail(Code::kNotFound, fmt::format("unknown release {}", name));
    r.created_at = s.int64(0);
    r.note = s.text(1);
  }
  const auto pins = generation_pins(channel, number);
  r.module_count = static_cast<std::int64_t>(pins.size());
  if (with_modules) {
    r.modules.reserve(pins.size());
    for (const auto& p : pins) r.modules.push_back({p.module, p.version, p.lib});
  }
  return r;
}

Result<Release> Store::release_create(const std::string& name, Reason note) {
  return impl_->call([&] { return "release create " + name; },
                     [&]() -> Result<Release> {
                       impl_->require_writable("release create");
                       if (name.empty()) fail(Code::kInvalidArgument, "a release needs a name");
                       Impl::WriteTx tx(*impl_);
                       {
                         auto& s = impl_->stmt("SELECT 1 FROM generations WHERE label = ?");
                         Impl::Done done{s};
                         s.bind(1, name);
                         if (s.step()) fail(Code::kAlreadyExists, fmt::format("release {} exists", name));
                       }
                       const std::string& channel = impl_->options.channel;
                       impl_->require_channel(channel);
                       // The same content, labelled: `previous` stays, so a channel rollback still
                       // returns to a different content.
                       Impl::ChannelChange change(*impl_, channel);
                       change.commit(
                           {.action = "snapshot", .reason = note.text, .label = name, .keep_previous = true},
                           /*force=*/true);
                       impl_->event("release-create", "", 0, 0, name, channel);
                       Release r = impl_->release(name, true);
                       tx.commit();
                       return r;
                     });
}

Result<std::vector<Release>> Store::release_list() {
  return impl_->call("release list", [&]() -> Result<std::vector<Release>> {
    db::Transaction tx(*impl_->db, db::TxKind::kRead);
    std::vector<std::string> names;
    {
      auto& s =
          impl_->stmt("SELECT label FROM generations WHERE label IS NOT NULL ORDER BY created_at, label");
      Impl::Done done{s};
      while (s.step()) names.push_back(s.text(0));
    }
    std::vector<Release> out;
    out.reserve(names.size());
    for (const auto& n : names) out.push_back(impl_->release(n, false));
    return out;
  });
}

Result<Release> Store::release_show(const std::string& name) {
  return impl_->call([&] { return "release show " + name; },
                     [&]() -> Result<Release> {
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       return impl_->release(name, true);
                     });
}

Result<ReleaseDiff> Store::release_diff(const std::string& a, const std::string& b) {
  return impl_->call([&] { return fmt::format("release diff {} {}", a, b); },
                     [&]() -> Result<ReleaseDiff> {
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       const Release ra = impl_->release(a, true);
                       const Release rb = impl_->release(b, true);
                       std::map<std::string, const ReleaseEntry*> in_a;
                       for (const auto& e : ra.modules) in_a[e.module] = &e;
                       ReleaseDiff d;
                       for (const auto& e : rb.modules) {
                         auto it = in_a.find(e.module);
                         if (it == in_a.end()) {
                           d.added.push_back(e);
                         } else {
                           if (it->second->version != e.version)
                             d.changed.push_back({e.module, it->second->version, e.version});
                           in_a.erase(it);
                         }
                       }
                       for (const auto& [module, e] : in_a) d.removed.push_back(*e);
                       return d;
                     });
}

Status Store::release_delete(const std::string& name) {
  return impl_->call([&] { return "release delete " + name; },
                     [&]() -> Status {
                       impl_->require_writable("release delete");
                       Impl::WriteTx tx(*impl_);
                       const auto [channel, number] = impl_->labelled_generation(name);  // kNotFound
                       auto& s = impl_->stmt("UPDATE generations SET label = NULL WHERE label = ?");
                       s.bind(1, name);
                       s.exec();
                       impl_->event("release-delete", "", 0, 0, name, channel);
                       tx.commit();
                       return Status::ok();
                     });
}

Result<std::vector<Activation>> Store::release_rollback(const std::string& name, Reason reason) {
  return impl_->call([&] { return "release rollback " + name; },
                     [&]() -> Result<std::vector<Activation>> {
                       impl_->require_writable("release rollback");
                       Impl::WriteTx tx(*impl_);
                       const auto [from_channel, number] = impl_->labelled_generation(name);
                       std::map<std::string, std::int64_t> modules;
                       for (auto& p : impl_->generation_pins(from_channel, number))
                         modules[p.module] = p.version;
                       const auto apps = impl_->generation_app_pins(from_channel, number);
                       const std::string why = reason.text.empty()
                                                   ? "release " + name
                                                   : fmt::format("release {}: {}", name, reason.text);
                       const std::string& channel = impl_->options.channel;
                       Impl::ChannelChange change(*impl_, channel);
                       std::vector<Activation> changed =
                           impl_->apply_content(change, modules, &apps, "release-rollback", why);
                       impl_->event("release-rollback", "", 0, 0, why, channel);
                       change.commit({.action = "snapshot-rollback", .reason = why});
                       tx.commit(!changed.empty());
                       return changed;
                     });
}

}  // namespace codestore
