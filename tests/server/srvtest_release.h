// The application and release the client-root and node tests serve: application srvtest VSN
// (module m, the real server fixture's v1 or v2 image) in release rel VSN, imported with the
// store's own import_release and deployed to a channel.
//
// Thread safety: free functions; each opens its own Store.
#pragma once

#include <codestore/release_content.h>
#include <codestore/store.h>

#include <string>
#include <vector>

#include "support/files.h"

namespace codestore::server::testing {

using codestore::testing::read_file;

inline std::vector<std::uint8_t> text_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

inline ContentFile file(const std::string& path, std::vector<std::uint8_t> bytes) {
  ContentFile f;
  f.path = path;
  f.bytes = std::move(bytes);
  return f;
}

// Application srvtest VSN with module m (the fixture's v1 or v2) and a priv file; release
// rel VSN of it, with its boot script, sys.config and a COOKIE.
inline ReleaseContent release_of(const std::string& vsn, const std::string& beam) {
  const std::string fixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images";
  AppContent app;
  app.app = "srvtest";
  app.vsn = vsn;
  app.origin = "client_root_test";
  app.files.push_back(
      file("ebin/srvtest.app",
           text_bytes("{application, srvtest, [{vsn, \"" + vsn +
                      "\"}, {modules, [m]}, {registered, []}, {applications, [kernel]}]}.\n")));
  app.files.push_back(file("ebin/m.beam", read_file(beam)));
  app.files.push_back(file("priv/data.txt", text_bytes("data of " + vsn)));
  ReleaseContent rel;
  rel.name = "rel";
  rel.vsn = vsn;
  rel.erts_vsn = "13.1.5";
  rel.kind = "systools";
  rel.origin = "client_root_test";
  rel.rel_apps = {{"srvtest", vsn, "", ""}};
  rel.apps = {app};
  rel.files.push_back(file("releases/" + vsn + "/rel.rel",
                           text_bytes("{release, {\"rel\", \"" + vsn +
                                      "\"}, {erts, \"13.1.5\"}, [{srvtest, \"" + vsn + "\"}]}.\n")));
  rel.files.push_back(file("releases/" + vsn + "/start.boot", text_bytes("boot script of " + vsn)));
  rel.files.push_back(
      file("releases/" + vsn + "/sys.config", text_bytes("[{srvtest, [{v, \"" + vsn + "\"}]}].\n")));
  rel.files.push_back(file("releases/" + vsn + "/COOKIE", text_bytes("SECRETCOOKIE")));
  // A module of the release itself, as mix's consolidated protocols are.
  rel.files.push_back(
      file("releases/" + vsn + "/consolidated/hello.beam", read_file(fixtures + "/hello.beam")));
  return rel;
}

inline Status deploy(const std::string& db, const std::string& channel, const std::string& vsn) {
  StoreOptions o;
  o.channel = channel;
  auto store = Store::open(db, o);
  if (!store) return store.error();
  auto r = (*store)->deploy({"rel", vsn}, Reason("client_root_test"));
  if (!r) return r.error();
  return Status::ok();
}

}  // namespace codestore::server::testing
