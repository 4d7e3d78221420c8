// A host program that runs Erlang module images from a store and follows the operator's
// changes, the way a server that upgrades itself while running would:
//
//   1. open (create) a store and import two builds of one module: the newer is active;
//   2. run a code server whose code path is the store's lib "demo" (`lib:demo`), load the
//      module from it, and let a process enter the module's code;
//   3. roll the module back in the store, as `codestore rollback MODULE` does;
//   4. sync: the code server loads the version now active; the process stays in the old
//      code until its next fully qualified call, as in Erlang.
//
// usage: sync NEW.db OLD.beam NEW.beam     (two builds of one module; NEW.db must not exist)
//   sync demo.db tests/fixtures/images/loader/v1/m.beam tests/fixtures/images/loader/v2/m.beam
//
// Every call that can fail returns a value (a Result<T> or a Status):
// codestore throws no exceptions at you.
#include <codestore/code_server.h>
#include <codestore/store.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

int fail(const std::string& why) {
  std::fprintf(stderr, "sync: %s\n", why.c_str());
  return 1;
}

std::optional<std::vector<std::uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main(int argc, char** argv) {
  namespace loader = codestore::loader;
  if (argc != 4) {
    std::fprintf(stderr, "usage: sync NEW.db OLD.beam NEW.beam\n");
    return 2;
  }
  const std::string db = argv[1];
  if (std::filesystem::exists(db)) return fail(db + " exists: give the path of a new store");

  // 1. The store: one SQLite file, created by open(). import() checks an image as the VM
  //    loader would and makes it the active version of its module, here in lib "demo".
  auto opened = codestore::Store::open(db);
  if (!opened) return fail(opened.error().to_string());
  std::shared_ptr<codestore::Store> store = std::move(*opened);
  std::string module;
  for (int i = 2; i <= 3; ++i) {
    auto bytes = read_file(argv[i]);
    if (!bytes) return fail(std::string("cannot read ") + argv[i]);
    auto imported = store->import(*bytes, argv[i], {.lib = "demo"});
    if (!imported) return fail(imported.error().to_string());
    if (i == 3 && imported->module != module) return fail("the two files are not builds of one module");
    module = imported->module;
    std::printf("store: imported %s version %lld\n", module.c_str(),
                static_cast<long long>(imported->version));
  }

  // 2. A code server over the store. The path entry `lib:demo` finds the modules whose
  //    active version belongs to lib "demo"; store_lib_source() reads the store's
  //    generation on every lookup, so the code server sees the operator's changes. With
  //    record_events, loads and syncs go to the store's history next to the operator's
  //    imports and rollbacks.
  loader::Options options;
  options.path = {"lib:demo"};
  options.libs = loader::store_lib_source(store);
  options.record_events = true;
  auto created = loader::CodeServer::create(std::move(options));
  if (!created) return fail(created.error().to_string());
  loader::CodeServer& cs = **created;

  if (auto loaded = cs.load_file(module); !loaded) {
    // Erlang's reason and what; a store that could not be read has no Erlang reason.
    const codestore::Status& e = loaded.error();
    return fail(module + ": " +
                (e.reason().empty() ? e.to_string() : std::string(e.reason()) + " " + e.message()));
  }
  // A process is the host's unit of execution (a thread, a fiber, an actor). A fully
  // qualified call enters the module's current instance (module_info/0 stands for the
  // host's own entry point: every compiled module exports it); the frame stays in that
  // instance until it returns. A purge would run the callback to stop the process.
  auto worker = cs.spawn("worker", [](loader::ProcessId) { std::puts("worker killed"); });
  auto entered = worker->call(module, "module_info", 0);
  if (!entered) return fail(std::string("call: ") + std::string(entered.error().reason()));
  std::printf("loader: worker runs %s vsn %s\n", module.c_str(), (*entered)->vsn_text().c_str());

  // 3. The operator's rollback: the version active before becomes active again. Running
  //    code does not change by itself.
  auto rolled = store->rollback(module, codestore::Reason("example"));
  if (!rolled) return fail(rolled.error().to_string());
  std::printf("store: %s active version %lld -> %lld\n", module.c_str(),
              static_cast<long long>(rolled->from_version), static_cast<long long>(rolled->to_version));

  // 4. sync() brings every module loaded from a store lib to the store's active version.
  //    The soft policy kills no one: it leaves alone a module whose old code is still in
  //    use. Here there is no old code yet: the worker's instance becomes the old one.
  auto report = cs.sync(loader::SyncPolicy::kSoft);
  if (!report.failed.empty()) return fail("sync could not load " + report.failed.front().module);
  if (report.changed.empty()) return fail("sync changed nothing");
  for (const auto& change : report.changed) {
    std::printf("loader: sync %s vsn %s -> %s\n", change.module.c_str(), change.from_vsn.c_str(),
                change.to_vsn.c_str());
  }

  // As in Erlang, the worker lingers in the old code until a fully qualified call (a server
  // loop's `?MODULE:loop()`, here a tail call) moves it to the current code. Then nothing
  // runs the old code and soft_purge removes it.
  std::printf("loader: worker in old code: %s\n", cs.check_process_code(*worker, module) ? "yes" : "no");
  auto moved = worker->tail_call(module, "module_info", 0);
  if (!moved) return fail(std::string("call: ") + std::string(moved.error().reason()));
  std::printf("loader: worker runs %s vsn %s\n", module.c_str(), (*moved)->vsn_text().c_str());
  auto purged = cs.soft_purge(module);
  std::printf("loader: soft_purge %s: %s\n", module.c_str(), purged.ok ? "true" : "false");
  worker->exit();

  // The store's history has the operator's changes and the code server's.
  auto history = store->history(module);
  if (!history) return fail(history.error().to_string());
  for (const auto& event : *history)
    std::printf("history: %s %s\n", event.action.c_str(), event.reason.c_str());
  return purged.ok ? 0 : 1;
}
