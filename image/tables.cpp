// beam_lib's decoded views: atoms, exports, imports, locals, attributes, compile info,
// vsn, debug info and abstract code (beam_lib.erl # chunks_to_data/7, symbols/4).
#include <algorithm>
#include <iterator>
#include <tuple>

#include "etf/term_internal.h"
#include "image/byte_reader.h"
#include "image/image_internal.h"

namespace codestore::image {

using etf::Term;
using etf::TermList;
using internal::ByteReader;
using internal::make_error;

namespace {

bool strict(const Image::Rep& rep) {
  return rep.strictness == Strictness::kStrict;
}

// One entry of ExpT / ImpT / LocT, still as atom indexes.
struct Triple {
  std::uint32_t a, b, c;
};

// symbols/4: lenient reads <<_Count:32, {I1:32, I2:32, I3:32}*>> with nothing left over and
// ignores the count; strict reads exactly the count (parse_import_chunk,
// parse_export_table). invalid_chunk names the chunk beam_lib names.
Result<std::vector<Triple>> read_triples(const Image::Rep& rep, const Chunk& c) {
  Bytes d = rep.data(c);
  ByteReader r(d, c.offset);
  const std::string id(c.id_view());
  auto bad = [&](std::uint64_t at, const std::string& m) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, id, at, m));
  };
  std::int32_t count = 0;
  if (!r.i32(count)) return bad(c.offset, "table shorter than its 4-byte count");
  std::size_t n = 0;
  if (strict(rep)) {
    if (count < 0 || count >= (1 << 30) / 12)
      return bad(c.offset, "entry count " + std::to_string(count) + " out of range");
    n = static_cast<std::size_t>(count);
    if (n > r.remaining() / 12)
      return bad(c.offset, "count " + std::to_string(n) + " runs past the end of the chunk");
  } else {
    if (r.remaining() % 12 != 0) {
      return bad(c.offset + 4 + r.remaining() / 12 * 12, "table length is not 4 + 12 * entries");
    }
    n = r.remaining() / 12;
  }
  std::vector<Triple> out(n);
  for (Triple& t : out) (void)(r.u32(t.a) && r.u32(t.b) && r.u32(t.c));
  return out;
}

// The atom table a view resolves names through (ensure_atoms/2's choice), decoded once per
// image (internal::atoms_of); `holder` keeps it alive.
Result<const internal::AtomTable*> atoms_for(const Image::Rep& rep, const internal::Selection& s,
                                             std::string_view for_id, internal::AtomsRef& holder) {
  if (!s.atom_chunk) {
    return tl::unexpected(make_error(ErrorKind::kMissingChunk, rep.file, strict(rep) ? "AtU8" : "Atom",
                                     rep.buf.size(), "no atom chunk"));
  }
  internal::atoms_of(rep, *s.atom_chunk, strict(rep), holder);
  const auto& t = holder.get();
  if (!t) {
    const Status& e = t.error();
    if (kind_of(e) == ErrorKind::kInvalidChunk && !strict(rep)) {
      // beam_lib decodes the atoms inside the catch of the requested chunk.
      return error(internal::make_error(ErrorKind::kInvalidChunk, rep.file, for_id, e.where()->offset,
                                        "atom table " + internal::chunk_id_text(s.atom_chunk->id_view()) +
                                            ": " + std::string(error_detail(e))));
    }
    return error(e);
  }
  return &*t;
}

Result<std::string> atom_name(const Image::Rep& rep, const internal::AtomTable& t, std::uint32_t index,
                              const Chunk& c, std::size_t entry) {
  if (index == 0 || index > t.size()) {
    return tl::unexpected(
        make_error(ErrorKind::kInvalidChunk, rep.file, c.id_view(), c.offset + 4 + 12 * entry,
                   "entry " + std::to_string(entry + 1) + ": atom index " + std::to_string(index) +
                       " out of range 1.." + std::to_string(t.size())));
  }
  return t.name(index);
}

struct Symbols {
  const Chunk* chunk = nullptr;
  std::vector<Triple> triples;
  internal::AtomsRef holder;
  const internal::AtomTable* atoms = nullptr;  // in holder (not movable: filled in place)
};

Result<void> symbols(const Image::Rep& rep, std::string_view id, Symbols& out) {
  auto s = internal::select_required(rep, {id});
  if (!s) return tl::unexpected(s.error());
  const Chunk* c = s->get(id);
  auto triples = read_triples(rep, *c);
  if (!triples) return tl::unexpected(triples.error());
  auto atoms = atoms_for(rep, *s, id, out.holder);
  if (!atoms) return tl::unexpected(atoms.error());
  out.chunk = c;
  out.triples = std::move(*triples);
  out.atoms = *atoms;
  return {};
}

Result<std::vector<Function>> functions(const Image::Rep& rep, std::string_view id) {
  Symbols sym_;
  auto* sym = &sym_;
  if (auto ok = symbols(rep, id, sym_); !ok) return tl::unexpected(ok.error());
  std::vector<Function> out;
  out.reserve(sym->triples.size());
  for (std::size_t i = 0; i < sym->triples.size(); ++i) {
    const Triple& t = sym->triples[i];
    auto name = atom_name(rep, *sym->atoms, t.a, *sym->chunk, i);
    if (!name) return tl::unexpected(name.error());
    out.push_back(Function{std::move(*name), t.b, t.c});
  }
  std::sort(out.begin(), out.end(), [](const Function& x, const Function& y) {
    return std::tie(x.name, x.arity, x.label) < std::tie(y.name, y.arity, y.label);
  });
  return out;
}

Term int_term(std::uint64_t v) {
  return Term::integer(static_cast<std::int64_t>(v));
}

Term functions_term(const std::vector<Function>& fs, bool labeled) {
  TermList l;
  l.reserve(fs.size());
  for (const Function& f : fs) {
    if (labeled) {
      l.push_back(Term::tuple({Term::atom(f.name), int_term(f.arity), int_term(f.label)}));
    } else {
      l.push_back(Term::tuple({Term::atom(f.name), int_term(f.arity)}));
    }
  }
  return Term::list(std::move(l));
}

// attributes/1: keysort by key (stable), then runs of equal keys merged by appending
// their value lists. A term of another shape makes beam_lib fail (invalid_chunk).
// A proper list's elements moved out of `t` (which the caller owns and drops); a list of
// another shape (hand-built chained tails) is copied through list_elements().
Result<TermList> take_elements(Term& t) {
  if (t.is_nil()) return TermList{};
  if (const etf::List* l = t.as_list(); l && l->tail == nullptr) {
    // `t` is no const object (the decoded term the caller owns): its elements may move.
    return std::move(const_cast<etf::List*>(l)->elements);
  }
  return t.list_elements();
}

Result<Term> merge_attributes(const Image::Rep& rep, const Chunk& c, Term raw) {
  auto bad = [&](const std::string& m) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, c.id_view(), c.offset, m));
  };
  auto elems = take_elements(raw);
  if (!elems) return bad("attributes are not a proper list");
  std::vector<std::pair<Term, TermList>> items;
  items.reserve(elems->size());
  for (Term& e : *elems) {
    const etf::Tuple* ct = e.as_tuple();
    if (!ct || ct->elements.size() != 2) return bad("an attribute is not a {Key, Values} tuple");
    auto* t = const_cast<etf::Tuple*>(ct);  // owned by `elems`, not const
    auto vals = take_elements(t->elements[1]);
    if (!vals) return bad("attribute values are not a proper list");
    items.emplace_back(std::move(t->elements[0]), std::move(*vals));
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& x, const auto& y) { return etf::internal::compare(x.first, y.first) < 0; });
  TermList out;
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size();) {
    std::size_t j = i + 1;
    while (j < items.size() && etf::internal::compare(items[j].first, items[i].first) == 0) ++j;
    TermList vals = std::move(items[i].second);
    for (std::size_t k = i + 1; k < j; ++k) {
      vals.insert(vals.end(), std::make_move_iterator(items[k].second.begin()),
                  std::make_move_iterator(items[k].second.end()));
    }
    TermList pair;
    pair.reserve(2);
    pair.push_back(std::move(items[i].first));
    pair.push_back(Term::list(std::move(vals)));
    out.push_back(Term::tuple(std::move(pair)));
    i = j;
  }
  return Term::list(std::move(out));
}

}  // namespace

Result<std::string> Image::module() const {
  return rep_->module;
}

Result<std::vector<std::string>> Image::atoms() const {
  auto s = internal::select(*rep_, {"Atom", "AtU8"});
  if (!s) return tl::unexpected(s.error());
  internal::AtomsRef holder;
  auto t = atoms_for(*rep_, *s, s->atom_chunk ? s->atom_chunk->id_view() : "AtU8", holder);
  if (!t) return tl::unexpected(t.error());
  std::vector<std::string> out;
  out.reserve((*t)->size());
  for (std::size_t i = 1; i <= (*t)->size(); ++i) out.push_back((*t)->name(i));
  return out;
}

Result<std::vector<Function>> Image::exports() const {
  return functions(*rep_, "ExpT");
}
Result<std::vector<Function>> Image::locals() const {
  return functions(*rep_, "LocT");
}

Result<std::vector<Import>> Image::imports() const {
  Symbols sym_;
  auto* sym = &sym_;
  if (auto ok = symbols(*rep_, "ImpT", sym_); !ok) return tl::unexpected(ok.error());
  std::vector<Import> out;
  out.reserve(sym->triples.size());
  for (std::size_t i = 0; i < sym->triples.size(); ++i) {
    const Triple& t = sym->triples[i];
    auto m = atom_name(*rep_, *sym->atoms, t.a, *sym->chunk, i);
    if (!m) return tl::unexpected(m.error());
    auto f = atom_name(*rep_, *sym->atoms, t.b, *sym->chunk, i);
    if (!f) return tl::unexpected(f.error());
    out.push_back(Import{std::move(*m), std::move(*f), t.c, static_cast<std::uint32_t>(i + 1)});
  }
  std::sort(out.begin(), out.end(), [](const Import& x, const Import& y) {
    return std::tie(x.module, x.function, x.arity, x.index) <
           std::tie(y.module, y.function, y.arity, y.index);
  });
  return out;
}

Result<Term> Image::attributes() const {
  auto s = internal::select_required(*rep_, {"Attr"});
  if (!s) return tl::unexpected(s.error());
  const Chunk* c = s->get("Attr");
  auto raw = internal::binary_to_term(*rep_, *c);
  if (!raw) return tl::unexpected(raw.error());
  return merge_attributes(*rep_, *c, std::move(*raw));
}

Result<Term> Image::compile_info() const {
  auto s = internal::select_required(*rep_, {"CInf"});
  if (!s) return tl::unexpected(s.error());
  return internal::binary_to_term(*rep_, *s->get("CInf"));
}

Result<Term> Image::vsn() const {
  auto attrs = attributes();
  if (!attrs) return attrs;
  auto elems = attrs->list_elements();
  for (const Term& a : *elems) {
    const etf::Tuple* t = a.as_tuple();
    if (t->elements[0].is_atom("vsn")) return t->elements[1];
  }
  // beam_lib:version/1 crashes on a badmatch here.
  const Chunk* c = find("Attr");
  return tl::unexpected(
      make_error(ErrorKind::kInvalidChunk, rep_->file, "Attr", c ? c->offset : 0, "no vsn attribute"));
}

namespace {

// chunk_to_data(debug_info, ...): <<>> is no_debug_info; <<0, N, Mode:N, _>> is encrypted
// (we hold no key: beam_lib would answer key_missing_or_invalid); else binary_to_term.
Result<Term> debug_info(const Image::Rep& rep, const Chunk* c) {
  if (!c || rep.data(*c).empty()) return Term::atom("no_debug_info");
  Bytes d = rep.data(*c);
  if (d[0] == 0) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, c->id_view(), c->offset,
                                     "encrypted debug info (key_missing_or_invalid: no key)"));
  }
  return internal::binary_to_term(rep, *c);
}

Result<Term> abstract_code(const Image::Rep& rep) {
  auto s = internal::select(rep, {"Abst", "Dbgi"});
  if (!s) return tl::unexpected(s.error());
  // Dbgi first: {debug_info_v1, erl_abstract_code, {Forms, _Opts}} gives the forms (the
  // backend's debug_info/4); other backends and {none, _} give no_abstract_code. A Dbgi
  // chunk that does not decode falls back to Abst, as beam_lib's catch does.
  if (const Chunk* dbgi = s->get("Dbgi"); dbgi && !rep.data(*dbgi).empty()) {
    auto t = debug_info(rep, dbgi);
    if (t) {
      const etf::Tuple* tup = t->as_tuple();
      if (tup && tup->elements.size() == 3 && tup->elements[0].is_atom("debug_info_v1")) {
        const etf::Tuple* data = tup->elements[2].as_tuple();
        if (tup->elements[1].is_atom("erl_abstract_code") && data && data->elements.size() == 2 &&
            !data->elements[0].is_atom("none")) {
          return Term::tuple({Term::atom("raw_abstract_v1"), data->elements[0]});
        }
        return Term::atom("no_abstract_code");
      }
    }
  }
  const Chunk* abst = s->get("Abst");
  if (!abst || rep.data(*abst).empty()) return Term::atom("no_abstract_code");
  if (rep.data(*abst)[0] == 0) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, "Abst", abst->offset,
                                     "encrypted abstract code (key_missing_or_invalid: no key)"));
  }
  auto t = internal::binary_to_term(rep, *abst);
  if (!t) return t;
  const etf::Tuple* tup = t->as_tuple();
  if (!tup || tup->elements.size() != 2 || !tup->elements[0].as_atom()) {
    return tl::unexpected(
        make_error(ErrorKind::kInvalidChunk, rep.file, "Abst", abst->offset, "not {Tag, Forms}"));
  }
  return t;
}

}  // namespace

Result<Term> Image::chunk_term(std::string_view name) const {
  const Rep& rep = *rep_;
  if (name == "atoms") {
    auto a = atoms();
    if (!a) return tl::unexpected(a.error());
    TermList l;
    l.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i)
      l.push_back(Term::tuple({int_term(i + 1), Term::atom((*a)[i])}));
    return Term::list(std::move(l));
  }
  if (name == "exports" || name == "labeled_exports") {
    auto f = exports();
    if (!f) return tl::unexpected(f.error());
    return functions_term(*f, name == "labeled_exports");
  }
  if (name == "locals" || name == "labeled_locals") {
    auto f = locals();
    if (!f) return tl::unexpected(f.error());
    return functions_term(*f, name == "labeled_locals");
  }
  if (name == "imports" || name == "indexed_imports") {
    auto im = imports();
    if (!im) return tl::unexpected(im.error());
    if (name == "indexed_imports") {
      std::sort(im->begin(), im->end(), [](const Import& x, const Import& y) { return x.index < y.index; });
    }
    TermList l;
    l.reserve(im->size());
    for (const Import& i : *im) {
      TermList e;
      if (name == "indexed_imports") e.push_back(int_term(i.index));
      e.push_back(Term::atom(i.module));
      e.push_back(Term::atom(i.function));
      e.push_back(int_term(i.arity));
      l.push_back(Term::tuple(std::move(e)));
    }
    return Term::list(std::move(l));
  }
  if (name == "attributes") return attributes();
  if (name == "compile_info") return compile_info();
  if (name == "debug_info") {
    auto s = internal::select_required(rep, {"Dbgi"});
    if (!s) return tl::unexpected(s.error());
    return debug_info(rep, s->get("Dbgi"));
  }
  if (name == "abstract_code") return abstract_code(rep);
  return error(internal::image_error(ErrorKind::kUnknownChunk, rep.file, std::string(name), 0,
                                     "unknown chunk name " + std::string(name)));
}

}  // namespace codestore::image
