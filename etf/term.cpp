// The Term value type: construction, copying and freeing without deep native recursion,
// list helpers, =:=.
//
// Every walk over a term (decode, encode, compare, copy) uses an explicit stack, so a depth
// bomb costs heap, never native stack.
#include <vector>

#include "etf/term_internal.h"

namespace codestore::etf {

using namespace internal;  // NOLINT: the tags

// ---------------------------------------------------------------------------------------
// Term

Term Term::list(TermList elements) {
  if (elements.empty()) return Term(Nil{});
  return Term(List{std::move(elements), nullptr});
}

Term Term::binary(std::span<const std::uint8_t> bytes) {
  return Term(Binary{std::vector<std::uint8_t>(bytes.begin(), bytes.end()), 8});
}

Term Term::string(std::string_view bytes) {
  TermList elements;
  elements.reserve(bytes.size());
  for (unsigned char c : bytes) elements.emplace_back(static_cast<std::int64_t>(c));
  return list(std::move(elements));
}

Term::Term(const Term& other) : value_(Nil{}) {
  // Containers are created with their final sizes first, so the element addresses pushed
  // on the work stack stay valid while it is drained.
  std::vector<std::pair<Term*, const Term*>> work{{this, &other}};
  while (!work.empty()) {
    auto [dst, src] = work.back();
    work.pop_back();
    if (const auto* t = std::get_if<Tuple>(&src->value_)) {
      dst->value_ = Tuple{TermList(t->elements.size())};
      auto& out = std::get<Tuple>(dst->value_).elements;
      for (std::size_t i = 0; i < out.size(); ++i) work.emplace_back(&out[i], &t->elements[i]);
    } else if (const auto* l = std::get_if<List>(&src->value_)) {
      dst->value_ = List{TermList(l->elements.size()), l->tail};  // the tail is shared
      auto& out = std::get<List>(dst->value_).elements;
      for (std::size_t i = 0; i < out.size(); ++i) work.emplace_back(&out[i], &l->elements[i]);
    } else if (const auto* m = std::get_if<Map>(&src->value_)) {
      dst->value_ = Map{std::vector<std::pair<Term, Term>>(m->pairs.size())};
      auto& out = std::get<Map>(dst->value_).pairs;
      for (std::size_t i = 0; i < out.size(); ++i) {
        work.emplace_back(&out[i].first, &m->pairs[i].first);
        work.emplace_back(&out[i].second, &m->pairs[i].second);
      }
    } else {
      dst->value_ = src->value_;
    }
  }
}

namespace {

// The destructor's work list while a deep Term is being taken apart on this thread: a
// nested Term destructor (a uniquely owned list tail, an element) hands its children over
// to it instead of recursing, so freeing recurses at most kRecursionLimit + 1 levels.
thread_local std::vector<Term>* tl_dismantling = nullptr;
thread_local int tl_recursion = 0;
constexpr int kRecursionLimit = 64;

bool has_children(const Term::Value& v) {
  if (const auto* t = std::get_if<Tuple>(&v)) return !t->elements.empty();
  if (const auto* l = std::get_if<List>(&v)) return !l->elements.empty() || l->tail != nullptr;
  if (const auto* m = std::get_if<Map>(&v)) return !m->pairs.empty();
  return false;
}

}  // namespace

void Term::detach_children(std::vector<Term>& work) {
  auto take = [&](TermList& elements) {
    for (Term& e : elements) {
      if (has_children(e.value_)) work.push_back(std::move(e));
    }
    elements.clear();
  };
  if (auto* t = std::get_if<Tuple>(&value_)) {
    take(t->elements);
  } else if (auto* l = std::get_if<List>(&value_)) {
    take(l->elements);
    l->tail.reset();  // the last owner's ~Term runs here and hands its children to `work`
  } else if (auto* m = std::get_if<Map>(&value_)) {
    for (auto& [k, v] : m->pairs) {
      if (has_children(k.value_)) work.push_back(std::move(k));
      if (has_children(v.value_)) work.push_back(std::move(v));
    }
    m->pairs.clear();
  }
}

Term::~Term() {
  if (!has_children(value_)) return;
  if (tl_dismantling != nullptr) {  // an outer destructor on this thread finishes the job
    detach_children(*tl_dismantling);
    return;
  }
  // Shallow terms (nearly all) are freed by plain recursion, which is faster; past
  // kRecursionLimit levels the rest of the subtree is taken apart with a work list.
  if (tl_recursion < kRecursionLimit) {
    ++tl_recursion;
    value_.emplace<Nil>();  // destroys the children here, one level deeper
    --tl_recursion;
    return;
  }
  std::vector<Term> work;
  tl_dismantling = &work;
  detach_children(work);
  while (!work.empty()) {
    Term t = std::move(work.back());
    work.pop_back();
    t.detach_children(work);
  }
  tl_dismantling = nullptr;
}

Term& Term::operator=(const Term& other) {
  if (this != &other) *this = Term(other);
  return *this;
}

bool Term::is_atom(std::string_view name) const {
  const Atom* a = as_atom();
  return a != nullptr && a->name == name;
}

Result<TermList> Term::list_elements() const {
  if (is_nil()) return TermList{};
  const List* l = as_list();
  if (l == nullptr) return error(Code::kInvalidArgument, "term: not a list");
  if (l->tail == nullptr) return l->elements;
  // A hand-built list may chain Lists in its tail; follow them.
  TermList out = l->elements;
  const Term* t = l->tail.get();
  while (t != nullptr) {
    if (t->is_nil()) return out;
    const List* next = t->as_list();
    if (next == nullptr) return error(Code::kInvalidArgument, "term: not a proper list");
    out.insert(out.end(), next->elements.begin(), next->elements.end());
    t = next->tail.get();
  }
  return out;
}

bool operator==(const Term& a, const Term& b) {
  return internal::compare(a, b) == 0;
}

}  // namespace codestore::etf
