// codestore::Store: opening a store, the connection, transactions and the one error path.
// Every public method runs its body through Impl::call (store_impl.h): under the store's
// mutex (one connection) and the boundary where errors thrown inside become values. Writes
// run in write transactions (WriteTx) that also bump the generation.
#include <codestore/store.h>

#include "db/migrations.h"
#include "db/pg_connection.h"
#include "db/sqlite_connection.h"
#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;

db::Statement& Store::Impl::stmt(const char* sql) {
  auto& s = statements[sql];
  if (!s) {
    s = db->prepare(sql);
  } else {
    s->reset();
    s->clear_bindings();
  }
  return *s;
}

std::int64_t Store::Impl::scalar(const char* sql) {
  auto& s = stmt(sql);
  Done done{s};
  if (!s.step()) fail(Code::kInternal, fmt::format("no row from: {}", sql));
  return s.int64(0);
}

void Store::Impl::WriteTx::commit(bool changed) {
  if (changed) impl.db->exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'");
  tx.commit();
}

void Store::Impl::require_writable(std::string_view what) const {
  if (options.read_only) fail(Code::kPermissionDenied, fmt::format("{}: the store is open read-only", what));
}

void Store::Impl::event(std::string_view action, std::string_view module, std::int64_t from, std::int64_t to,
                        std::string_view reason, std::string_view channel) {
  auto& s = stmt(
      "INSERT INTO events (time, action, module, from_version, to_version, reason, channel) VALUES (?, ?, ?, "
      "?, ?, ?, ?)");
  s.bind(1, now());
  s.bind(2, action);
  s.bind(3, module);
  s.bind(4, from);
  s.bind(5, to);
  s.bind(6, reason);
  s.bind(7, channel);
  s.exec();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const {
  return impl_->path;
}

const std::string& Store::channel() const {
  return impl_->options.channel;
}

std::int64_t Store::schema_version() {
  const auto& m = db::embedded_migrations();
  return m.empty() ? 0 : m.back().number;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& location, const StoreOptions& given) {
  // A PostgreSQL URI names a database on a server (its password never shown); anything
  // else is a SQLite file (docs/store.md, "Backends").
  const bool postgresql = db::is_postgresql_uri(location);
  const std::string path = postgresql ? db::redact_uri(location) : location;
  return db::guard("store " + path, [&]() -> Result<std::unique_ptr<Store>> {
    StoreOptions options = given;
    options.read_only = options.read_only || options.snapshot;
    Impl::require_channel_name(options.channel);
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->options = options;
    impl->image_cache = db::ImageCache(options.image_cache_bytes);
    impl->db = postgresql ? db::open_postgresql(location, options) : db::open_sqlite(path, options);
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  });
}

}  // namespace codestore
