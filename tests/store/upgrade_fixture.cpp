#include "upgrade_fixture.h"

#include <sstream>
#include <stdexcept>

#include "cli.h"
#include "support/files.h"
#include "support/real_releases.h"

namespace codestore::testing {

namespace fs = std::filesystem;

namespace {

const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/store/upgrade_fixture.escript";
const std::string kSources = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/upgrade";

etf::Term unhex(const std::string& h) {
  std::vector<std::uint8_t> b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  auto t = etf::decode(b);
  if (!t) throw std::runtime_error("erl's term does not decode: " + t.error().to_string());
  return *t;
}

void cli(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  if (cli::run(args, in, out, err) != 0)
    throw std::runtime_error("codestore failed: " + err.str() + out.str());
}

}  // namespace

std::unique_ptr<UpgradeFixture> build_upgrade_fixture() {
  auto f = std::make_unique<UpgradeFixture>();
  const fs::path& dir = f->dir.path();
  const std::string out = run_checked(
      "escript " + sh_quote(kScript) + " build " + sh_quote(kSources) + " " + sh_quote((dir / "fx").string()),
      dir, dir / "home");
  std::istringstream lines(out);
  std::string word;
  while (lines >> word) {
    if (word != "vsn") continue;
    std::string module, h1, h2;
    int d1 = 0, d2 = 0;
    lines >> module >> h1 >> h2 >> d1 >> d2;
    f->vsns[module] = {unhex(h1), unhex(h2), d1 == 1, d2 == 1};
  }
  if (f->vsns.empty()) throw std::runtime_error("upgrade_fixture.escript said: " + out);
  f->db = dir / "plan.db";
  cli({"--db", f->db.string(), "init"});
  cli({"--db", f->db.string(), "import", (dir / "fx" / "rel1").string()});
  cli({"--db", f->db.string(), "import", (dir / "fx" / "rel2").string()});
  return f;
}

RelupResult make_relup(const UpgradeFixture& fixture, const std::string& appup_text) {
  const fs::path& dir = fixture.dir.path();
  write_file(dir / "fx" / "rel2" / "lib" / "pa-0.2.0" / "ebin" / "pa.appup", appup_text);
  auto r = run_command("escript " + sh_quote(kScript) + " relup " + sh_quote((dir / "fx").string()), dir,
                       dir / "home");
  RelupResult out;
  std::istringstream lines(r.output);
  std::string word;
  while (lines >> word) {
    if (word == "relup" || word == "appup") {
      std::string h;
      lines >> h;
      (word == "relup" ? out.relup : out.appup) = unhex(h);
    } else if (word == "error") {
      std::getline(lines, out.error);
    }
  }
  if (r.code != 0 && out.error.empty()) out.error = r.output;
  return out;
}

}  // namespace codestore::testing
