// What a node following a channel is served (the boot server's `lib/<app>-<vsn>/` and
// `releases/<vsn>/` under a client root): the application revisions a channel pins, the
// revision a versioned path names, and stored files by SHA-256.
#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>

#include "base/hex.h"
#include "store_impl.h"

namespace codestore {

using store_internal::fail;

namespace {

// "ab01..." (64 hex digits) -> 32 bytes; nullopt for anything else.
std::optional<std::vector<std::uint8_t>> sha256_bytes(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::vector<std::uint8_t> out(32);
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = base::hex_digit(hex[2 * i]), lo = base::hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace

Result<ChannelApps> Store::channel_apps(const std::string& channel, std::int64_t number) {
  return impl_->call([&] { return fmt::format("channel apps {} generation {}", channel, number); },
                     [&]() -> Result<ChannelApps> {
                       ChannelApps out;
                       out.channel = channel;
                       const Impl::ChannelRow row = impl_->require_channel(channel);
                       out.generation = number == 0 ? row.generation : number;
                       std::set<std::int64_t> pinned;
                       for (const auto& [app, id] : impl_->generation_app_pins(channel, out.generation)) {
                         out.apps.push_back(impl_->app_version_info(id).summary);
                         pinned.insert(id);
                       }
                       out.release =
                           impl_->release_name(impl_->generation_release(channel, out.generation, pinned));
                       return out;
                     });
}

Result<AppVersionInfo> Store::app_version_for(const std::string& channel, std::string_view app,
                                              std::string_view vsn) {
  return impl_->call(
      [&] { return fmt::format("application version {}@{} for channel {}", app, vsn, channel); },
      [&]() -> Result<AppVersionInfo> {
        const Impl::ChannelRow row = impl_->require_channel(channel);
        // 1. What the current generation pins.
        std::int64_t id = 0;
        if (row.generation != 0) {
          auto& s = impl_->stmt(
              "SELECT a.id, a.vsn FROM generation_apps ga JOIN app_versions a ON a.id = ga.app_version "
              "WHERE ga.channel = ? AND ga.app = ? AND ga.until IS NULL");
          Impl::Done done{s};
          s.bind(1, channel);
          s.bind(2, app);
          if (s.step() && (vsn.empty() || s.text(1) == vsn)) id = s.int64(0);
        }
        if (id == 0 && vsn.empty()) {
          fail(Code::kNotFound, fmt::format("channel {} pins no version of application {}", channel, app));
        }
        // 2. The newest revision of (app, vsn) any generation of the channel pinned: a node still
        //    running it after another was deployed.
        if (id == 0) {
          auto& s = impl_->stmt(
              "SELECT a.id FROM generation_apps ga JOIN app_versions a ON a.id = ga.app_version "
              "WHERE ga.channel = ? AND ga.app = ? AND a.vsn = ? ORDER BY a.revision DESC LIMIT 1");
          Impl::Done done{s};
          s.bind(1, channel);
          s.bind(2, app);
          s.bind(3, vsn);
          if (s.step()) id = s.int64(0);
        }
        // 3. The newest revision in the store: imported, not deployed to this channel (yet).
        if (id == 0) {
          auto& s = impl_->stmt(
              "SELECT id FROM app_versions WHERE app = ? AND vsn = ? ORDER BY revision DESC LIMIT 1");
          Impl::Done done{s};
          s.bind(1, app);
          s.bind(2, vsn);
          if (s.step()) id = s.int64(0);
        }
        if (id == 0) fail(Code::kNotFound, fmt::format("no application version {}@{}", app, vsn));
        return impl_->app_version_info(id);
      });
}

Result<Store::SharedBytes> Store::blob(std::string_view sha256_hex) {
  return impl_->call(
      [&] { return fmt::format("blob {}", sha256_hex); },
      [&]() -> Result<SharedBytes> {
        const auto sha = sha256_bytes(sha256_hex);
        if (!sha) fail(Code::kInvalidArgument, "not a SHA-256 (64 hex digits)");
        if (auto hit = impl_->image_cache.find(*sha)) return SharedBytes(hit);
        static const std::string sql =
            fmt::format("SELECT {} FROM blobs b WHERE b.sha256 = ?", store_internal::kBlobColumns);
        auto& s = impl_->stmt(sql.c_str());
        Impl::Done done{s};
        s.bind_blob(1, *sha);
        if (!s.step()) fail(Code::kNotFound, "no such blob");
        auto out = std::make_shared<std::vector<std::uint8_t>>();
        if (Status st = impl_->decode(store_internal::blob_row(s, 0), /*check_sha256=*/false, *out); !st) {
          fail(Code::kCorruption, st.message());
        }
        // The zstd checksum passed (as for a module's bytes in shared_bytes).
        impl_->image_cache.put(*sha, out);
        return SharedBytes(std::move(out));
      });
}

// Not simply the newest deploy: a channel rollback (or an imported module) makes a generation
// that names no release, and after `deploy X; deploy X'; channel rollback` the content is X's
// again. A release never deployed to the channel is never its content, even when its
// applications match.
std::int64_t Store::Impl::generation_release(std::string_view channel, std::int64_t number,
                                             const std::set<std::int64_t>& pinned) {
  if (pinned.empty()) return 0;
  std::vector<std::int64_t> deployed;
  {
    auto& s = stmt(
        "SELECT g.release FROM generations g WHERE g.channel = ? AND g.number <= ? AND g.release IS NOT NULL "
        "ORDER BY g.number DESC");
    Done done{s};
    s.bind(1, std::string(channel));
    s.bind(2, number);
    while (s.step()) deployed.push_back(s.int64(0));
  }
  for (const std::int64_t rid : deployed) {
    std::set<std::int64_t> apps;
    auto& s = stmt("SELECT app_version FROM release_apps WHERE release = ?");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) apps.insert(s.int64(0));
    if (apps == pinned) return rid;
  }
  return 0;
}

std::int64_t Store::Impl::generation_release(std::string_view channel, std::int64_t number) {
  std::set<std::int64_t> pinned;
  for (const auto& [app, id] : generation_app_pins(channel, number)) pinned.insert(id);
  return generation_release(channel, number, pinned);
}

ReleaseId Store::Impl::release_name(std::int64_t id) {
  if (id == 0) return {};
  auto& s = stmt("SELECT name, vsn FROM releases WHERE id = ?");
  Done done{s};
  s.bind(1, id);
  return s.step() ? ReleaseId{s.text(0), s.text(1)} : ReleaseId{};
}

}  // namespace codestore
