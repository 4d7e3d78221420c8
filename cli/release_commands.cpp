// Application versions and Erlang releases (docs/model.md) on the command line:
//
//   apps                                   every application version (app, vsn, revision)
//   app show APP@VSN[#REV]                 its modules (version, MD5) and files (size, SHA-256)
//   release list                           snapshots, then Erlang releases NAME@VSN
//   release show NAME@VSN                  erts, kind, applications in .rel order, files,
//                                          consolidated modules
//   release diff A@V1 B@V2                 applications added, removed, upgraded; modules
//                                          added, removed, changed (MD5); files changed
//   release export NAME@VSN -o DIR|FILE.tar.gz
//                                          the release as imported, byte for byte
//   deploy NAME@VSN [--channel C]          the release becomes the channel's content
//   materialize [--channel C] DIR [--force] [--dry-run]
//                                          a node's local root: what it must find on disk for
//                                          the channel's current generation (priv files,
//                                          releases/RELEASES, boot files, sys.config, vm.args,
//                                          start_erl.data), and nothing else
//
// `release list/show/diff` are store_commands.cpp's (snapshots), which hand NAME@VSN over to
// the functions here (store_cli.h). Every command takes --json. Names are split at the first
// '@' (an application or release name is an atom without one in practice; a vsn may hold
// anything), a revision at the last '#'.
#include <codestore/release_reader.h>
#include <codestore/store.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "deploy_wait.h"
#include "json_util.h"
#include "store_cli.h"

namespace codestore::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Ref {
  std::string name, vsn;
  std::int64_t revision = 0;  // APP@VSN#REV; 0: none given (the newest)
};

// NAME@VSN (with_revision: APP@VSN[#REV]); nullopt when malformed.
std::optional<Ref> parse_name_vsn(const std::string& text, bool with_revision) {
  const auto at = text.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == text.size()) return std::nullopt;
  Ref r{text.substr(0, at), text.substr(at + 1), 0};
  if (with_revision) {
    const auto hash = r.vsn.rfind('#');
    if (hash != std::string::npos) {
      const std::string rev = r.vsn.substr(hash + 1);
      if (rev.empty() || rev.size() > 9 ||
          !std::all_of(rev.begin(), rev.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
      r.revision = std::stoll(rev);
      if (r.revision < 1) return std::nullopt;
      r.vsn.resize(hash);
      if (r.vsn.empty()) return std::nullopt;
    }
  }
  return r;
}

std::string app_text(const std::string& app, const std::string& vsn, std::int64_t revision) {
  return revision > 1 ? fmt::format("{}@{}#{}", app, vsn, revision) : fmt::format("{}@{}", app, vsn);
}

Json module_json(const ContentModule& m) {
  return Json{{"module", text_to_json_string(m.module)}, {"version", m.version}, {"md5", m.md5},
              {"path", text_to_json_string(m.path)},     {"sha256", m.sha256},   {"size", m.size}};
}

Json entry_json(const ContentEntry& e) {
  Json j{{"path", text_to_json_string(e.path)}, {"mode", e.mode}};
  if (e.directory) {
    j["kind"] = "directory";
  } else if (!e.link.empty()) {
    j["kind"] = "link";
    j["link"] = text_to_json_string(e.link);
  } else {
    j["kind"] = "file";
    j["size"] = e.size;
    j["sha256"] = e.sha256;
  }
  return j;
}

std::string entry_text(const ContentEntry& e) {
  if (e.directory) return "directory";
  if (!e.link.empty()) return "-> " + e.link;
  return e.sha256.substr(0, 16);
}

Json summary_json(const AppVersionSummary& a) {
  return Json{{"app", text_to_json_string(a.app)},
              {"vsn", text_to_json_string(a.vsn)},
              {"revision", a.revision},
              {"modules", a.modules},
              {"files", a.files},
              {"content", a.content},
              {"origin", text_or_null(a.origin)},
              {"warning", text_or_null(a.warning)},
              {"imported_at", a.imported_at}};
}

void cmd_apps(Context& ctx) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->apps();
  if (!r) return report_error(ctx, r.error());
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& a : *r) j.push_back(summary_json(a));
    *ctx.out << Json{{"apps", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"APP", "VSN", "REV", "MODULES", "FILES", "IMPORTED", "ORIGIN"}};
  std::vector<std::string> warnings;
  for (const auto& a : *r) {
    t.push_back({a.app, a.vsn, std::to_string(a.revision), std::to_string(a.modules), std::to_string(a.files),
                 when(a.imported_at), a.origin.empty() ? "-" : a.origin});
    if (!a.warning.empty())
      warnings.push_back(fmt::format("{}: {}", app_text(a.app, a.vsn, a.revision), a.warning));
  }
  table(*ctx.out, t);
  for (const auto& w : warnings) *ctx.out << "warning: " << w << "\n";
}

void cmd_app_show(Context& ctx, const std::string& ref) {
  const auto r = parse_name_vsn(ref, true);
  if (!r) return report_usage(ctx, fmt::format("{}: an application version is APP@VSN or APP@VSN#REV", ref));
  auto store = open_store(ctx, false);
  if (!store) return;
  auto info = store->app_show(r->name, r->vsn, r->revision);
  if (!info) return report_error(ctx, info.error());
  if (ctx.json) {
    Json j = summary_json(info->summary);
    Json m = Json::array(), f = Json::array();
    for (const auto& x : info->modules) m.push_back(module_json(x));
    for (const auto& x : info->files) f.push_back(entry_json(x));
    j["module_list"] = m;
    j["file_list"] = f;
    *ctx.out << j.dump() << "\n";
    return;
  }
  const auto& s = info->summary;
  *ctx.out << fmt::format("{}: {} modules, {} files, imported {}{}\n", app_text(s.app, s.vsn, s.revision),
                          s.modules, s.files, when(s.imported_at),
                          s.origin.empty() ? "" : " from " + s.origin);
  if (!s.warning.empty()) *ctx.out << "warning: " << s.warning << "\n";
  std::vector<std::vector<std::string>> t{{"MODULE", "VERSION", "MD5", "SIZE", "PATH"}};
  for (const auto& x : info->modules)
    t.push_back({x.module, std::to_string(x.version), x.md5, std::to_string(x.size), x.path});
  table(*ctx.out, t);
  std::vector<std::vector<std::string>> ft{{"FILE", "MODE", "SIZE", "SHA256"}};
  for (const auto& x : info->files)
    ft.push_back({x.path, fmt::format("{:04o}", x.mode), std::to_string(x.size), entry_text(x)});
  table(*ctx.out, ft);
}

void cmd_release_export(Context& ctx, const std::string& ref, const std::string& out) {
  const auto r = parse_name_vsn(ref, false);
  if (!r) return report_usage(ctx, fmt::format("{}: a release is NAME@VSN", ref));
  if (out.empty()) return report_usage(ctx, "-o DIR or -o FILE.tar.gz is required");
  auto store = open_store(ctx, false);
  if (!store) return;
  auto x = store->erl_release_export({r->name, r->vsn}, out);
  if (!x) return report_error(ctx, x.error());
  if (ctx.json) {
    *ctx.out << Json{{"release", text_to_json_string(ref)},
                     {"path", text_to_json_string(x->path)},
                     {"tarball", x->tarball},
                     {"files", x->files},
                     {"links", x->links},
                     {"directories", x->directories},
                     {"bytes", x->bytes}}
                    .dump()
             << "\n";
    return;
  }
  *ctx.out << fmt::format("{} -> {}: {} files ({} bytes), {} links, {} empty directories\n", ref, x->path,
                          x->files, x->bytes, x->links, x->directories);
}

Json deploy_json(const std::string& ref, const DeployResult& d) {
  Json changed = Json::array();
  for (const auto& c : d.changed) {
    changed.push_back({{"module", text_to_json_string(c.module)},
                       {"from", version_or_null(c.from_version)},
                       {"to", version_or_null(c.to_version)}});
  }
  Json j{{"release", text_to_json_string(ref)},
         {"channel", text_to_json_string(d.channel)},
         {"generation", d.generation == 0 ? Json(nullptr) : Json(d.generation)},
         {"modules", d.modules},
         {"apps", d.apps},
         {"changed", changed}};
  if (d.candidate) {
    j["candidate"] = true;
    j["base"] = d.base;
    j["canaries"] = d.canaries;
  }
  return j;
}

void print_deploy(Context& ctx, const std::string& ref, const DeployResult& d) {
  if (ctx.json) {
    *ctx.out << deploy_json(ref, d).dump() << "\n";
    return;
  }
  if (d.generation == 0) {
    *ctx.out << fmt::format("{}: channel {} has its content already; nothing changed\n", ref, d.channel);
    return;
  }
  if (d.candidate) {
    *ctx.out << fmt::format(
        "{} -> channel {} candidate generation {} for {} canaries (the channel stays at generation {} until "
        "they apply it): {} applications, {} modules, {} changed\n",
        ref, d.channel, d.generation, d.canaries, d.base, d.apps, d.modules, d.changed.size());
    return;
  }
  *ctx.out << fmt::format("{} -> channel {} generation {}: {} applications, {} modules, {} changed\n", ref,
                          d.channel, d.generation, d.apps, d.modules, d.changed.size());
}

void cmd_deploy(Context& ctx, const std::string& ref, const std::string& reason, const UpgradeArgs& args,
                std::int64_t canary) {
  const auto r = parse_name_vsn(ref, false);
  if (!r) return report_usage(ctx, fmt::format("{}: a release is NAME@VSN", ref));
  const auto up = check_upgrade_args(ctx, args);
  if (!up) return;
  if (canary < 0) return report_usage(ctx, fmt::format("--canary {}: a number of nodes, from 1", canary));
  auto store = open_store(ctx, true);
  if (!store) return;
  const std::int64_t since = up->wait ? newest_outcome_id(*store, ctx.channel) : 0;
  auto d = store->deploy({r->name, r->vsn}, Reason(reason), {.upgrade = up->options, .canary = canary});
  if (!d) return report_error(ctx, d.error());
  if (!up->wait || d->generation == 0) return print_deploy(ctx, ref, *d);
  if (ctx.json) {
    Json doc = deploy_json(ref, *d);
    wait_for_outcomes(ctx, *store, d->channel, d->generation, d->candidate, since, *up->wait, &doc);
    *ctx.out << doc.dump() << "\n";
    return;
  }
  print_deploy(ctx, ref, *d);
  ctx.out->flush();
  wait_for_outcomes(ctx, *store, d->channel, d->generation, d->candidate, since, *up->wait, nullptr);
}

void cmd_materialize(Context& ctx, const std::string& dir, bool force, bool dry_run) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto m = store->materialize(dir, {.force = force, .dry_run = dry_run});
  if (!m) return report_error(ctx, m.error());
  for (const auto& w : m->warnings) *ctx.err << "warning: " << w << "\n";
  const std::string release = m->release.name.empty() ? "" : m->release.name + "@" + m->release.vsn;
  if (ctx.json) {
    Json written = Json::array(), removed = Json::array(), warnings = Json::array();
    for (const auto& p : m->written) written.push_back(text_to_json_string(p));
    for (const auto& p : m->removed) removed.push_back(text_to_json_string(p));
    for (const auto& w : m->warnings) warnings.push_back(text_to_json_string(w));
    *ctx.out << Json{{"dir", text_to_json_string(m->dir)},
                     {"channel", text_to_json_string(m->channel)},
                     {"generation", m->generation},
                     {"release", text_or_null(release)},
                     {"erts", text_or_null(m->erts_vsn)},
                     {"previous_channel", text_or_null(m->previous_channel)},
                     {"previous_generation", version_or_null(m->previous_generation)},
                     {"files", m->files},
                     {"links", m->links},
                     {"directories", m->directories},
                     {"bytes", m->bytes},
                     {"unchanged", m->unchanged},
                     {"written", written},
                     {"removed", removed},
                     {"warnings", warnings},
                     {"dry_run", m->dry_run}}
                    .dump()
             << "\n";
    return;
  }
  *ctx.out << fmt::format(
      "{}{}: channel {} generation {}{}: {} files ({} bytes), {} links, {} directories; {} "
      "written, {} removed, {} unchanged\n",
      m->dry_run ? "dry run: " : "", m->dir, m->channel, m->generation,
      release.empty() ? " (no release: priv files only)" : ", release " + release, m->files, m->bytes,
      m->links, m->directories, m->written.size(), m->removed.size(), m->unchanged);
  for (const auto& p : m->written) *ctx.out << "  + " << p << "\n";
  for (const auto& p : m->removed) *ctx.out << "  - " << p << "\n";
}

// Whether `name` is to be read as an Erlang release: NAME@VSN, unless only a snapshot of
// that very name is stored.
std::optional<Ref> erl_ref(Store& store, const std::string& name) {
  auto r = parse_name_vsn(name, false);
  if (!r) return std::nullopt;
  auto found = store.erl_release_info({r->name, r->vsn});
  if (!found && found.error().code() == Code::kNotFound && store.release_show(name)) return std::nullopt;
  return r;
}

}  // namespace

bool show_erl_release(Context& ctx, Store& store, const std::string& name) {
  const auto r = erl_ref(store, name);
  if (!r) return false;
  auto info = store.erl_release_info({r->name, r->vsn});
  if (!info) {
    report_error(ctx, info.error());
    return true;
  }
  const ErlRelease& rel = info->release;
  if (ctx.json) {
    Json apps = Json::array(), files = Json::array(), mods = Json::array();
    for (const auto& a : info->apps) {
      apps.push_back({{"app", text_to_json_string(a.app)},
                      {"vsn", text_to_json_string(a.vsn)},
                      {"revision", a.revision},
                      {"type", text_or_null(a.type)},
                      {"included", text_or_null(a.included)}});
    }
    for (const auto& f : info->files) files.push_back(entry_json(f));
    for (const auto& m : info->consolidated) mods.push_back(module_json(m));
    *ctx.out << Json{{"name", text_to_json_string(rel.id.name)},
                     {"vsn", text_to_json_string(rel.id.vsn)},
                     {"erts", rel.erts_vsn},
                     {"kind", text_or_null(rel.kind)},
                     {"origin", text_or_null(rel.origin)},
                     {"imported_at", rel.imported_at},
                     {"modules", rel.modules},
                     {"apps", apps},
                     {"files", files},
                     {"consolidated", mods}}
                    .dump()
             << "\n";
    return true;
  }
  *ctx.out << fmt::format("release {}@{}: erts {}, {} applications, {} modules{}, imported {}{}\n",
                          rel.id.name, rel.id.vsn, rel.erts_vsn, rel.apps, rel.modules,
                          rel.kind.empty() ? "" : ", built by " + rel.kind, when(rel.imported_at),
                          rel.origin.empty() ? "" : " from " + rel.origin);
  std::vector<std::vector<std::string>> t{{"APP", "VSN", "REV", "TYPE", "INCLUDED"}};
  for (const auto& a : info->apps)
    t.push_back({a.app, a.vsn, std::to_string(a.revision), a.type.empty() ? "-" : a.type,
                 a.included.empty() ? "-" : a.included});
  table(*ctx.out, t);
  std::vector<std::vector<std::string>> ft{{"FILE", "MODE", "SIZE", "SHA256"}};
  for (const auto& f : info->files)
    ft.push_back({f.path, fmt::format("{:04o}", f.mode), std::to_string(f.size), entry_text(f)});
  for (const auto& m : info->consolidated)
    ft.push_back(
        {m.path, "0644", std::to_string(m.size), fmt::format("{}@{} (consolidated)", m.module, m.version)});
  table(*ctx.out, ft);
  return true;
}

bool diff_erl_releases(Context& ctx, Store& store, const std::string& a, const std::string& b) {
  const auto ra = erl_ref(store, a), rb = erl_ref(store, b);
  if (!ra && !rb) return false;
  if (!ra || !rb) {
    report_usage(
        ctx,
        fmt::format("release diff {} {}: compare two Erlang releases (NAME@VSN) or two snapshots", a, b));
    return true;
  }
  auto d = store.erl_release_diff({ra->name, ra->vsn}, {rb->name, rb->vsn});
  if (!d) {
    report_error(ctx, d.error());
    return true;
  }
  if (ctx.json) {
    auto app_list = [](const std::vector<ErlReleaseApp>& v) {
      Json j = Json::array();
      for (const auto& x : v)
        j.push_back({{"app", text_to_json_string(x.app)},
                     {"vsn", text_to_json_string(x.vsn)},
                     {"revision", x.revision}});
      return j;
    };
    Json upgraded = Json::array();
    for (const auto& u : d->apps_upgraded) {
      upgraded.push_back({{"app", text_to_json_string(u.app)},
                          {"from", {{"vsn", text_to_json_string(u.from_vsn)}, {"revision", u.from_revision}}},
                          {"to", {{"vsn", text_to_json_string(u.to_vsn)}, {"revision", u.to_revision}}}});
    }
    auto mod_list = [](const std::vector<ErlReleaseDiff::ModuleChange>& v) {
      Json j = Json::array();
      for (const auto& m : v) {
        Json x{{"module", text_to_json_string(m.module)}};
        if (m.from_version != 0)
          x["from"] = {
              {"app", text_to_json_string(m.from_app)}, {"version", m.from_version}, {"md5", m.from_md5}};
        if (m.to_version != 0)
          x["to"] = {{"app", text_to_json_string(m.to_app)}, {"version", m.to_version}, {"md5", m.to_md5}};
        j.push_back(x);
      }
      return j;
    };
    auto file_list = [](const std::vector<ErlReleaseDiff::FileChange>& v) {
      Json j = Json::array();
      for (const auto& f : v) {
        j.push_back({{"app", text_or_null(f.app)},
                     {"path", text_to_json_string(f.path)},
                     {"from", text_or_null(f.from_sha256)},
                     {"to", text_or_null(f.to_sha256)}});
      }
      return j;
    };
    *ctx.out << Json{{"a", text_to_json_string(a)},
                     {"b", text_to_json_string(b)},
                     {"apps",
                      {{"added", app_list(d->apps_added)},
                       {"removed", app_list(d->apps_removed)},
                       {"upgraded", upgraded}}},
                     {"modules",
                      {{"added", mod_list(d->modules_added)},
                       {"removed", mod_list(d->modules_removed)},
                       {"changed", mod_list(d->modules_changed)}}},
                     {"files",
                      {{"added", file_list(d->files_added)},
                       {"removed", file_list(d->files_removed)},
                       {"changed", file_list(d->files_changed)}}}}
                    .dump()
             << "\n";
    return true;
  }
  std::vector<std::vector<std::string>> t{{"", "APPLICATION", a, b}};
  for (const auto& x : d->apps_added) t.push_back({"+", x.app, "-", app_text(x.app, x.vsn, x.revision)});
  for (const auto& x : d->apps_removed) t.push_back({"-", x.app, app_text(x.app, x.vsn, x.revision), "-"});
  for (const auto& u : d->apps_upgraded)
    t.push_back(
        {"~", u.app, app_text(u.app, u.from_vsn, u.from_revision), app_text(u.app, u.to_vsn, u.to_revision)});
  table(*ctx.out, t);
  std::vector<std::vector<std::string>> mt{{"", "MODULE", a, b}};
  // "lists@3 1a2b3c4d (stdlib)": the module version, its MD5's start, its application.
  auto mv = [](const std::string& module, const std::string& app, std::int64_t v, const std::string& md5) {
    return fmt::format("{}@{} {} ({})", module, v, md5.substr(0, 8), app);
  };
  for (const auto& m : d->modules_added)
    mt.push_back({"+", m.module, "-", mv(m.module, m.to_app, m.to_version, m.to_md5)});
  for (const auto& m : d->modules_removed)
    mt.push_back({"-", m.module, mv(m.module, m.from_app, m.from_version, m.from_md5), "-"});
  for (const auto& m : d->modules_changed) {
    mt.push_back({"~", m.module, mv(m.module, m.from_app, m.from_version, m.from_md5),
                  mv(m.module, m.to_app, m.to_version, m.to_md5)});
  }
  table(*ctx.out, mt);
  std::vector<std::vector<std::string>> ft{{"", "FILE", a, b}};
  auto path = [](const ErlReleaseDiff::FileChange& f) {
    return f.app.empty() ? f.path : f.app + ": " + f.path;
  };
  auto sha = [](const std::string& s) { return s.empty() ? std::string("-") : s.substr(0, 16); };
  for (const auto& f : d->files_added) ft.push_back({"+", path(f), "-", sha(f.to_sha256)});
  for (const auto& f : d->files_removed) ft.push_back({"-", path(f), sha(f.from_sha256), "-"});
  for (const auto& f : d->files_changed) ft.push_back({"~", path(f), sha(f.from_sha256), sha(f.to_sha256)});
  table(*ctx.out, ft);
  return true;
}

bool list_erl_releases(Context& ctx, Store& store, nlohmann::ordered_json& doc) {
  auto r = store.erl_releases();
  if (!r) {
    report_error(ctx, r.error());
    return false;
  }
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& x : *r) {
      j.push_back({{"name", text_to_json_string(x.id.name)},
                   {"vsn", text_to_json_string(x.id.vsn)},
                   {"erts", x.erts_vsn},
                   {"kind", text_or_null(x.kind)},
                   {"apps", x.apps},
                   {"modules", x.modules},
                   {"files", x.files},
                   {"origin", text_or_null(x.origin)},
                   {"imported_at", x.imported_at}});
    }
    doc["erl_releases"] = j;
    return true;
  }
  if (r->empty()) return true;
  std::vector<std::vector<std::string>> t{{"RELEASE", "ERTS", "KIND", "APPS", "MODULES", "IMPORTED"}};
  for (const auto& x : *r) {
    t.push_back({x.id.name + "@" + x.id.vsn, x.erts_vsn, x.kind.empty() ? "-" : x.kind,
                 std::to_string(x.apps), std::to_string(x.modules), when(x.imported_at)});
  }
  *ctx.out << "\n";
  table(*ctx.out, t);
  return true;
}

bool import_release_path(Context& ctx, const std::string& path, const std::string& note, bool dry_run) {
  auto kind = classify(path);
  if (!kind) return false;  // the plain import reports a path it cannot look at
  if (*kind != PathKind::kReleaseDir && *kind != PathKind::kReleaseArchive) return false;
  auto store = open_store(ctx, !dry_run);
  if (!store) return true;
  const ReleaseImportOptions options{.dry_run = dry_run, .note = note};
  auto content = read_release(path);
  if (!content) {
    report_error(ctx, content.error());
    return true;
  }
  for (const auto& w : content->warnings) *ctx.err << "warning: " << w << "\n";
  auto r = store->import_release(*content, options);
  if (!r) {
    report_error(ctx, r.error());
    return true;
  }
  for (const auto& w : r->warnings) *ctx.err << "warning: " << w << "\n";
  const std::string ref = content->name + "@" + content->vsn;
  std::optional<DeployResult> deployed;
  if (ctx.channel_given && !dry_run) {
    auto d = store->deploy({content->name, content->vsn}, Reason("import " + path));
    if (!d) {
      report_error(ctx, d.error());
      return true;
    }
    deployed = std::move(*d);
  }
  if (ctx.json) {
    *ctx.out << Json{{"release", text_to_json_string(ref)},
                     {"kind", text_to_json_string(content->kind)},
                     {"apps", content->apps.size()},
                     {"unchanged", r->unchanged},
                     {"new_versions", r->new_versions},
                     {"channel", deployed ? Json(text_to_json_string(deployed->channel)) : Json(nullptr)},
                     {"generation",
                      deployed && deployed->generation != 0 ? Json(deployed->generation) : Json(nullptr)}}
                    .dump()
             << "\n";
    return true;
  }
  *ctx.out << fmt::format("{}{} ({}): {} applications, {}, {} new module versions\n",
                          dry_run ? "dry run: " : "", ref, content->kind, content->apps.size(),
                          r->unchanged ? "unchanged" : "imported", r->new_versions);
  if (deployed) {
    print_deploy(ctx, ref, *deployed);
  } else if (!dry_run) {
    *ctx.out << fmt::format("not deployed: codestore deploy {} --channel NAME makes it a channel's content\n",
                            ref);
  }
  return true;
}

bool import_app_paths(Context& ctx, const std::vector<std::string>& paths, const std::string& note,
                      bool dry_run) {
  if (paths.empty()) return false;
  for (const auto& path : paths) {
    auto kind = classify(path);
    if (!kind || (*kind != PathKind::kAppDir && *kind != PathKind::kAppArchive)) return false;
  }
  std::vector<AppContent> apps;
  apps.reserve(paths.size());
  for (const auto& path : paths) {
    auto app = read_app(path);
    if (!app) {
      report_error(ctx, app.error());
      return true;
    }
    for (const auto& w : app->warnings) *ctx.err << "warning: " << w << "\n";
    apps.push_back(std::move(app->app));
  }
  auto store = open_store(ctx, !dry_run);
  if (!store) return true;
  auto r = store->import_apps(apps, {.dry_run = dry_run, .note = note, .activate = true});
  if (!r) {
    report_error(ctx, r.error());
    return true;
  }
  // Loud: a new revision of an application version is what an operator must not miss.
  for (const auto& w : r->warnings) *ctx.err << "warning: " << w << "\n";
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& a : r->apps) {
      Json differs = Json::array();
      for (const auto& d : a.differs) differs.push_back(text_to_json_string(d));
      list.push_back({{"app", text_to_json_string(a.app)},
                      {"vsn", text_to_json_string(a.vsn)},
                      {"revision", a.revision},
                      {"unchanged", a.unchanged},
                      {"modules", a.modules},
                      {"files", a.files},
                      {"new_versions", a.new_versions},
                      {"differs", differs}});
    }
    Json changed = Json::array();
    for (const auto& c : r->changed) {
      changed.push_back({{"module", text_to_json_string(c.module)},
                         {"from", version_or_null(c.from_version)},
                         {"to", version_or_null(c.to_version)}});
    }
    Json warnings = Json::array();
    for (const auto& w : r->warnings) warnings.push_back(text_to_json_string(w));
    *ctx.out << Json{{"dry_run", dry_run},
                     {"apps", list},
                     {"channel", dry_run ? Json(nullptr) : Json(text_to_json_string(ctx.channel))},
                     {"generation", r->generation == 0 ? Json(nullptr) : Json(r->generation)},
                     {"new_versions", r->new_versions},
                     {"reused_versions", r->reused_versions},
                     {"bytes_in", r->bytes_in},
                     {"bytes_new", r->bytes_new},
                     {"bytes_stored", r->bytes_stored},
                     {"changed", changed},
                     {"warnings", warnings}}
                    .dump()
             << "\n";
    return true;
  }
  const std::string dry = dry_run ? "dry run: " : "";
  for (const auto& a : r->apps) {
    *ctx.out << fmt::format("{}{}: {}, {} modules, {} files, {} new module versions\n", dry,
                            app_text(a.app, a.vsn, a.revision),
                            a.unchanged ? "unchanged" : (a.revision > 1 ? "NEW REVISION" : "imported"),
                            a.modules, a.files, a.new_versions);
  }
  if (dry_run) return true;
  if (r->generation == 0) {
    *ctx.out << fmt::format("channel {} runs them already; nothing changed\n", ctx.channel);
  } else {
    *ctx.out << fmt::format("channel {} generation {}: {} modules changed\n", ctx.channel, r->generation,
                            r->changed.size());
  }
  return true;
}

void add_release_commands(CLI::App& app, Context& ctx) {
  struct Options {
    std::string ref, output;
  };
  auto o = std::make_shared<Options>();
  app.add_subcommand("apps", "Application versions (APP@VSN#REV) with their module and file counts")
      ->callback([&ctx] { cmd_apps(ctx); });
  auto* group = app.add_subcommand("app", "Application versions");
  group->require_subcommand(1);
  auto* show = group->add_subcommand("show", "An application version's modules (version, MD5) and files");
  show->add_option("APP@VSN", o->ref,
                   "The application version; APP@VSN#REV for a revision (default: the newest)")
      ->required();
  show->callback([&ctx, o] { cmd_app_show(ctx, o->ref); });

  CLI::App* release = app.get_subcommand("release");  // store_commands.cpp's group
  auto* exp =
      release->add_subcommand("export", "Write an Erlang release as imported: a directory or a .tar.gz");
  exp->add_option("NAME@VSN", o->ref, "The release")->required();
  exp->add_option("-o,--output", o->output,
                  "A new (or empty) directory, or FILE.tar.gz: a tarball as relx writes one, which "
                  "release_handler:unpack_release/1 takes")
      ->required();
  exp->callback([&ctx, o] { cmd_release_export(ctx, o->ref, o->output); });

  struct DeployArgs {
    std::string ref, reason;
    UpgradeArgs upgrade;
    std::int64_t canary = 0;
  };
  auto da = std::make_shared<DeployArgs>();
  auto* deploy = app.add_subcommand(
      "deploy",
      "Make an Erlang release the content of a channel (--channel, default: default): a new generation, "
      "which the channel's agent nodes apply live");
  deploy->add_option("NAME@VSN", da->ref, "The release")->required();
  deploy->add_option("--reason", da->reason, "Why (kept in the channel's history)");
  add_upgrade_options(deploy, da->upgrade);
  deploy->add_option(
      "--canary", da->canary,
      "A canary rollout: N connected agent nodes apply a candidate generation first; it becomes "
      "current when all of them applied it, and is dropped (the channel stays) when one did not");
  deploy->callback([&ctx, da] { cmd_deploy(ctx, da->ref, da->reason, da->upgrade, da->canary); });

  struct MaterializeArgs {
    std::string dir;
    bool force = false, dry_run = false;
  };
  auto m = std::make_shared<MaterializeArgs>();
  auto* materialize = app.add_subcommand(
      "materialize",
      "Write into a node's local root what it must find on disk for the current generation of a channel "
      "(--channel, default: default): priv files, releases/RELEASES, boot files, sys.config, vm.args, "
      "start_erl.data; never a module image. Again after a deploy: replaces and removes what it wrote");
  materialize->add_option("DIR", m->dir, "The node's root (ROOTDIR); created when missing")->required();
  materialize->add_flag("--force", m->force,
                        "Take DIR as it is: not empty without a manifest, another channel's, or files at its "
                        "paths that it did not write (overwritten or removed; other files are kept)");
  materialize->add_flag("--dry-run", m->dry_run, "Say what would be written and removed; write nothing");
  materialize->callback([&ctx, m] { cmd_materialize(ctx, m->dir, m->force, m->dry_run); });
}

}  // namespace codestore::cli
