// The readers of otp_files.h. Sources (OTP 25): sasl-4.2 systools_make.erl
// (parse_application/4, check_item/2, check_rel1/1, check_appl/1, mandatory_applications/4,
// check_modules/3), release_handler.erl (check_rel/4: bad_rel_file, bad_rel_data),
// kernel-8.5.3 application_controller.erl (make_appl/1: one term), init.erl (the boot script).
#include "otp/otp_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "base/file.h"
#include "etf/consult.h"
#include "etf/term_internal.h"

namespace codestore::otp {
namespace {

using etf::Term;
using etf::TermList;

constexpr std::size_t kMaxBootBytes = 64u << 20;

// A value for an error message, cut to a readable length.
std::string show(const Term& t) {
  std::string s = etf::format_w(t);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

tl::unexpected<Status> fail(std::string_view source, std::string_view reason, std::string_view what) {
  return tl::unexpected<Status>(Status(Code::kCorruption, reason, fmt::format("{}: {}", source, what))
                                    .with_where(Where{std::string(source), "", 0}));
}

// systools_make:string_p/1 (etf's, which the store's term files read too).
std::optional<std::string> string_p(const Term& t) {
  return etf::internal::string_of(t);
}

// a_list_p/1: a proper list of atoms.
std::optional<std::vector<std::string>> a_list_p(const Term& t) {
  auto elements = t.list_elements();
  if (!elements) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(elements->size());
  for (const Term& e : *elements) {
    const etf::Atom* a = e.as_atom();
    if (a == nullptr) return std::nullopt;
    out.push_back(a->name);
  }
  return out;
}

// t_list_p/1: a proper list of {Atom, _}.
bool t_list_p(const Term& t) {
  auto elements = t.list_elements();
  if (!elements) return false;
  return std::all_of(elements->begin(), elements->end(), [](const Term& e) {
    const etf::Tuple* tu = e.as_tuple();
    return tu != nullptr && tu->elements.size() == 2 && tu->elements[0].as_atom() != nullptr;
  });
}

// lists:keysearch(Key, 1, List): the first tuple whose first element is the atom Key.
const etf::Tuple* keysearch(const TermList& list, std::string_view key) {
  for (const Term& e : list) {
    const etf::Tuple* tu = e.as_tuple();
    if (tu != nullptr && !tu->elements.empty() && tu->elements[0].is_atom(key)) return tu;
  }
  return nullptr;
}

// Exactly one term, else `reason`.
Result<const Term*> one_term(std::span<const Term> terms, std::string_view source, std::string_view reason) {
  if (terms.size() != 1) {
    return fail(source, reason, fmt::format("{} terms where the file must hold exactly one", terms.size()));
  }
  return &terms[0];
}

template <typename T, typename Parse>
Result<T> read_one(const std::string& path, Parse parse) {
  auto terms = etf::consult_file(path);
  if (!terms) return tl::unexpected<Status>(terms.error());
  return parse(std::span<const Term>(*terms), path);
}

}  // namespace

// --- .app ----------------------------------------------------------------------------

Result<AppSpec> parse_app(const Term& term, std::string_view source) {
  const etf::Tuple* top = term.as_tuple();
  if (top == nullptr || top->elements.size() != 3 || !top->elements[0].is_atom("application") ||
      top->elements[1].as_atom() == nullptr) {
    return fail(source, "badly_formatted_application",
                fmt::format("not {{application, Name, [{{Key, Value}}]}}: {}", show(term)));
  }
  auto dict = top->elements[2].list_elements();
  if (!dict)
    return fail(source, "badly_formatted_application", "the application's key-value list is not a list");
  AppSpec app;
  app.name = top->elements[1].as_atom()->name;
  app.term = term;

  // check_item/2: a value of the wrong type is bad_param; a key whose tuple is not a pair
  // counts as missing (systools says missing_param for both).
  auto value = [&](std::string_view key) -> const Term* {
    const etf::Tuple* tu = keysearch(*dict, key);
    if (tu == nullptr) return nullptr;
    if (tu->elements.size() != 2) return nullptr;
    return &tu->elements[1];
  };
  auto bad = [&](std::string_view key, const Term& v) {
    return fail(source, "bad_param", fmt::format("application {}: bad {}: {}", app.name, key, show(v)));
  };
  auto present = [&](std::string_view key) { return keysearch(*dict, key) != nullptr; };
  auto bad_shape = [&](std::string_view key) {
    return fail(source, "missing_param",
                fmt::format("application {}: {} is not a {{{}, Value}} pair", app.name, key, key));
  };
  for (std::string_view key : {"vsn", "id", "description"}) {
    const Term* v = value(key);
    if (v == nullptr) {
      if (present(key)) return bad_shape(key);
      if (key != "id") app.missing.emplace_back(key);
      continue;
    }
    auto s = string_p(*v);
    if (!s) return bad(key, *v);
    (key == "vsn" ? app.vsn : key == "id" ? app.id : app.description) = std::move(*s);
  }
  struct AtomList {
    std::string_view key;
    std::vector<std::string>* out;
    bool required;
  };
  for (const AtomList& a :
       {AtomList{"modules", &app.modules, true}, AtomList{"registered", &app.registered, true},
        AtomList{"applications", &app.applications, true},
        AtomList{"included_applications", &app.included_applications, false},
        AtomList{"optional_applications", &app.optional_applications, false}}) {
    const Term* v = value(a.key);
    if (v == nullptr) {
      if (present(a.key)) return bad_shape(a.key);
      if (a.required) app.missing.emplace_back(a.key);
      continue;
    }
    auto atoms = a_list_p(*v);
    if (!atoms) return bad(a.key, *v);
    *a.out = std::move(*atoms);
  }
  if (const Term* v = value("mod")) {
    const etf::Tuple* tu = v->as_tuple();
    if (tu != nullptr && tu->elements.size() == 2 && tu->elements[0].as_atom() != nullptr) {
      app.mod = *v;
    } else if (!v->is_nil()) {
      return bad("mod", *v);
    }
  } else if (present("mod")) {
    return bad_shape("mod");
  }
  if (const Term* v = value("start_phases")) {
    if (!v->is_atom("undefined")) {
      if (!t_list_p(*v)) return bad("start_phases", *v);
      app.start_phases = *v;
    }
  } else if (present("start_phases")) {
    return bad_shape("start_phases");
  }
  if (const Term* v = value("env")) {
    if (!t_list_p(*v)) return bad("env", *v);
    app.env = *v;
  } else if (present("env")) {
    return bad_shape("env");
  }
  for (std::string_view key : {"maxT", "maxP"}) {
    auto& out = key == "maxT" ? app.max_t : app.max_p;
    if (const Term* v = value(key)) {
      if (const std::int64_t* i = v->as_int(); i != nullptr && *i > 0) {
        out = *i;
      } else if (!v->is_atom("infinity")) {
        return bad(key, *v);
      }
    } else if (present(key)) {
      return bad_shape(key);
    }
  }
  return app;
}

Result<AppSpec> read_app_file(const std::string& path) {
  return read_one<AppSpec>(path, [](std::span<const Term> terms, std::string_view source) -> Result<AppSpec> {
    auto one = one_term(terms, source, "badly_formatted_application");
    if (!one) return tl::unexpected<Status>(one.error());
    return parse_app(**one, source);
  });
}

bool AppCheck::ok() const {
  return std::none_of(issues.begin(), issues.end(),
                      [](const AppIssue& i) { return i.severity == AppIssue::Severity::kError; });
}

AppCheck check_app_modules(const AppSpec& app, std::span<const std::string> beams, std::string_view source,
                           std::string_view file_stem) {
  AppCheck out;
  using S = AppIssue::Severity;
  if (!file_stem.empty() && file_stem != app.name) {
    out.issues.push_back(
        {S::kError, "bad_application_name", "",
         fmt::format("{}: the file {}.app defines application {}", source, file_stem, app.name)});
  }
  std::set<std::string> have(beams.begin(), beams.end());
  std::map<std::string, int> listed;
  for (const auto& m : app.modules) ++listed[m];
  for (const auto& [m, n] : listed) {
    if (n > 1) {
      out.issues.push_back(
          {S::kError, "duplicate_modules", m, fmt::format("{}: module {} is listed {} times", source, m, n)});
    }
  }
  for (const auto& [m, n] : listed) {
    if (have.count(m) == 0) {
      out.issues.push_back({S::kError, "module_not_found", m,
                            fmt::format("{}: module {} is listed but {}.beam is missing", source, m, m)});
    }
  }
  for (const auto& m : have) {
    if (listed.count(m) == 0) {
      out.issues.push_back(
          {S::kWarning, "module_not_listed", m,
           fmt::format("{}: {}.beam is in ebin but application {} does not list it", source, m, app.name)});
    }
  }
  return out;
}

Result<AppCheck> check_app_dir(const AppSpec& app, const std::string& ebin_dir, std::string_view source,
                               std::string_view file_stem) {
  namespace fs = std::filesystem;
  std::vector<std::string> beams;
  std::error_code ec;
  fs::directory_iterator it(ebin_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code ec2;
    if (p.extension() == ".beam" && it->is_regular_file(ec2)) beams.push_back(p.stem().string());
  }
  if (ec) {
    Code code = ec == std::errc::no_such_file_or_directory ? Code::kNotFound
                : ec == std::errc::permission_denied       ? Code::kPermissionDenied
                                                           : Code::kIOError;
    return error(code, fmt::format("{}: cannot list: {}", ebin_dir, ec.message()));
  }
  std::sort(beams.begin(), beams.end());
  return check_app_modules(app, beams, source, file_stem);
}

// --- .rel ----------------------------------------------------------------------------

Result<RelSpec> parse_rel(std::span<const Term> terms, std::string_view source) {
  auto one = one_term(terms, source, "bad_rel_file");
  if (!one) return tl::unexpected<Status>(one.error());
  const Term& term = **one;
  RelSpec rel;
  rel.term = term;
  // release_handler:check_rel_data/4's shape, systools_make:check_rel1/1's types.
  const etf::Tuple* top = term.as_tuple();
  const etf::Tuple* nv = nullptr;
  const etf::Tuple* erts = nullptr;
  if (top != nullptr && top->elements.size() == 4 && top->elements[0].is_atom("release")) {
    nv = top->elements[1].as_tuple();
    erts = top->elements[2].as_tuple();
  }
  auto apps = top != nullptr && top->elements.size() == 4 ? top->elements[3].list_elements()
                                                          : Result<TermList>(TermList());
  if (nv == nullptr || nv->elements.size() != 2 || erts == nullptr || erts->elements.size() != 2 ||
      !erts->elements[0].is_atom("erts") || !apps) {
    return fail(source, "bad_rel_data",
                fmt::format("not {{release, {{Name, Vsn}}, {{erts, EVsn}}, [Application]}}: {}", show(term)));
  }
  auto name = string_p(nv->elements[0]);
  if (!name)
    return fail(source, "illegal_name",
                fmt::format("release name is not a string: {}", show(nv->elements[0])));
  auto vsn = string_p(nv->elements[1]);
  if (!vsn)
    return fail(source, "illegal_form",
                fmt::format("release vsn is not a string: {}", show(nv->elements[1])));
  auto evsn = string_p(erts->elements[1]);
  if (!evsn)
    return fail(source, "illegal_form", fmt::format("erts vsn is not a string: {}", show(erts->elements[1])));
  rel.name = std::move(*name);
  rel.vsn = std::move(*vsn);
  rel.erts_vsn = std::move(*evsn);

  static constexpr std::string_view kTypes[] = {"permanent", "transient", "temporary", "load", "none"};
  auto is_type = [](const Term& t) {
    const etf::Atom* a = t.as_atom();
    return a != nullptr && std::find(std::begin(kTypes), std::end(kTypes), a->name) != std::end(kTypes);
  };
  std::set<std::string> seen;
  for (const Term& e : *apps) {
    const etf::Tuple* tu = e.as_tuple();
    auto illegal = [&] {
      return fail(source, "illegal_applications",
                  fmt::format("release {}: bad application entry {}", rel.name, show(e)));
    };
    if (tu == nullptr || tu->elements.size() < 2 || tu->elements.size() > 4 ||
        tu->elements[0].as_atom() == nullptr) {
      return illegal();
    }
    RelApp app;
    app.name = tu->elements[0].as_atom()->name;
    auto v = string_p(tu->elements[1]);
    if (!v) return illegal();
    app.vsn = std::move(*v);
    auto incl = [&](const Term& t) -> bool {
      auto atoms = a_list_p(t);
      if (!atoms) return false;
      app.included_applications = std::move(*atoms);
      return true;
    };
    if (tu->elements.size() == 3) {
      // {App, Vsn, Type} or {App, Vsn, IncApps}; [] is a list (systools tests is_list first).
      const Term& x = tu->elements[2];
      if (x.as_atom() != nullptr) {
        if (!is_type(x)) return illegal();
        app.type = x.as_atom()->name;
      } else if (!incl(x)) {
        return illegal();
      }
    } else if (tu->elements.size() == 4) {
      if (!is_type(tu->elements[2]) || !incl(tu->elements[3])) return illegal();
      app.type = tu->elements[2].as_atom()->name;
    }
    if (!seen.insert(app.name).second) {
      return fail(source, "illegal_applications",
                  fmt::format("release {}: application {} is listed twice", rel.name, app.name));
    }
    rel.applications.push_back(std::move(app));
  }
  // mandatory_applications/4: the first kernel and stdlib entries must be permanent.
  for (std::string_view mandatory : {"kernel", "stdlib"}) {
    auto it = std::find_if(rel.applications.begin(), rel.applications.end(),
                           [&](const RelApp& a) { return a.name == mandatory; });
    if (it == rel.applications.end()) {
      return fail(source, "missing_mandatory_app", fmt::format("release {} lacks {}", rel.name, mandatory));
    }
    if (it->type != "permanent") {
      return fail(source, "mandatory_app",
                  fmt::format("release {}: {} must be permanent, not {}", rel.name, mandatory, it->type));
    }
  }
  rel.has_sasl = seen.count("sasl") != 0;
  return rel;
}

Result<RelSpec> read_rel_file(const std::string& path) {
  auto terms = etf::consult_file(path);
  if (!terms) {
    // release_handler answers bad_rel_file for a file that does not parse.
    if (terms.error().code() == Code::kCorruption) return error(terms.error().with_reason("bad_rel_file"));
    return tl::unexpected<Status>(terms.error());
  }
  return parse_rel(*terms, path);
}

// --- start.boot ------------------------------------------------------------------------

Result<BootScript> parse_boot(std::span<const std::uint8_t> bytes, std::string_view source) {
  auto term = etf::decode(bytes);
  if (!term) return error(term.error().with_context(source));
  auto bad = [&](std::string_view what) { return fail(source, "bad_script", what); };
  const etf::Tuple* top = term->as_tuple();
  const etf::Tuple* nv = nullptr;
  if (top != nullptr && top->elements.size() == 3 && top->elements[0].is_atom("script")) {
    nv = top->elements[1].as_tuple();
  }
  auto instructions = nv != nullptr ? top->elements[2].list_elements() : Result<TermList>(TermList());
  if (nv == nullptr || nv->elements.size() != 2 || !instructions) {
    return bad(fmt::format("not {{script, {{Name, Vsn}}, [Instruction]}}: {}", show(*term)));
  }
  BootScript boot;
  auto name = string_p(nv->elements[0]);
  auto vsn = string_p(nv->elements[1]);
  if (!name || !vsn)
    return bad(fmt::format("the script's name and version are not strings: {}", show(top->elements[1])));
  boot.name = std::move(*name);
  boot.vsn = std::move(*vsn);
  // {application, App, _} as application:load/1 and application_controller:start/1 take it.
  // The application's name, copied: list_elements() gives the list's elements by value, so a
  // pointer into them would not outlive this call.
  auto app_of = [](const Term& args) -> std::optional<std::string> {
    auto list = args.list_elements();
    if (!list || list->size() != 1) return std::nullopt;
    const etf::Tuple* a = (*list)[0].as_tuple();
    if (a == nullptr || a->elements.size() != 3 || !a->elements[0].is_atom("application"))
      return std::nullopt;
    const etf::Atom* app = a->elements[1].as_atom();
    if (app == nullptr) return std::nullopt;
    return app->name;
  };
  for (const Term& ins : *instructions) {
    const etf::Tuple* tu = ins.as_tuple();
    if (tu == nullptr || tu->elements.empty() || tu->elements[0].as_atom() == nullptr) {
      return bad(fmt::format("an instruction that is not a tagged tuple: {}", show(ins)));
    }
    const std::string& tag = tu->elements[0].as_atom()->name;
    if (tag == "path") {
      auto dirs = tu->elements.size() == 2 ? tu->elements[1].list_elements() : Result<TermList>();
      if (tu->elements.size() != 2 || !dirs) return bad(fmt::format("bad path instruction: {}", show(ins)));
      std::vector<std::string> out;
      for (const Term& d : *dirs) {
        auto s = string_p(d);
        if (!s) return bad(fmt::format("a path that is not a string: {}", show(d)));
        out.push_back(std::move(*s));
      }
      boot.paths.push_back(std::move(out));
    } else if (tag == "primLoad") {
      auto mods = tu->elements.size() == 2 ? a_list_p(tu->elements[1]) : std::nullopt;
      if (!mods) return bad(fmt::format("bad primLoad instruction: {}", show(ins)));
      boot.prim_loads.push_back(std::move(*mods));
    } else if (tag == "kernelProcess" && tu->elements.size() == 3 &&
               tu->elements[1].is_atom("application_controller")) {
      const etf::Tuple* mfa = tu->elements[2].as_tuple();
      if (mfa != nullptr && mfa->elements.size() == 3 && mfa->elements[0].is_atom("application_controller") &&
          mfa->elements[1].is_atom("start")) {
        if (auto app = app_of(mfa->elements[2])) boot.applications.push_back(std::move(*app));
      }
    } else if (tag == "apply" && tu->elements.size() == 2) {
      const etf::Tuple* mfa = tu->elements[1].as_tuple();
      if (mfa != nullptr && mfa->elements.size() == 3 && mfa->elements[0].is_atom("application") &&
          mfa->elements[1].is_atom("load")) {
        if (auto app = app_of(mfa->elements[2])) boot.applications.push_back(std::move(*app));
      }
    }
  }
  boot.instructions = std::move(*instructions);
  return boot;
}

Result<BootScript> read_boot_file(const std::string& path) {
  auto bytes = base::read_file(path, kMaxBootBytes);
  if (!bytes) return error(bytes.error().status(path));
  return parse_boot(*bytes, path);
}

// --- .appup ----------------------------------------------------------------------------

Result<Appup> parse_appup(std::span<const Term> terms, std::string_view source) {
  auto one = one_term(terms, source, "bad_appup");
  if (!one) return tl::unexpected<Status>(one.error());
  const Term& term = **one;
  auto bad = [&](std::string_view what) { return fail(source, "bad_appup", what); };
  const etf::Tuple* top = term.as_tuple();
  if (top == nullptr || top->elements.size() != 3) {
    return bad(fmt::format("not {{Vsn, [{{UpFromVsn, Instructions}}], [{{DownToVsn, Instructions}}]}}: {}",
                           show(term)));
  }
  Appup appup;
  appup.term = term;
  auto vsn = string_p(top->elements[0]);
  if (!vsn) return bad(fmt::format("the version is not a string: {}", show(top->elements[0])));
  appup.vsn = std::move(*vsn);
  for (int k = 1; k <= 2; ++k) {
    auto steps = top->elements[static_cast<std::size_t>(k)].list_elements();
    if (!steps) return bad(fmt::format("the {} list is not a list", k == 1 ? "upgrade" : "downgrade"));
    for (const Term& s : *steps) {
      const etf::Tuple* tu = s.as_tuple();
      if (tu == nullptr || tu->elements.size() != 2)
        return bad(fmt::format("not {{Vsn, [Instruction]}}: {}", show(s)));
      auto instructions = tu->elements[1].list_elements();
      if (!instructions) return bad(fmt::format("not {{Vsn, [Instruction]}}: {}", show(s)));
      AppupStep step;
      if (const etf::Binary* b = tu->elements[0].as_binary(); b != nullptr && b->bits == 8) {
        step.version.assign(b->bytes.begin(), b->bytes.end());
        step.is_regexp = true;
      } else if (auto v = string_p(tu->elements[0])) {
        step.version = std::move(*v);
      } else {
        return bad(fmt::format("a version that is neither a string nor a regular expression: {}",
                               show(tu->elements[0])));
      }
      step.instructions = std::move(*instructions);
      (k == 1 ? appup.up : appup.down).push_back(std::move(step));
    }
  }
  return appup;
}

Result<Appup> read_appup_file(const std::string& path) {
  return read_one<Appup>(
      path, [](std::span<const Term> terms, std::string_view source) { return parse_appup(terms, source); });
}

}  // namespace codestore::otp
