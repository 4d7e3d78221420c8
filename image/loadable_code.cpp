// The VM loader's verdict (erlang:prepare_loading/2): beam_file.c # beamfile_read's table
// checks, then the generic instruction stream (beam_file.c # beamcodereader_next and
// beam_load.c # load_code) decoded against OTP 25's opcode table.
//
// What we do not replicate: the loader's transformation engine and its choice of a
// specific instruction for each generic one (an operand of a type no specific instruction
// takes is refused only by the VM), and checks on the Type chunk's entries beyond their size.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

#include "image/loadable_internal.h"

namespace codestore::image {

using internal::make_error;

namespace internal::verdict {

namespace {

// marshal_integer: a bignum must be normalized (no redundant leading sign bytes).
bool normalized_bignum(Bytes be) {
  std::vector<std::uint8_t> le(be.rbegin(), be.rend());
  const bool negative = (le.back() & 0x80) != 0;
  if (negative) {
    unsigned carry = 1;
    for (auto& b : le) {
      b = static_cast<std::uint8_t>(~b + carry);
      carry = (b == 0 && carry == 1);
    }
  }
  std::size_t size = le.size();
  if (le[size - 1] == 0) {
    --size;
    if (size == 0 || le[size - 1] == 0) return false;
  }
  return true;
}

// One generic instruction as the loader reads it: opcode, then its operands.
struct Op {
  std::uint8_t opcode = 0;
  std::uint64_t offset = 0;
};

constexpr std::uint8_t opcode_of(std::string_view name) {
  for (std::uint32_t i = 1; i <= kMaxGenericOpcode; ++i) {
    if (kGenericOps[i].name == name) return static_cast<std::uint8_t>(i);
  }
  return 0;
}

// Operands that index the import table (an external function or a BIF) or the fun table;
// the loader resolves them while emitting code.
struct IndexOperand {
  std::uint8_t opcode;
  std::uint8_t position;
  bool lambda;  // FunT instead of ImpT
};
constexpr IndexOperand kIndexOperands[] = {
    {opcode_of("call_ext"), 1, false},      {opcode_of("call_ext_last"), 1, false},
    {opcode_of("call_ext_only"), 1, false}, {opcode_of("bif0"), 0, false},
    {opcode_of("bif1"), 1, false},          {opcode_of("bif2"), 1, false},
    {opcode_of("gc_bif1"), 2, false},       {opcode_of("gc_bif2"), 2, false},
    {opcode_of("gc_bif3"), 2, false},       {opcode_of("make_fun2"), 0, true},
    {opcode_of("make_fun3"), 0, true},
};

// Operand kinds a generic instruction's operand must have whatever specific instruction
// the loader picks (genop.tab's signatures; the loader answers "bad tag"). Only operands
// whose kind is fixed are listed; the loader's full type check is its transformation
// engine's, which we do not replicate.
constexpr std::uint16_t bit(Tag t) {
  return static_cast<std::uint16_t>(1u << t);
}
constexpr std::uint16_t kUnsigned = bit(kU), kLabel = bit(kF), kAtomOp = bit(kA),
                        kRegister = bit(kX) | bit(kY);
struct OperandKind {
  std::uint8_t opcode;
  std::uint8_t position;
  std::uint16_t allowed;
};
constexpr OperandKind kOperandKinds[] = {
    {opcode_of("func_info"), 0, kAtomOp},
    {opcode_of("func_info"), 1, kAtomOp},
    {opcode_of("func_info"), 2, kUnsigned},
    {opcode_of("call"), 0, kUnsigned},
    {opcode_of("call"), 1, kLabel},
    {opcode_of("call_last"), 0, kUnsigned},
    {opcode_of("call_last"), 1, kLabel},
    {opcode_of("call_last"), 2, kUnsigned},
    {opcode_of("call_only"), 0, kUnsigned},
    {opcode_of("call_only"), 1, kLabel},
    {opcode_of("call_ext"), 0, kUnsigned},
    {opcode_of("call_ext_last"), 0, kUnsigned},
    {opcode_of("call_ext_last"), 2, kUnsigned},
    {opcode_of("call_ext_only"), 0, kUnsigned},
    {opcode_of("allocate"), 0, kUnsigned},
    {opcode_of("allocate"), 1, kUnsigned},
    {opcode_of("allocate_zero"), 0, kUnsigned},
    {opcode_of("allocate_zero"), 1, kUnsigned},
    {opcode_of("deallocate"), 0, kUnsigned},
    {opcode_of("jump"), 0, kLabel},
    {opcode_of("line"), 0, kUnsigned},
    {opcode_of("move"), 1, kRegister},
    {opcode_of("move"), 0, static_cast<std::uint16_t>(kRegister | kAtomOp | bit(kI) | bit(kLiteral))},
};

// Every test instruction (is_integer, is_eq_exact, ..., test_arity) starts with its fail label.
constexpr bool is_test(std::uint8_t opcode) {
  const std::string_view name = kGenericOps[opcode].name;
  return name.substr(0, 3) == "is_" || name == "test_arity";
}

// kOperandKinds, kIndexOperands and is_test folded into one table indexed by opcode and
// operand position (every constrained position is < kConstrained), built at compile time.
constexpr std::size_t kConstrained = 4;
struct OpRules {
  std::uint16_t allowed[kConstrained];  // operand kinds allowed at that position
  std::uint8_t index[kConstrained];     // 0: none, 1: an ImpT index, 2: a FunT index
};
struct OpRuleTable {
  OpRules op[kMaxGenericOpcode + 1];
};
constexpr OpRuleTable make_rules() {
  OpRuleTable t{};
  for (std::uint32_t o = 0; o <= kMaxGenericOpcode; ++o) {
    for (std::size_t i = 0; i < kConstrained; ++i) {
      t.op[o].allowed[i] = 0xffff;
      t.op[o].index[i] = 0;
    }
  }
  // Reverse order so that the first matching entry wins, as the linear search did.
  for (std::size_t k = std::size(kOperandKinds); k-- > 0;) {
    t.op[kOperandKinds[k].opcode].allowed[kOperandKinds[k].position] = kOperandKinds[k].allowed;
  }
  for (std::uint32_t o = 1; o <= kMaxGenericOpcode; ++o) {
    if (is_test(static_cast<std::uint8_t>(o))) t.op[o].allowed[0] = bit(kF);
  }
  for (std::size_t k = std::size(kIndexOperands); k-- > 0;) {
    t.op[kIndexOperands[k].opcode].index[kIndexOperands[k].position] = kIndexOperands[k].lambda ? 2 : 1;
  }
  return t;
}
constexpr OpRuleTable kRules = make_rules();
static_assert([] {
  for (const OperandKind& k : kOperandKinds) {
    if (k.position >= kConstrained) return false;
  }
  for (const IndexOperand& x : kIndexOperands) {
    if (x.position >= kConstrained) return false;
    for (const IndexOperand& y : kIndexOperands) {
      if (&x != &y && x.opcode == y.opcode && x.position == y.position) return false;
    }
  }
  return true;
}());

class CodeChecker {
 public:
  CodeChecker(const Tables& t)
      : t_(t),
        r_(t.code, t.code_offset),
        defined_(std::min<std::size_t>(t.label_count, t.code.size() + 1), false) {}

  // Returns true when the only failure is an opcode the table does not know.
  Check run(bool& unknown_opcode) {
    unknown_opcode = false;
    if (t_.max_opcode > kMaxGenericOpcode) {
      unknown_opcode = true;
      return fail("Code", t_.code_offset - 12,
                  "compiled for a later runtime: highest opcode " + std::to_string(t_.max_opcode) +
                      ", OTP 25 knows up to " + std::to_string(kMaxGenericOpcode));
    }
    std::uint32_t functions = 0;
    for (;;) {
      Op op;
      if (!next(op, unknown_opcode)) return tl::unexpected(std::move(err_));
      if (op.opcode == 3 /* int_code_end */) break;
      if (op.opcode != 1 /* label */) continue;
      // beamcodereader_next: label [line] func_info must be followed by its entry label.
      Op after;
      if (!next(after, unknown_opcode)) return tl::unexpected(std::move(err_));
      if (after.opcode == kLine) {
        if (!next(after, unknown_opcode)) return tl::unexpected(std::move(err_));
      }
      if (after.opcode == 3) return fail("Code", after.offset, "the code ends right after a label");
      if (after.opcode == 1) {
        // Another label: handled as the start of the next group.
        pending_label_ = after;
        continue;
      }
      if (after.opcode == kFuncInfo) {
        if (++functions > t_.function_count) {
          return fail("Code", after.offset,
                      "more functions than the header's " + std::to_string(t_.function_count));
        }
        Op entry;
        if (!next(entry, unknown_opcode)) return tl::unexpected(std::move(err_));
        if (entry.opcode != 1)
          return fail("Code", entry.offset, "func_info is not followed by its entry label");
      }
    }
    if (functions != t_.function_count) {
      return fail("Code", t_.code_offset - 4,
                  "the header declares " + std::to_string(t_.function_count) +
                      " functions, the code defines " + std::to_string(functions));
    }
    return {};
  }

  bool label_defined(std::uint64_t label) const { return label < defined_.size() && defined_[label]; }
  // An on_load instruction was read (the compiler emits one, in the -on_load function).
  bool on_load() const { return on_load_; }

 private:
  static constexpr std::uint8_t kLine = 153, kFuncInfo = 2, kOnLoad = opcode_of("on_load");
  static_assert(kOnLoad == 149);

  // Records a failure for run() to return; always false.
  bool bad(tl::unexpected<Fail> f) {
    err_ = std::move(f.value());
    return false;
  }

  // The common operands checked inline; false sends the operand to operand() (an
  // extended one, or one that fails there with its message).
  bool simple_operand(const Tagged& a) const {
    switch (a.tag) {
      case kU: return true;
      case kI: return a.big.empty();
      case kA: return a.value == 0 || a.value < t_.atom_count;
      case kF: return a.value == 0 || a.value < t_.label_count;
      case kX:
      case kY: return a.value < kMaxReg;
      default: return false;
    }
  }

  bool next(Op& op, bool& unknown_opcode) {
    if (pending_label_) {
      op = *pending_label_;
      pending_label_.reset();
      return true;
    }
    op.offset = r_.offset();
    if (!r_.u8(op.opcode)) return bad(fail("Code", op.offset, "the code ends without int_code_end"));
    if (op.opcode == 0 || op.opcode > kMaxGenericOpcode) {
      unknown_opcode = true;
      return bad(fail("Code", op.offset, "unknown opcode " + std::to_string(op.opcode)));
    }
    // The loader marks the module for its on_load function at any on_load instruction
    // (emu_load.c # op_on_load, the JIT's emit_on_load); a second one is not an error there,
    // it only moves the mark.
    if (op.opcode == kOnLoad) on_load_ = true;
    const GenericOp& g = kGenericOps[op.opcode];
    if (g.obsolete) {
      return bad(fail("Code", op.offset,
                      std::string("obsolete instruction ") + g.name + ": please re-compile this module"));
    }
    const OpRules& rules = kRules.op[op.opcode];
    std::size_t arity = g.arity;
    // The first operand's kind and value, for labels. Kept as two scalars, not a copy of
    // the Tagged: a wide copy of a struct just written field by field stalls on
    // store-to-load forwarding, which was a large part of the whole check.
    std::uint8_t first_tag = 0;
    std::uint64_t first_value = 0;
    for (std::size_t i = 0; i < arity; ++i) {
      const std::uint64_t at = r_.offset();
      Tagged a;
      if (!read_tagged(r_, a))
        return bad(fail("Code", at, std::string(g.name) + ": operand runs past the end of the code"));
      if (!simple_operand(a) && !operand(a, i, arity))
        return bad(fail("Code", at, std::string(g.name) + ": " + why_));
      if (i == 0) {
        first_tag = a.tag;
        first_value = a.value;
      }
      if (i >= kConstrained) continue;
      if ((rules.allowed[i] & (1u << a.tag)) == 0) {
        return bad(fail("Code", at,
                        std::string(g.name) + ": operand " + std::to_string(i + 1) + " has the wrong kind"));
      }
      if (const std::uint8_t x = rules.index[i]) {
        const bool lambda = x == 2;
        const std::size_t limit = lambda ? t_.lambda_count : t_.import_count;
        if (a.tag != kU || a.value >= limit) {
          return bad(fail("Code", at,
                          std::string(g.name) + ": " + (lambda ? "fun" : "import") + " index " +
                              std::to_string(a.value) + " out of range"));
        }
      }
    }
    if (op.opcode == 1) {
      const std::uint64_t label = first_value;
      if (first_tag != kU || label == 0 || label >= t_.label_count) {
        return bad(fail("Code", op.offset,
                        "label " + std::to_string(label) + " out of range 1.." +
                            std::to_string(t_.label_count ? t_.label_count - 1 : 0)));
      }
      // Sized lazily: a hostile header's label count costs nothing until labels use it.
      if (label >= defined_.size()) defined_.resize(static_cast<std::size_t>(label) + 1, false);
      if (defined_[label])
        return bad(fail("Code", op.offset, "label " + std::to_string(label) + " defined twice"));
      defined_[label] = true;
    }
    return true;
  }

  // One operand (beamcodereader_read_next's switch); `arity` grows with an argument list.
  [[gnu::noinline]] bool operand(Tagged& a, std::size_t i, std::size_t& arity) {
    auto bad = [&](std::string why) {
      why_ = std::move(why);
      return false;
    };
    switch (a.tag) {
      case kU:
      case kO: return true;
      case kI:
        if (!a.big.empty() && !normalized_bignum(a.big)) return bad("integer operand is not normalized");
        return true;
      case kA:
        if (a.value != 0 && a.value >= t_.atom_count)
          return bad("atom index " + std::to_string(a.value) + " out of range");
        return true;
      case kF:
        if (a.value != 0 && a.value >= t_.label_count)
          return bad("label " + std::to_string(a.value) + " out of range");
        return true;
      case kX:
      case kY:
        if (a.value >= kMaxReg) return bad("register " + std::to_string(a.value) + " out of range");
        return true;
      case kZ: break;
      default: return bad("unrecognized operand tag " + std::to_string(a.tag));
    }
    Tagged b;
    switch (a.value) {
      case 1:  // an argument list: the last operand; its elements follow as operands
        if (i + 1 != arity) return bad("argument list is not the last operand");
        if (!read_tagged(r_, b) || b.tag != kU) return bad("bad argument list length");
        if (b.value > t_.code.size()) return bad("argument list longer than the code");
        arity += static_cast<std::size_t>(b.value);
        a.tag = kList;
        return true;
      case 2:  // a float register
        if (!read_tagged(r_, b) || b.tag != kU || b.value >= kMaxReg) return bad("bad float register");
        a.tag = kFloatReg;
        return true;
      case 3: {  // an allocation list: up to 3 {kind, count} pairs
        if (!read_tagged(r_, b) || b.tag != kU || b.value > 3) return bad("bad allocation list");
        for (std::uint64_t k = 0; k < b.value; ++k) {
          Tagged kind, n;
          if (!read_tagged(r_, kind) || kind.tag != kU || !read_tagged(r_, n) || n.tag != kU)
            return bad("bad allocation list");
          if (kind.value > 2) return bad("invalid allocation tag");
          if (n.value > 0x7fffffffu / 8) return bad("allocation count out of range");
        }
        a.tag = kAllocList;
        return true;
      }
      case 4:  // a literal
        if (!read_tagged(r_, b) || b.tag != kU || b.value >= t_.literal_count)
          return bad("literal index out of range");
        a.tag = kLiteral;
        return true;
      case 5: {  // a register with a type hint
        Tagged idx;
        if (!read_tagged(r_, b) || (b.tag != kX && b.tag != kY) || !read_tagged(r_, idx) || idx.tag != kU) {
          return bad("bad typed register");
        }
        if (b.value >= kMaxReg) return bad("register out of range");
        if (!t_.types_fallback && idx.value >= t_.type_count) return bad("type index out of range");
        a.tag = b.tag;
        return true;
      }
      case 0: return bad("floating point operand (superseded in OTP R16B)");
      default: return bad("unrecognized extended tag " + std::to_string(a.value));
    }
  }

  const Tables& t_;
  ByteReader r_;
  std::vector<bool> defined_;
  std::string why_;
  Fail err_;
  std::optional<Op> pending_label_;
  bool on_load_ = false;
};

}  // namespace

}  // namespace internal::verdict

Image::LoadVerdict Image::check_loadable() const {
  LoadVerdict v;
  // The loader's container rules apply whatever this image was parsed with.
  std::shared_ptr<const Rep> strict = rep_;
  if (rep_->strictness != Strictness::kStrict) {
    auto shared = internal::parse_strict_shared(*rep_);
    if (!shared) {
      v.reason = shared.error().message();
      return v;
    }
    strict = std::move(*shared);
  }
  const Rep& rep = *strict;
  // A strict parse of a BEAM form checked the tables up to the funs: go on from there.
  internal::verdict::Tables t;
  internal::verdict::Check ok;
  if (rep.tables) {
    t = *rep.tables;
  } else {
    ok = internal::verdict::check_table_heads(rep, t);
  }
  if (ok) ok = internal::verdict::check_table_rest(rep, t);
  if (!ok) {
    v.reason =
        make_error(ErrorKind::kNotLoadable, rep.file, ok.error().chunk, ok.error().offset, ok.error().why)
            .message();
    return v;
  }
  internal::verdict::CodeChecker code(t);
  bool unknown_opcode = false;
  if (auto run = code.run(unknown_opcode); !run) {
    v.opcode_only = unknown_opcode;
    v.reason =
        make_error(ErrorKind::kNotLoadable, rep.file, run.error().chunk, run.error().offset, run.error().why)
            .message();
    return v;
  }
  v.loadable = true;
  v.on_load = code.on_load();
  return v;
}

}  // namespace codestore::image
