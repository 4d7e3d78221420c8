// The upgrade plan (include/codestore/upgrade_plan.h; the rules and their OTP sources are in
// docs/upgrade-plan.md). Built on Store's public API only: the store's diff says which
// modules moved, the images say what they are (behaviour, exports, imports, vsn), the
// application versions' files and the releases' own say what else changed.
//
// The plan is derived in the up orientation (older -> newer), because an .appup and its
// DepMods are written so, then turned to the plan's direction.
#include <codestore/image.h>
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string_view>

#include "etf/consult.h"
#include "otp/otp_files.h"

namespace codestore {

namespace {

using etf::Term;

// --- Versions ------------------------------------------------------------------------------

// -1, 0, 1 for a older, equal, newer than b: runs of digits compared as numbers, other runs
// as text ("0.10.0" is newer than "0.9.1"; "1.0-rc1" older than "1.0-rc2").
int compare_vsn(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    std::size_t ei = i, ej = j;
    while (ei < a.size() && (std::isdigit(static_cast<unsigned char>(a[ei])) != 0) == da) ++ei;
    while (ej < b.size() && (std::isdigit(static_cast<unsigned char>(b[ej])) != 0) == db) ++ej;
    std::string_view ra = a.substr(i, ei - i), rb = b.substr(j, ej - j);
    if (da && db) {
      while (ra.size() > 1 && ra[0] == '0') ra.remove_prefix(1);
      while (rb.size() > 1 && rb[0] == '0') rb.remove_prefix(1);
      if (ra.size() != rb.size()) return ra.size() < rb.size() ? -1 : 1;
    }
    if (ra != rb) return ra < rb ? -1 : 1;
    i = ei;
    j = ej;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

// --- What an image says ----------------------------------------------------------------------

struct Facts {
  bool present = false;
  std::set<std::string> exports;  // "F/A"
  std::vector<image::Import> imports;
  std::string behaviour;
  bool code_change3 = false, code_change4 = false;
  Term vsn;  // as release_handler_1:get_vsn/1 gives it
  bool vsn_default = false;
  bool on_load = false, load_nif = false;
};

// misc_supp:is_string/1: a non-empty list of integers from $\s to 255.
bool rh_is_string(const Term& t) {
  const auto* l = t.as_list();
  if (l == nullptr || l->tail) return false;
  for (const auto& e : l->elements) {
    const auto* i = e.as_int();
    if (i == nullptr || *i < 32 || *i > 255) return false;
  }
  return true;
}

// release_handler_1:get_vsn/1: beam_lib:version/1's value, a string as it is, [X] as X.
Term rh_vsn(const Term& v) {
  if (rh_is_string(v)) return v;
  if (const auto* l = v.as_list(); l != nullptr && !l->tail && l->elements.size() == 1) return l->elements[0];
  return v;
}

// The integer the compiler's default vsn holds: the module MD5, unsigned big-endian
// (beam_asm:set_vsn_attribute/2), as decode would give it (int64 when it fits).
Term md5_integer(const image::Md5& md5) {
  std::vector<std::uint8_t> le(md5.rbegin(), md5.rend());
  while (!le.empty() && le.back() == 0) le.pop_back();
  if (le.size() < 8 || (le.size() == 8 && le.back() < 0x80)) {
    std::int64_t v = 0;
    for (std::size_t k = le.size(); k-- > 0;) v = (v << 8) | le[k];
    return Term::integer(v);
  }
  return Term(etf::BigInt{false, std::move(le)});
}

constexpr std::string_view kBehaviours[] = {"supervisor", "gen_statem", "gen_server", "gen_event", "gen_fsm"};

Result<Facts> facts_of(Store& store, const std::string& module, std::int64_t version) {
  Facts f;
  if (version == 0) return f;
  const std::string what = fmt::format("{} version {}", module, version);
  auto info = store.version_info(module, version);
  if (!info) return error(info.error().with_context(what));
  auto bytes = store.get_shared(module, version);
  if (!bytes) return error(bytes.error().with_context(what));
  auto img = image::Image::parse_shared(*bytes, image::Strictness::kLenient, what);
  if (!img) return error(img.error());
  f.present = true;
  auto exports = img->exports();
  if (!exports) return error(exports.error());
  for (const auto& e : *exports) {
    f.exports.insert(fmt::format("{}/{}", e.name, e.arity));
    f.code_change3 = f.code_change3 || (e.name == "code_change" && e.arity == 3);
    f.code_change4 = f.code_change4 || (e.name == "code_change" && e.arity == 4);
  }
  auto imports = img->imports();
  if (!imports) return error(imports.error());
  f.imports = std::move(*imports);
  for (const auto& i : f.imports)
    f.load_nif = f.load_nif || (i.module == "erlang" && i.function == "load_nif" && i.arity == 2);
  auto attrs = img->attributes();
  if (!attrs) return error(attrs.error());
  std::set<std::string> named;
  if (auto list = attrs->list_elements()) {
    for (const auto& a : *list) {
      const auto* t = a.as_tuple();
      if (t == nullptr || t->elements.size() != 2) continue;
      if (!t->elements[0].is_atom("behaviour") && !t->elements[0].is_atom("behavior")) continue;
      if (auto vals = t->elements[1].list_elements()) {
        for (const auto& v : *vals)
          if (const auto* atom = v.as_atom()) named.insert(atom->name);
      }
    }
  }
  for (auto b : kBehaviours) {
    if (named.count(std::string(b)) != 0) {
      f.behaviour = b;
      break;
    }
  }
  auto vsn = img->vsn();
  if (vsn) {
    f.vsn = rh_vsn(*vsn);
    if (auto md5 = img->md5()) f.vsn_default = *vsn == Term::list({md5_integer(*md5)});
  }
  using V = ModuleVersion::LoadVerdict;
  f.on_load = info->load_verdict == V::kLoadableOnLoad ||
              (info->load_verdict == V::kUnknown && img->check_loadable().on_load);
  return f;
}

// --- The two sides ---------------------------------------------------------------------------

// A module that moved, older -> newer.
struct Moved {
  std::string module;
  std::int64_t old_version = 0, new_version = 0;
  std::string old_md5, new_md5;
  std::string old_app, new_app;
};

struct SideApp {
  std::string vsn;
  std::int64_t revision = 0;
};

struct Side {
  std::string name;
  std::map<std::string, SideApp> apps;
  std::vector<std::string> app_order;  // .rel order (a release), else by name
  std::optional<ErlReleaseInfo> release;
};

struct Ends {
  Side older, newer;
  std::vector<Moved> moved;
};

Result<Side> release_side(Store& store, const ReleaseId& id) {
  Side s;
  s.name = fmt::format("{}@{}", id.name, id.vsn);
  auto info = store.erl_release_info(id);
  if (!info) return error(info.error());
  for (const auto& a : info->apps) {
    s.apps[a.app] = {a.vsn, a.revision};
    s.app_order.push_back(a.app);
  }
  s.release = std::move(*info);
  return s;
}

Result<Side> generation_side(Store& store, const std::string& channel, std::int64_t number) {
  Side s;
  auto apps = store.channel_apps(channel, number);
  if (!apps) return error(apps.error());
  s.name = fmt::format("{}#{}", channel, apps->generation);
  for (const auto& a : apps->apps) {
    s.apps[a.app] = {a.vsn, a.revision};
    s.app_order.push_back(a.app);
  }
  if (!apps->release.name.empty()) {
    auto info = store.erl_release_info(apps->release);
    if (!info) return error(info.error());
    s.release = std::move(*info);
  }
  return s;
}

std::string release_app(const std::string& app) {
  return app == "<release>" ? "" : app;  // erl_release_diff's name for consolidated modules
}

// --- Files: configuration and NIF libraries ---------------------------------------------------

Result<std::vector<Term>> consult_blob(Store& store, const ContentEntry& e, const std::string& what) {
  auto bytes = store.blob(e.sha256);
  if (!bytes) return error(bytes.error().with_context(what));
  return etf::consult(std::span<const std::uint8_t>(**bytes), what);
}

const ContentEntry* find_file(const std::vector<ContentEntry>& files, const std::string& path) {
  for (const auto& f : files)
    if (f.path == path) return &f;
  return nullptr;
}

std::string env_key(const Term& pair) {
  if (const auto* t = pair.as_tuple(); t != nullptr && !t->elements.empty())
    return etf::format_w(t->elements[0]);
  return etf::format_w(pair);
}

// The keys whose values differ between two env lists ([{Par, Val}]).
std::vector<std::string> env_differences(const Term& a, const Term& b) {
  std::map<std::string, Term> ma, mb;
  if (auto l = a.list_elements())
    for (const auto& p : *l) ma.emplace(env_key(p), p);
  if (auto l = b.list_elements())
    for (const auto& p : *l) mb.emplace(env_key(p), p);
  std::vector<std::string> keys;
  for (const auto& [k, v] : ma)
    if (auto it = mb.find(k); it == mb.end() || !(it->second == v)) keys.push_back(k);
  for (const auto& [k, v] : mb)
    if (ma.count(k) == 0) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

bool is_nif_library(const std::string& path) {
  return path.rfind("priv/", 0) == 0 && path.size() > 3 && path.compare(path.size() - 3, 3, ".so") == 0;
}

Status compare_app_files(Store& store, const std::string& app, const SideApp& older, const SideApp& newer,
                         UpgradePlan& plan) {
  auto a = store.app_show(app, older.vsn, older.revision);
  if (!a) return a.error();
  auto b = store.app_show(app, newer.vsn, newer.revision);
  if (!b) return b.error();
  // NIF libraries: priv/**.so on either side, by SHA-256 (or link target).
  std::map<std::string, std::string> sa, sb;
  for (const auto& f : a->files)
    if (is_nif_library(f.path)) sa[f.path] = f.sha256 + f.link;
  for (const auto& f : b->files)
    if (is_nif_library(f.path)) sb[f.path] = f.sha256 + f.link;
  std::set<std::string> paths;
  for (const auto& [p, h] : sa)
    if (auto it = sb.find(p); it == sb.end() || it->second != h) paths.insert(p);
  for (const auto& [p, h] : sb)
    if (sa.count(p) == 0) paths.insert(p);
  for (const auto& p : paths) {
    const char* how = sa.count(p) == 0 ? "added" : sb.count(p) == 0 ? "removed" : "changed";
    plan.restart.push_back({"nif", app, p,
                            fmt::format("{}: NIF library {} {} ({} -> {}): a loaded NIF library is replaced "
                                        "only by loading its module again, if the library's upgrade "
                                        "callback accepts it",
                                        app, p, how, older.vsn, newer.vsn)});
  }
  // Configuration: the .app's env.
  const std::string app_file = "ebin/" + app + ".app";
  const ContentEntry* fa = find_file(a->files, app_file);
  const ContentEntry* fb = find_file(b->files, app_file);
  if (fa == nullptr || fb == nullptr || fa->sha256 == fb->sha256) return Status();
  Term env_a, env_b;
  for (auto [entry, env, vsn] : {std::tuple{fa, &env_a, &older.vsn}, std::tuple{fb, &env_b, &newer.vsn}}) {
    const std::string what = fmt::format("{}@{} {}", app, *vsn, app_file);
    auto terms = consult_blob(store, *entry, what);
    if (!terms) return terms.error();
    if (terms->size() != 1) return Status(Code::kCorruption, fmt::format("{}: not one term", what));
    auto spec = otp::parse_app((*terms)[0], what);
    if (!spec) return spec.error();
    *env = spec->env;
  }
  if (auto keys = env_differences(env_a, env_b); !keys.empty()) {
    plan.restart.push_back({"config", app, fmt::format("env {}", fmt::join(keys, ",")),
                            fmt::format("{}: application env changed ({} -> {}): {}; a running application "
                                        "reads its env when it starts, and config_change/3 is called only "
                                        "by release_handler after a relup",
                                        app, older.vsn, newer.vsn, fmt::join(keys, ", "))});
  }
  return Status();
}

Status compare_releases(Store& store, const Side& older, const Side& newer, UpgradePlan& plan) {
  if (!older.release || !newer.release) return Status();
  const auto& ra = *older.release;
  const auto& rb = *newer.release;
  plan.from_erts = plan.down ? rb.release.erts_vsn : ra.release.erts_vsn;
  plan.to_erts = plan.down ? ra.release.erts_vsn : rb.release.erts_vsn;
  if (ra.release.erts_vsn != rb.release.erts_vsn) {
    plan.restart.push_back({"erts", "", "erts",
                            fmt::format("erts {} -> {}: a new emulator needs a restart (systools: "
                                        "restart_new_emulator)",
                                        plan.from_erts, plan.to_erts)});
  }
  const ContentEntry* ca = find_file(ra.files, "releases/" + ra.release.id.vsn + "/sys.config");
  const ContentEntry* cb = find_file(rb.files, "releases/" + rb.release.id.vsn + "/sys.config");
  if (ca == nullptr && cb == nullptr) return Status();
  bool changed = (ca == nullptr) != (cb == nullptr);
  std::string detail = changed ? "present on one side only" : "";
  if (!changed && (ca->sha256 != cb->sha256 || ca->link != cb->link)) {
    std::vector<Term> ta, tb;
    for (auto [entry, terms, rel] :
         {std::tuple{ca, &ta, &ra.release.id}, std::tuple{cb, &tb, &rb.release.id}}) {
      if (entry->sha256.empty()) continue;  // a link: its target is compared above
      auto t = consult_blob(store, *entry, fmt::format("{}@{} {}", rel->name, rel->vsn, entry->path));
      if (!t) return t.error();
      *terms = std::move(*t);
    }
    changed = !(Term::list(ta) == Term::list(tb));
    detail = "its terms differ";
  }
  if (changed) {
    plan.restart.push_back({"config", "", "sys.config",
                            fmt::format("sys.config changed ({}): the application environment it sets is "
                                        "read at boot",
                                        detail)});
  }
  return Status();
}

// --- Order ---------------------------------------------------------------------------------------

// A stable topological order: `before[i]` are the indexes that must come before i; among
// those free to go, the lowest index first. A cycle is broken at its lowest index (those
// modules call each other's new exports: release_handler loads them in one step).
std::vector<std::size_t> stable_order(const std::vector<std::set<std::size_t>>& before, bool& cycle) {
  const std::size_t n = before.size();
  std::vector<std::size_t> pending(n);
  std::vector<std::vector<std::size_t>> after(n);
  for (std::size_t i = 0; i < n; ++i) {
    pending[i] = before[i].size();
    for (auto b : before[i]) after[b].push_back(i);
  }
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<bool> done(n, false);
  std::vector<std::size_t> out;
  cycle = false;
  while (out.size() < n) {
    if (ready.empty()) {
      cycle = true;
      for (std::size_t i = 0; i < n; ++i)
        if (!done[i]) {
          pending[i] = 0;
          ready.push(i);
          break;
        }
    }
    const std::size_t i = ready.top();
    ready.pop();
    if (done[i]) continue;
    done[i] = true;
    out.push_back(i);
    for (auto a : after[i])
      if (!done[a] && pending[a] > 0 && --pending[a] == 0) ready.push(a);
  }
  return out;
}

Term vsn_term(const std::string& vsn) {
  return vsn.empty() ? Term::atom("undefined") : Term::string(vsn);
}

Term purge_term(const UpgradePlanOptions& o) {
  return Term::atom(o.brutal_purge ? "brutal_purge" : "soft_purge");
}

Term atoms_list(const std::vector<std::string>& names) {
  etf::TermList l;
  for (const auto& n : names) l.push_back(Term::atom(n));
  return Term::list(std::move(l));
}

// The .appup instruction for `m` going the way `down` says, with DepMods `deps`
// (systools_rc.erl # expand_script/1, normalize_instrs/1 for the forms).
Term instruction_term(const PlanModule& m, bool plan_down, bool down, const std::vector<std::string>& deps,
                      const UpgradePlanOptions& o) {
  // The module's change the way the instruction goes.
  PlanModule::Change change = m.change;
  if (plan_down != down && change != PlanModule::Change::kChanged)
    change = change == PlanModule::Change::kAdded ? PlanModule::Change::kRemoved : PlanModule::Change::kAdded;
  const Term mod = Term::atom(m.module);
  const Term dep = atoms_list(deps);
  if (change == PlanModule::Change::kAdded) return Term::tuple({Term::atom("add_module"), mod, dep});
  if (change == PlanModule::Change::kRemoved) return Term::tuple({Term::atom("delete_module"), mod, dep});
  if (m.instruction == "load_module")
    return Term::tuple({Term::atom("load_module"), mod, purge_term(o), purge_term(o), dep});
  // Extra as {FromAppVsn, ToAppVsn} of the way the instruction goes.
  const bool flip = plan_down != down;
  const Term extra = Term::tuple(
      {vsn_term(flip ? m.to_app_vsn : m.from_app_vsn), vsn_term(flip ? m.from_app_vsn : m.to_app_vsn)});
  const Term advanced = Term::tuple({Term::atom("advanced"), extra});
  if (m.update_kind == "supervisor")
    return Term::tuple({Term::atom("update"), mod, Term::atom("static"), Term::atom("default"), advanced,
                        purge_term(o), purge_term(o), dep});
  if (m.update_kind == "soft")
    return Term::tuple({Term::atom("update"), mod, Term::atom("soft"), purge_term(o), purge_term(o), dep});
  return Term::tuple({Term::atom("update"), mod, advanced, purge_term(o), purge_term(o), dep});
}

std::string term_text_of(const Term& t);

// --- The plan ----------------------------------------------------------------------------------

struct Work {
  Moved moved;
  Facts older, newer;
  std::string app;
  std::size_t rank = 0;        // the application's place in the base order
  std::set<std::size_t> deps;  // indexes this one calls new exports of
};

Result<UpgradePlan> build(Store& store, const Ends& ends, UpgradePlan plan) {
  const Side& older = ends.older;
  const Side& newer = ends.newer;
  const bool down = plan.down;

  // Applications, by name.
  std::set<std::string> app_names;
  for (const auto& [a, s] : older.apps) app_names.insert(a);
  for (const auto& [a, s] : newer.apps) app_names.insert(a);
  for (const auto& a : app_names) {
    auto io = older.apps.find(a);
    auto in = newer.apps.find(a);
    SideApp so = io == older.apps.end() ? SideApp{} : io->second;
    SideApp sn = in == newer.apps.end() ? SideApp{} : in->second;
    PlanApp pa{a, down ? sn.vsn : so.vsn, down ? so.vsn : sn.vsn, down ? sn.revision : so.revision,
               down ? so.revision : sn.revision};
    if (so.vsn.empty() != sn.vsn.empty()) {
      plan.warnings.push_back(fmt::format(
          "application {} {} (release_handler's add_application/remove_application, from the .rel; "
          "no .appup carries it)",
          a, pa.from_vsn.empty() ? "added" : "removed"));
    } else if (!so.vsn.empty() && (so.vsn != sn.vsn || so.revision != sn.revision)) {
      if (auto st = compare_app_files(store, a, so, sn, plan); !st.is_ok()) return error(st);
    }
    plan.apps.push_back(std::move(pa));
  }
  if (auto st = compare_releases(store, older, newer, plan); !st.is_ok()) return error(st);

  // The base order: applications in the newer side's order, then the older's, then none.
  std::map<std::string, std::size_t> rank;
  for (const auto* side : {&newer, &older})
    for (const auto& a : side->app_order) rank.emplace(a, rank.size());

  std::vector<Work> work;
  for (const auto& m : ends.moved) {
    if (!m.old_md5.empty() && m.old_md5 == m.new_md5) continue;  // the same code in another byte form
    Work w;
    w.moved = m;
    auto of = facts_of(store, m.module, m.old_version);
    if (!of) return error(of.error());
    auto nf = facts_of(store, m.module, m.new_version);
    if (!nf) return error(nf.error());
    w.older = std::move(*of);
    w.newer = std::move(*nf);
    w.app = m.new_version != 0 ? m.new_app : m.old_app;
    auto r = rank.find(w.app);
    w.rank = r == rank.end() ? rank.size() : r->second;
    work.push_back(std::move(w));
  }
  std::sort(work.begin(), work.end(), [](const Work& a, const Work& b) {
    return std::tie(a.rank, a.moved.module) < std::tie(b.rank, b.moved.module);
  });

  // Dependencies (up): A calls a new export of B (B added, or changed and the export is new).
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < work.size(); ++i) index[work[i].moved.module] = i;
  for (std::size_t i = 0; i < work.size(); ++i) {
    if (!work[i].newer.present) continue;
    for (const auto& imp : work[i].newer.imports) {
      auto it = index.find(imp.module);
      if (it == index.end() || it->second == i) continue;
      const Work& b = work[it->second];
      if (!b.newer.present) continue;
      const std::string fa = fmt::format("{}/{}", imp.function, imp.arity);
      if (b.newer.exports.count(fa) != 0 && b.older.exports.count(fa) == 0) work[i].deps.insert(it->second);
    }
  }

  // Each module, in the plan's direction.
  std::vector<PlanModule> modules;
  for (const auto& w : work) {
    PlanModule pm;
    pm.base = modules.size();
    const Moved& m = w.moved;
    pm.module = m.module;
    pm.app = w.app;
    const auto older_app = older.apps.find(m.old_version != 0 ? m.old_app : w.app);
    const auto newer_app = newer.apps.find(m.new_version != 0 ? m.new_app : w.app);
    const std::string older_app_vsn = older_app == older.apps.end() ? "" : older_app->second.vsn;
    const std::string newer_app_vsn = newer_app == newer.apps.end() ? "" : newer_app->second.vsn;
    PlanModule::Change up_change = m.old_version == 0   ? PlanModule::Change::kAdded
                                   : m.new_version == 0 ? PlanModule::Change::kRemoved
                                                        : PlanModule::Change::kChanged;
    std::vector<std::string> added, removed;
    for (const auto& e : w.newer.exports)
      if (w.older.exports.count(e) == 0) added.push_back(e);
    for (const auto& e : w.older.exports)
      if (w.newer.exports.count(e) == 0) removed.push_back(e);
    // The facts of the version that is there: the newer, else the older.
    const Facts& f = w.newer.present ? w.newer : w.older;
    pm.behaviour = f.behaviour;
    pm.code_change =
        (f.behaviour == "gen_statem" || f.behaviour == "gen_fsm") ? f.code_change4 : f.code_change3;
    pm.older_vsn = w.older.vsn;
    pm.newer_vsn = w.newer.vsn;
    pm.older_vsn_default = w.older.vsn_default;
    pm.newer_vsn_default = w.newer.vsn_default;
    pm.on_load = w.newer.on_load;
    pm.load_nif = w.newer.load_nif;
    if (up_change == PlanModule::Change::kAdded) {
      pm.instruction = "add_module";
    } else if (up_change == PlanModule::Change::kRemoved) {
      pm.instruction = "delete_module";
    } else if (f.behaviour == "supervisor") {
      pm.instruction = "update";
      pm.update_kind = "supervisor";
    } else if (!f.behaviour.empty()) {
      pm.instruction = "update";
      pm.update_kind = pm.code_change ? "advanced" : "soft";
    } else {
      pm.instruction = "load_module";
    }
    if (down && up_change != PlanModule::Change::kChanged)
      pm.instruction = pm.instruction == "add_module" ? "delete_module" : "add_module";
    pm.change = up_change;
    if (down && up_change != PlanModule::Change::kChanged)
      pm.change =
          up_change == PlanModule::Change::kAdded ? PlanModule::Change::kRemoved : PlanModule::Change::kAdded;
    pm.from_version = down ? m.new_version : m.old_version;
    pm.to_version = down ? m.old_version : m.new_version;
    pm.from_md5 = down ? m.new_md5 : m.old_md5;
    pm.to_md5 = down ? m.old_md5 : m.new_md5;
    pm.from_app_vsn = down ? newer_app_vsn : older_app_vsn;
    pm.to_app_vsn = down ? older_app_vsn : newer_app_vsn;
    pm.exports_added = down ? removed : added;
    pm.exports_removed = down ? added : removed;
    for (auto d : w.deps) pm.depends_on.push_back(work[d].moved.module);
    std::sort(pm.depends_on.begin(), pm.depends_on.end());
    if (pm.update_kind == "advanced" || pm.update_kind == "supervisor") {
      // release_handler_1.erl # eval({code_change, Mode, Modules}): up OldVsn, down {down, NewVsn},
      // both the vsn of the older code (add_vsns/3 reads it from the binary it loads on a downgrade).
      pm.old_vsn = down ? Term::tuple({Term::atom("down"), w.older.vsn}) : w.older.vsn;
      pm.extra = Term::tuple({vsn_term(pm.from_app_vsn), vsn_term(pm.to_app_vsn)});
    }
    if (pm.update_kind == "advanced" && w.older.vsn_default) {
      pm.vsn_trap = true;
      pm.warnings.push_back(fmt::format(
          "the -vsn trap: {} has no -vsn, so code_change gets {} {} (the compiler's default, from its "
          "MD5), not an application version; match Extra ({}) or give the module a -vsn",
          m.module, down ? "{down, Integer}" : "the integer", term_text(w.older.vsn), term_text(pm.extra)));
    } else if (pm.update_kind == "advanced" && !w.newer.vsn_default && w.older.vsn == w.newer.vsn) {
      pm.warnings.push_back(
          fmt::format("{} has -vsn {} in both versions: code_change cannot tell them apart by "
                      "OldVsn",
                      m.module, term_text(w.older.vsn)));
    }
    if (f.behaviour == "supervisor" && up_change == PlanModule::Change::kChanged) {
      plan.restart.push_back({"supervisor", w.app, m.module,
                              fmt::format("supervisor {} changed: its child specs may have changed; "
                                          "supervisor:code_change/3 re-reads init/1 but neither starts "
                                          "added children nor stops removed ones",
                                          m.module)});
    }
    if (up_change == PlanModule::Change::kChanged && (w.newer.on_load || w.newer.load_nif)) {
      plan.restart.push_back(
          {"nif", w.app, m.module,
           fmt::format("{} changed and {}: its NIF library is loaded again with the new "
                       "code, which works only if the library's upgrade callback "
                       "accepts it",
                       m.module, w.newer.on_load ? "has -on_load" : "calls erlang:load_nif/2")});
    }
    if (up_change == PlanModule::Change::kChanged && older_app != older.apps.end() &&
        newer_app != newer.apps.end() && older_app->second.vsn == newer_app->second.vsn && !w.app.empty()) {
      pm.warnings.push_back(fmt::format(
          "{} changed but application {} keeps vsn {}: no .appup can carry it (release_handler upgrades "
          "only applications whose vsn changes)",
          m.module, w.app, older_app->second.vsn));
    }
    modules.push_back(std::move(pm));
  }

  // Order: up, a module after those whose new exports it calls; down, before them
  // (systools_rc.erl # translate_dep_to_low/3: loaded in the reversed order of dependency when
  // upgrading, in the order of dependency when downgrading).
  std::vector<std::set<std::size_t>> before(work.size());
  for (std::size_t i = 0; i < work.size(); ++i) {
    for (auto d : work[i].deps) {
      if (down)
        before[d].insert(i);
      else
        before[i].insert(d);
    }
  }
  bool cycle = false;
  const auto order = stable_order(before, cycle);
  if (cycle)
    plan.warnings.emplace_back(
        "some modules call each other's new exports (a cycle): release_handler loads them "
        "in one step, between one suspend and one resume");
  for (auto i : order) {
    plan.modules.push_back(std::move(modules[i]));
  }
  return plan;
}

std::string plan_name(const UpgradePlan& p) {
  return fmt::format("plan {} -> {}", p.from, p.to);
}

}  // namespace

// --- Public ------------------------------------------------------------------------------------

Result<UpgradePlan> plan_release_upgrade(Store& store, const ReleaseId& from, const ReleaseId& to,
                                         const UpgradePlanOptions& options) {
  UpgradePlan plan;
  plan.options = options;
  plan.from = fmt::format("{}@{}", from.name, from.vsn);
  plan.to = fmt::format("{}@{}", to.name, to.vsn);
  plan.from_release = from;
  plan.to_release = to;
  plan.down = from.name == to.name && compare_vsn(to.vsn, from.vsn) < 0;
  const ReleaseId& older_id = plan.down ? to : from;
  const ReleaseId& newer_id = plan.down ? from : to;
  auto context = [&](const Status& s) { return error(s.with_context(plan_name(plan))); };
  Ends ends;
  auto older = release_side(store, older_id);
  if (!older) return context(older.error());
  auto newer = release_side(store, newer_id);
  if (!newer) return context(newer.error());
  ends.older = std::move(*older);
  ends.newer = std::move(*newer);
  auto diff = store.erl_release_diff(older_id, newer_id);
  if (!diff) return context(diff.error());
  for (const auto& m : diff->modules_added)
    ends.moved.push_back({m.module, 0, m.to_version, "", m.to_md5, "", release_app(m.to_app)});
  for (const auto& m : diff->modules_removed)
    ends.moved.push_back({m.module, m.from_version, 0, m.from_md5, "", release_app(m.from_app), ""});
  for (const auto& m : diff->modules_changed)
    ends.moved.push_back({m.module, m.from_version, m.to_version, m.from_md5, m.to_md5,
                          release_app(m.from_app), release_app(m.to_app)});
  auto plan_or = build(store, ends, std::move(plan));
  if (!plan_or) return context(plan_or.error());
  return plan_or;
}

Result<UpgradePlan> plan_generation_upgrade(Store& store, const std::string& channel, std::int64_t from,
                                            std::int64_t to, const UpgradePlanOptions& options) {
  UpgradePlan plan;
  plan.options = options;
  plan.channel = channel;
  plan.from = fmt::format("{}#{}", channel, from);
  plan.to = fmt::format("{}#{}", channel, to);
  auto context = [&](const Status& s) { return error(s.with_context(plan_name(plan))); };
  auto gen_from = store.channel_generation(channel, from);
  if (!gen_from) return context(gen_from.error());
  auto gen_to = store.channel_generation(channel, to);
  if (!gen_to) return context(gen_to.error());
  plan.from_generation = gen_from->number;
  plan.to_generation = gen_to->number;
  plan.from = fmt::format("{}#{}", channel, plan.from_generation);
  plan.to = fmt::format("{}#{}", channel, plan.to_generation);
  auto side_from = generation_side(store, channel, gen_from->number);
  if (!side_from) return context(side_from.error());
  auto side_to = generation_side(store, channel, gen_to->number);
  if (!side_to) return context(side_to.error());
  // The direction is the content's, not the generations' order: a channel rollback (or a deploy
  // of an older release) is a newer generation holding older code, whose gen_servers must get
  // code_change({down, Vsn}, ...) in the code they run, as release_handler does. Two releases
  // of one name: by their vsns, as plan_release_upgrade decides; otherwise (loose applications)
  // by the generations' numbers.
  if (side_from->release && side_to->release &&
      side_from->release->release.id.name == side_to->release->release.id.name)
    plan.down = compare_vsn(side_to->release->release.id.vsn, side_from->release->release.id.vsn) < 0;
  else
    plan.down = plan.to_generation < plan.from_generation;
  const Generation& g_older = plan.down ? *gen_to : *gen_from;
  const Generation& g_newer = plan.down ? *gen_from : *gen_to;
  Ends ends;
  ends.older = std::move(plan.down ? *side_to : *side_from);
  ends.newer = std::move(plan.down ? *side_from : *side_to);
  if (ends.older.release) (plan.down ? plan.to_release : plan.from_release) = ends.older.release->release.id;
  if (ends.newer.release) (plan.down ? plan.from_release : plan.to_release) = ends.newer.release->release.id;
  auto diff = store.generation_diff(channel, g_older.number, channel, g_newer.number);
  if (!diff) return context(diff.error());
  std::map<std::string, std::string> lib_older, lib_newer;
  for (const auto& e : g_older.content) lib_older[e.module] = e.lib;
  for (const auto& e : g_newer.content) lib_newer[e.module] = e.lib;
  for (const auto& e : diff->added) ends.moved.push_back({e.module, 0, e.version, "", e.md5, "", e.lib});
  for (const auto& e : diff->removed) ends.moved.push_back({e.module, e.version, 0, e.md5, "", e.lib, ""});
  for (const auto& c : diff->changed)
    ends.moved.push_back({c.module, c.from_version, c.to_version, c.from_md5, c.to_md5, lib_older[c.module],
                          lib_newer[c.module]});
  auto plan_or = build(store, ends, std::move(plan));
  if (!plan_or) return context(plan_or.error());
  return plan_or;
}

std::vector<AppupFile> plan_appups(const UpgradePlan& plan) {
  // The applications that get one: on both sides, with two vsns.
  std::map<std::string, const PlanApp*> upgraded;
  for (const auto& a : plan.apps)
    if (!a.from_vsn.empty() && !a.to_vsn.empty() && a.from_vsn != a.to_vsn) upgraded[a.app] = &a;
  std::set<std::string> carried;  // modules some appup carries: DepMods must name only these
  for (const auto& m : plan.modules)
    if (upgraded.count(m.app) != 0) carried.insert(m.module);

  // Both directions' orders, from the base order (so that an upgrade plan and a downgrade plan
  // write the same file): a stable topological order over DepMods each way.
  std::vector<std::size_t> by_base(plan.modules.size());  // base position -> plan index
  for (std::size_t i = 0; i < plan.modules.size(); ++i) by_base[i] = i;
  std::sort(by_base.begin(), by_base.end(),
            [&](std::size_t a, std::size_t b) { return plan.modules[a].base < plan.modules[b].base; });
  std::map<std::string, std::size_t> position;  // module -> base position
  for (std::size_t k = 0; k < by_base.size(); ++k) position[plan.modules[by_base[k]].module] = k;
  auto order = [&](bool down) {
    std::vector<std::set<std::size_t>> before(by_base.size());
    for (std::size_t k = 0; k < by_base.size(); ++k) {
      for (const auto& d : plan.modules[by_base[k]].depends_on) {
        auto it = position.find(d);
        if (it == position.end()) continue;
        if (down)
          before[it->second].insert(k);
        else
          before[k].insert(it->second);
      }
    }
    bool cycle = false;
    std::vector<std::size_t> out;
    for (auto k : stable_order(before, cycle)) out.push_back(by_base[k]);
    return out;
  };
  const auto up_order = order(false);
  const auto down_order = order(true);

  std::vector<AppupFile> out;
  for (const auto& [app, pa] : upgraded) {
    const std::string& newer = plan.down ? pa->from_vsn : pa->to_vsn;
    const std::string& older = plan.down ? pa->to_vsn : pa->from_vsn;
    etf::TermList up, dn;
    for (auto [in_order, list, down] :
         {std::tuple{&up_order, &up, false}, std::tuple{&down_order, &dn, true}}) {
      for (auto i : *in_order) {
        const PlanModule& m = plan.modules[i];
        if (m.app != app) continue;
        std::vector<std::string> deps;
        for (const auto& d : m.depends_on)
          if (carried.count(d) != 0) deps.push_back(d);
        list->push_back(instruction_term(m, plan.down, down, deps, plan.options));
      }
    }
    AppupFile f;
    f.app = app;
    f.vsn = newer;
    f.path = fmt::format("lib/{}-{}/ebin/{}.appup", app, newer, app);
    f.term =
        Term::tuple({Term::string(newer), Term::list({Term::tuple({Term::string(older), Term::list(up)})}),
                     Term::list({Term::tuple({Term::string(older), Term::list(dn)})})});
    // Laid out one instruction a line.
    auto section = [&](const etf::TermList& instrs) {
      std::string s = fmt::format(" [{{{},\n   [", term_text(Term::string(older)));
      for (std::size_t k = 0; k < instrs.size(); ++k) s += (k == 0 ? "" : ",\n    ") + term_text(instrs[k]);
      return s + "]}]";
    };
    f.text = fmt::format("{{{},\n{},\n{}}}.\n", term_text(Term::string(newer)), section(up), section(dn));
    out.push_back(std::move(f));
  }
  return out;
}

Term plan_instruction(const UpgradePlan& plan, const PlanModule& m) {
  return instruction_term(m, plan.down, plan.down, m.depends_on, plan.options);
}

std::string term_text(const etf::Term& term) {
  return term_text_of(term);
}

namespace {

// Printable as a string by ~p (io_lib:printable_latin1_list/1, restricted to what needs no
// escape beyond \" and \\, plus \n and \t).
bool printable(const etf::List& l) {
  if (l.tail) return false;
  for (const auto& e : l.elements) {
    const auto* i = e.as_int();
    if (i == nullptr || !((*i >= 32 && *i <= 126) || *i == '\n' || *i == '\t')) return false;
  }
  return true;
}

std::string term_text_of(const Term& t) {
  if (const auto* l = t.as_list()) {
    if (printable(*l)) {
      std::string s = "\"";
      for (const auto& e : l->elements) {
        const char c = static_cast<char>(*e.as_int());
        if (c == '"' || c == '\\') s += '\\';
        if (c == '\n') {
          s += "\\n";
        } else if (c == '\t') {
          s += "\\t";
        } else {
          s += c;
        }
      }
      return s + "\"";
    }
    if (l->tail) return etf::format_w(t);
    std::string s = "[";
    for (std::size_t i = 0; i < l->elements.size(); ++i)
      s += (i == 0 ? "" : ",") + term_text_of(l->elements[i]);
    return s + "]";
  }
  if (const auto* tu = t.as_tuple()) {
    std::string s = "{";
    for (std::size_t i = 0; i < tu->elements.size(); ++i)
      s += (i == 0 ? "" : ",") + term_text_of(tu->elements[i]);
    return s + "}";
  }
  return etf::format_w(t);
}

}  // namespace

}  // namespace codestore
