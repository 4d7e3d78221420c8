// deploy: an Erlang release becomes a channel's content (docs/model.md, "Channels and
// generations"). The release's application revisions, their module versions, then its own
// module versions (mix's consolidated protocols) over them, as the boot path gives them; in
// one new generation of the handle's channel (Impl::replace_channel), so modules and
// applications the release does not carry become inactive there.
#include <map>
#include <string>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;

Result<DeployResult> Store::deploy(const ReleaseId& id, Reason reason) {
  return impl_->call(
      [&] { return fmt::format("deploy {}@{} to channel {}", id.name, id.vsn, impl_->options.channel); },
      [&]() -> Result<DeployResult> {
        impl_->require_writable("deploy");
        Impl::WriteTx tx(*impl_);
        const std::int64_t rid = impl_->require_release(id);
        Impl::ChannelContent content;
        std::map<std::string, std::string> carrier;  // module -> the application that carries it
        {
          auto& s = impl_->stmt(
              "SELECT a.app, a.id, a.vsn, a.revision, coalesce(am.module, ''), coalesce(am.version, 0) FROM "
              "release_apps ra "
              "JOIN app_versions a ON a.id = ra.app_version "
              "LEFT JOIN app_modules am ON am.app_version = a.id WHERE ra.release = ? "
              "ORDER BY ra.position, am.module");
          Impl::Done done{s};
          s.bind(1, rid);
          while (s.step()) {
            const std::string app = s.text(0);
            content.apps[app] = s.int64(1);
            const std::string module = s.text(4);
            if (module.empty()) continue;  // an application without modules
            const std::string label =
                fmt::format("{}@{}{}", app, s.text(2), s.int64(3) > 1 ? fmt::format("#{}", s.int64(3)) : "");
            // import_release refuses this; a release that holds it anyway is not deployed.
            if (auto [it, fresh] = carrier.emplace(module, label); !fresh) {
              fail(Code::kFailedPrecondition,
                   fmt::format("module {} is carried by both {} and {}", module, it->second, label));
            }
            content.modules[module] = s.int64(5);
          }
        }
        {
          // The release's own modules take precedence (releases/<vsn>/consolidated comes first
          // on a mix release's boot path).
          auto& s = impl_->stmt("SELECT module, version FROM release_modules WHERE release = ?");
          Impl::Done done{s};
          s.bind(1, rid);
          while (s.step()) content.modules[s.text(0)] = s.int64(1);
        }
        Impl::ChannelWrite w = impl_->replace_channel(
            impl_->options.channel, content,
            Impl::GenerationMeta{.action = "deploy", .reason = reason.text, .release_id = rid});
        tx.commit(w.generation != 0);
        return DeployResult{.channel = impl_->options.channel,
                            .generation = w.generation,
                            .modules = static_cast<std::int64_t>(content.modules.size()),
                            .apps = static_cast<std::int64_t>(content.apps.size()),
                            .changed = std::move(w.changed)};
      });
}

}  // namespace codestore
