#include "image/damage.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace codestore::testing {

namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint32_t get32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
void append32(Bytes& b, std::uint32_t v) {
  b.resize(b.size() + 4);
  put32(b.data() + b.size() - 4, v);
}

RawChunk* find(std::vector<RawChunk>& cs, std::string_view id) {
  for (auto& c : cs) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

// Byte offset (in the image) of each chunk's header, for edits that keep the bytes in place.
std::size_t header_offset(const std::vector<RawChunk>& cs, std::string_view id) {
  std::size_t pos = 12;
  for (const auto& c : cs) {
    if (c.id == id) return pos;
    pos += 8 + ((c.data.size() + 3) & ~std::size_t{3});
  }
  return 0;
}

// Offsets (in the AtU8 data) of each atom's length byte.
std::vector<std::size_t> atom_offsets(const Bytes& atu8) {
  std::vector<std::size_t> out;
  std::size_t pos = 4;
  while (pos < atu8.size()) {
    out.push_back(pos);
    pos += 1 + atu8[pos];
  }
  return out;
}

Bytes inflate_all(const Bytes& in, std::size_t size) {
  Bytes out(size);
  uLongf len = static_cast<uLongf>(size);
  if (uncompress(out.data(), &len, in.data(), static_cast<uLong>(in.size())) != Z_OK) return {};
  out.resize(len);
  return out;
}

Bytes deflate_all(const Bytes& in) {
  uLongf len = compressBound(static_cast<uLong>(in.size()));
  Bytes out(len);
  if (compress(out.data(), &len, in.data(), static_cast<uLong>(in.size())) != Z_OK) return {};
  out.resize(len);
  return out;
}

}  // namespace

std::vector<RawChunk> split_chunks(std::span<const std::uint8_t> image) {
  std::vector<RawChunk> out;
  if (image.size() < 12 || std::memcmp(image.data(), "FOR1", 4) != 0) return out;
  std::size_t pos = 12;
  while (pos + 8 <= image.size()) {
    const std::uint32_t size = get32(image.data() + pos + 4);
    if (size > image.size() - pos - 8) return {};
    RawChunk c;
    c.id.assign(reinterpret_cast<const char*>(image.data() + pos), 4);
    c.data.assign(image.begin() + static_cast<std::ptrdiff_t>(pos + 8),
                  image.begin() + static_cast<std::ptrdiff_t>(pos + 8 + size));
    out.push_back(std::move(c));
    pos += 8 + ((std::size_t{size} + 3) & ~std::size_t{3});
  }
  return out;
}

std::vector<std::uint8_t> join_chunks(const std::vector<RawChunk>& chunks) {
  Bytes out = {'F', 'O', 'R', '1', 0, 0, 0, 0, 'B', 'E', 'A', 'M'};
  for (const auto& c : chunks) {
    out.insert(out.end(), c.id.begin(), c.id.end());
    append32(out, static_cast<std::uint32_t>(c.data.size()));
    out.insert(out.end(), c.data.begin(), c.data.end());
    out.resize(out.size() + (4 - c.data.size() % 4) % 4, 0);
  }
  put32(out.data() + 4, static_cast<std::uint32_t>(out.size() - 8));
  return out;
}

std::vector<DamagedImage> damage_variants(std::span<const std::uint8_t> image, std::uint64_t seed,
                                          int flips) {
  std::vector<DamagedImage> out;
  const Bytes orig(image.begin(), image.end());
  const std::vector<RawChunk> base = split_chunks(image);
  if (base.empty()) return out;
  auto add = [&](std::string name, std::string what, Bytes bytes) {
    out.push_back(DamagedImage{std::move(name), std::move(what), std::move(bytes)});
  };
  // A variant made by editing the chunk list (the form length stays consistent).
  auto edit = [&](std::string name, std::string what, auto&& f) {
    std::vector<RawChunk> cs = base;
    if (f(cs)) add(std::move(name), std::move(what), join_chunks(cs));
  };
  // A variant made by editing bytes in place.
  auto raw = [&](std::string name, std::string what, auto&& f) {
    Bytes b = orig;
    if (f(b)) add(std::move(name), std::move(what), std::move(b));
  };

  // --- Container ---------------------------------------------------------------------
  for (std::size_t n : {0, 4, 8, 11}) {
    add("header_truncated_" + std::to_string(n), "only the first " + std::to_string(n) + " bytes",
        Bytes(orig.begin(), orig.begin() + static_cast<std::ptrdiff_t>(n)));
  }
  raw("magic_wrong", "FOR2 instead of FOR1", [](Bytes& b) {
    b[3] = '2';
    return true;
  });
  raw("form_type_not_beam", "form type BEAX", [](Bytes& b) {
    b[11] = 'X';
    return true;
  });
  raw("form_len_too_big", "form length 4 more than the file holds", [](Bytes& b) {
    put32(b.data() + 4, get32(b.data() + 4) + 4);
    return true;
  });
  raw("form_len_excludes_last_chunk", "form length ends before the last chunk (a whole chunk after the form)",
      [&](Bytes& b) {
        const auto& last = base.back();
        put32(b.data() + 4,
              static_cast<std::uint32_t>(b.size() - 8 - 8 - ((last.data.size() + 3) & ~std::size_t{3})));
        return true;
      });
  raw("form_len_too_small", "form length 4 short: the last chunk runs past the form", [](Bytes& b) {
    put32(b.data() + 4, get32(b.data() + 4) - 4);
    return true;
  });
  raw("last_chunk_past_end", "the last chunk's size runs 1000 bytes past the end", [&](Bytes& b) {
    const std::size_t h = header_offset(base, base.back().id);
    put32(b.data() + h + 4, get32(b.data() + h + 4) + 1000);
    return true;
  });
  raw("code_chunk_past_end", "the Code chunk's size runs past the end of the file", [&](Bytes& b) {
    const std::size_t h = header_offset(base, "Code");
    if (h == 0) return false;
    put32(b.data() + h + 4, static_cast<std::uint32_t>(b.size() - h - 8 + 4));
    return true;
  });
  raw("unread_chunk_past_end",
      "a chunk in the middle that md5 and the views do not read (Dbgi, Docs or CInf) "
      "runs past the end of the file",
      [&](Bytes& b) {
        for (const char* id : {"Dbgi", "Docs", "CInf"}) {
          const std::size_t h = header_offset(base, id);
          if (h == 0 || base.back().id == id) continue;
          put32(b.data() + h + 4, static_cast<std::uint32_t>(b.size() - h - 8 + 1));
          return true;
        }
        return false;
      });
  raw("atom_chunk_past_end", "the AtU8 chunk's size runs past the end of the file", [&](Bytes& b) {
    const std::size_t h = header_offset(base, "AtU8");
    if (h == 0) return false;
    put32(b.data() + h + 4, static_cast<std::uint32_t>(b.size() - h - 8 + 100));
    return true;
  });
  {
    Bytes b = orig;
    const std::uint8_t tail[] = {'X', 't', 'r', 'a', 0, 0, 0, 3, 1, 2, 3};
    b.insert(b.end(), std::begin(tail), std::end(tail));
    put32(b.data() + 4, static_cast<std::uint32_t>(b.size() - 8));
    add("last_chunk_unpadded", "an extra last chunk of 3 bytes without its padding byte", std::move(b));
  }
  for (std::size_t n : {1, 3, 7}) {
    Bytes b = orig;
    b.insert(b.end(), n, 0xAB);
    add("trailing_garbage_" + std::to_string(n), std::to_string(n) + " bytes after the form", std::move(b));
  }
  {
    Bytes b = orig;
    const std::uint8_t junk[] = {'J', 'U', 'N', 'K', 0, 0, 0, 4, 1, 2, 3, 4};
    b.insert(b.end(), std::begin(junk), std::end(junk));
    add("trailing_chunk", "a whole JUNK chunk after the form (form length unchanged)", std::move(b));
  }

  // --- Duplicates, empty and missing chunks --------------------------------------------
  edit("dup_atu8", "a second copy of AtU8 at the end", [](auto& cs) {
    const RawChunk* a = find(cs, "AtU8");
    if (!a) return false;
    RawChunk copy = *a;
    cs.push_back(std::move(copy));
    return true;
  });
  edit("dup_expt_shorter_last", "a second ExpT at the end with one entry less", [](auto& cs) {
    const RawChunk* e = find(cs, "ExpT");
    if (!e || e->data.size() < 16) return false;
    RawChunk copy = *e;
    copy.data.resize(copy.data.size() - 12);
    put32(copy.data.data(), get32(copy.data.data()) - 1);
    cs.push_back(std::move(copy));
    return true;
  });
  edit("dup_code_corrupt_last", "a second Code chunk at the end whose first opcode is unknown", [](auto& cs) {
    const RawChunk* c = find(cs, "Code");
    if (!c) return false;
    RawChunk copy = *c;
    copy.data[4 + get32(copy.data.data())] = 0xFE;
    cs.push_back(std::move(copy));
    return true;
  });
  edit("dup_attr_garbage_last", "a second, undecodable Attr chunk at the end", [](auto& cs) {
    if (!find(cs, "Attr")) return false;
    cs.push_back(RawChunk{"Attr", {131, 255, 255, 255}});
    return true;
  });
  for (const char* id : {"AtU8", "Code", "ImpT", "ExpT", "StrT"}) {
    edit(std::string("empty_") + id, std::string("the ") + id + " chunk has size 0", [&](auto& cs) {
      RawChunk* c = find(cs, id);
      if (!c) return false;
      c->data.clear();
      return true;
    });
    edit(std::string("missing_") + id, std::string("no ") + id + " chunk", [&](auto& cs) {
      auto it = std::find_if(cs.begin(), cs.end(), [&](const RawChunk& c) { return c.id == id; });
      if (it == cs.end()) return false;
      cs.erase(it);
      return true;
    });
  }
  edit("legacy_atom", "AtU8 renamed to the pre-OTP 21 Atom (latin-1) chunk", [](auto& cs) {
    RawChunk* c = find(cs, "AtU8");
    if (!c) return false;
    c->id = "Atom";
    return true;
  });

  // --- Atom, export and import tables --------------------------------------------------
  auto atu8_edit = [&](std::string name, std::string what, auto&& f) {
    edit(std::move(name), std::move(what), [&](auto& cs) {
      RawChunk* c = find(cs, "AtU8");
      return c && c->data.size() > 5 && f(c->data);
    });
  };
  atu8_edit("atom_count_too_big", "the atom count is 1000 more than the atoms", [](Bytes& d) {
    put32(d.data(), get32(d.data()) + 1000);
    return true;
  });
  atu8_edit("atom_count_zero", "the atom count is 0 (the atoms are still there)", [](Bytes& d) {
    put32(d.data(), 0);
    return true;
  });
  atu8_edit("atom_table_zero_length", "the atom table holds a count of 0 and no atoms", [](Bytes& d) {
    d.assign(4, 0);
    return true;
  });
  atu8_edit("atom_past_chunk", "the last atom's length runs past the end of the chunk", [](Bytes& d) {
    auto offs = atom_offsets(d);
    if (offs.size() < 2) return false;
    d[offs.back()] = 255;
    return d.size() - offs.back() - 1 < 255;
  });
  atu8_edit("invalid_utf8_module", "the module name (atom #1) starts with byte 0xFF", [](Bytes& d) {
    if (d[4] == 0) return false;
    d[5] = 0xFF;
    return true;
  });
  atu8_edit("invalid_utf8_atom", "the last atom starts with byte 0xFF", [](Bytes& d) {
    auto offs = atom_offsets(d);
    if (offs.size() < 2 || d[offs.back()] == 0) return false;
    d[offs.back() + 1] = 0xFF;
    return true;
  });
  const std::uint32_t atom_count = [&] {
    const RawChunk* a = nullptr;
    for (const auto& c : base) {
      if (c.id == "AtU8") a = &c;
    }
    return a && a->data.size() >= 4 ? get32(a->data.data()) : 0u;
  }();
  auto table_edit = [&](std::string name, std::string what, const char* id, std::size_t field,
                        std::uint32_t value) {
    edit(std::move(name), std::move(what), [&](auto& cs) {
      RawChunk* c = find(cs, id);
      if (!c || c->data.size() < 16) return false;
      put32(c->data.data() + 4 + 4 * field, value);
      return true;
    });
  };
  table_edit("expt_atom_index_out_of_range", "ExpT entry 1 names atom count+5", "ExpT", 0, atom_count + 5);
  table_edit("expt_atom_index_zero", "ExpT entry 1 names atom 0", "ExpT", 0, 0);
  table_edit("expt_arity_too_big", "ExpT entry 1 has arity 256", "ExpT", 1, 256);
  table_edit("impt_atom_index_out_of_range", "ImpT entry 1's module is atom count+5", "ImpT", 0,
             atom_count + 5);
  table_edit("impt_function_index_out_of_range", "ImpT entry 1's function is atom count+5", "ImpT", 1,
             atom_count + 5);
  edit("expt_count_too_big", "the ExpT count is one more than its entries", [](auto& cs) {
    RawChunk* c = find(cs, "ExpT");
    if (!c) return false;
    put32(c->data.data(), get32(c->data.data()) + 1);
    return true;
  });
  edit("expt_truncated", "ExpT loses its last 4 bytes", [](auto& cs) {
    RawChunk* c = find(cs, "ExpT");
    if (!c || c->data.size() < 16) return false;
    c->data.resize(c->data.size() - 4);
    return true;
  });
  edit("impt_truncated", "ImpT loses its last 4 bytes", [](auto& cs) {
    RawChunk* c = find(cs, "ImpT");
    if (!c || c->data.size() < 16) return false;
    c->data.resize(c->data.size() - 4);
    return true;
  });
  edit("funt_truncated", "FunT loses its last 4 bytes", [](auto& cs) {
    RawChunk* c = find(cs, "FunT");
    if (!c || c->data.size() < 28) return false;
    c->data.resize(c->data.size() - 4);
    return true;
  });

  // --- Terms: Attr and CInf -----------------------------------------------------------
  for (const char* id : {"Attr", "CInf"}) {
    const std::string lower = id == std::string("Attr") ? "attr" : "cinf";
    edit(lower + "_garbage", std::string(id) + " holds 131 then bytes no term starts with", [&](auto& cs) {
      RawChunk* c = find(cs, id);
      if (!c || c->data.size() < 4) return false;
      std::fill(c->data.begin() + 1, c->data.end(), 0xFF);
      return true;
    });
    edit(lower + "_no_version", std::string(id) + "'s first byte is not 131", [&](auto& cs) {
      RawChunk* c = find(cs, id);
      if (!c || c->data.empty()) return false;
      c->data[0] = 0;
      return true;
    });
    edit(lower + "_truncated", std::string(id) + " loses its last 3 bytes", [&](auto& cs) {
      RawChunk* c = find(cs, id);
      if (!c || c->data.size() < 8) return false;
      c->data.resize(c->data.size() - 3);
      return true;
    });
  }
  edit("attr_not_a_list", "Attr holds the atom foo", [](auto& cs) {
    RawChunk* c = find(cs, "Attr");
    if (!c) return false;
    c->data = {131, 119, 3, 'f', 'o', 'o'};
    return true;
  });

  // --- Literals ----------------------------------------------------------------------
  auto litt_edit = [&](std::string name, std::string what, auto&& f) {
    edit(std::move(name), std::move(what), [&](auto& cs) {
      RawChunk* c = find(cs, "LitT");
      return c && c->data.size() > 8 && f(c->data);
    });
  };
  litt_edit("litt_truncated", "LitT keeps only half of its zlib stream", [](Bytes& d) {
    d.resize(4 + (d.size() - 4) / 2);
    return true;
  });
  litt_edit("litt_corrupt", "bytes in the middle of LitT's zlib stream inverted", [](Bytes& d) {
    for (std::size_t i = d.size() / 2; i < std::min(d.size(), d.size() / 2 + 4); ++i) d[i] ^= 0xFF;
    return true;
  });
  litt_edit("litt_size_smaller", "LitT's declared uncompressed size is 1 too small", [](Bytes& d) {
    put32(d.data(), get32(d.data()) - 1);
    return true;
  });
  litt_edit("litt_size_bigger", "LitT's declared uncompressed size is 1 too big", [](Bytes& d) {
    put32(d.data(), get32(d.data()) + 1);
    return true;
  });
  auto litt_inner = [&](std::string name, std::string what, auto&& f) {
    litt_edit(std::move(name), std::move(what), [&](Bytes& d) {
      Bytes inner = inflate_all(Bytes(d.begin() + 4, d.end()), get32(d.data()));
      if (inner.size() < 13 || !f(inner)) return false;
      Bytes packed = deflate_all(inner);
      d.resize(4);
      put32(d.data(), static_cast<std::uint32_t>(inner.size()));
      d.insert(d.end(), packed.begin(), packed.end());
      return true;
    });
  };
  litt_inner("litt_bad_literal", "LitT's first literal has an unknown term tag", [](Bytes& in) {
    in[9] = 255;  // count(4) len(4) 131 TAG
    return true;
  });
  litt_inner("litt_count_too_big", "LitT's literal count is one more than its literals", [](Bytes& in) {
    put32(in.data(), get32(in.data()) + 1);
    return true;
  });
  litt_inner("litt_literal_truncated", "LitT's first literal is declared 3 bytes shorter", [](Bytes& in) {
    const std::uint32_t len = get32(in.data() + 4);
    if (len < 6) return false;
    put32(in.data() + 4, len - 3);
    return true;
  });

  // --- Code --------------------------------------------------------------------------
  auto code_edit = [&](std::string name, std::string what, auto&& f) {
    edit(std::move(name), std::move(what), [&](auto& cs) {
      RawChunk* c = find(cs, "Code");
      return c && c->data.size() > 24 && f(c->data);
    });
  };
  auto first_op = [](const Bytes& d) { return 4 + std::size_t{get32(d.data())}; };
  code_edit("code_header_short", "the Code header length is 8", [](Bytes& d) {
    put32(d.data(), 8);
    return true;
  });
  code_edit("code_header_past_end", "the Code header length runs past the chunk", [](Bytes& d) {
    put32(d.data(), 0x7FFFFFF0);
    return true;
  });
  code_edit("code_bad_format", "the Code format number is 1", [](Bytes& d) {
    put32(d.data() + 4, 1);
    return true;
  });
  code_edit("code_max_opcode_too_big", "the Code header's highest opcode is 255 (a newer compiler)",
            [](Bytes& d) {
              put32(d.data() + 8, 255);
              return true;
            });
  code_edit("code_label_count_small", "the Code header's label count is 2", [](Bytes& d) {
    put32(d.data() + 12, 2);
    return true;
  });
  code_edit("code_function_count_small", "the Code header's function count is 1", [](Bytes& d) {
    put32(d.data() + 16, 1);
    return true;
  });
  code_edit("code_function_count_big", "the Code header's function count is 5 too big", [](Bytes& d) {
    put32(d.data() + 16, get32(d.data() + 16) + 5);
    return true;
  });
  code_edit("code_unknown_opcode", "the first instruction's opcode is 254", [&](Bytes& d) {
    d[first_op(d)] = 254;
    return true;
  });
  code_edit("code_obsolete_opcode", "the first instruction's opcode is 27 (obsolete m_plus/4)",
            [&](Bytes& d) {
              d[first_op(d)] = 27;
              return true;
            });
  code_edit("code_label_zero", "the first label instruction defines label 0", [&](Bytes& d) {
    const std::size_t at = first_op(d);
    if (d[at] != 1 || d[at + 1] != 0x10) return false;
    d[at + 1] = 0x00;
    return true;
  });
  code_edit("code_label_bad_tag", "the first label's operand is an atom", [&](Bytes& d) {
    const std::size_t at = first_op(d);
    if (d[at] != 1 || d[at + 1] != 0x10) return false;
    d[at + 1] = 0x12;
    return true;
  });
  code_edit("code_truncated_operand", "the Code ends after the first opcode byte", [&](Bytes& d) {
    d.resize(first_op(d) + 1);
    return true;
  });
  code_edit("code_truncated_half", "the Code keeps only its first half", [](Bytes& d) {
    d.resize(d.size() / 2);
    return true;
  });
  code_edit("code_no_int_code_end", "the Code loses its final int_code_end", [](Bytes& d) {
    if (d.back() != 3) return false;
    d.pop_back();
    return true;
  });
  code_edit("code_trailing_bytes", "bytes after int_code_end", [](Bytes& d) {
    d.insert(d.end(), {0xFE, 0xFE});
    return true;
  });

  // --- gzip --------------------------------------------------------------------------
  const Bytes gz = gzip_bytes(orig);
  add("gzip_ok", "the image gzip-wrapped (as beam_lib:strip/1 writes it)", gz);
  add("gzip_truncated", "the gzip-wrapped image loses its last 10 bytes", Bytes(gz.begin(), gz.end() - 10));
  {
    Bytes b = gz;
    for (std::size_t i = b.size() / 2; i < b.size() / 2 + 8; ++i) b[i] ^= 0x5A;
    add("gzip_corrupt", "bytes in the middle of the gzip stream changed", std::move(b));
  }
  {
    Bytes b = gz;
    b.insert(b.end(), {'j', 'u', 'n', 'k'});
    add("gzip_trailing_junk", "4 bytes after the gzip member", std::move(b));
  }

  // --- Random ------------------------------------------------------------------------
  std::mt19937_64 rng(seed);
  {
    Bytes b(256);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    add("random_bytes", "256 random bytes", std::move(b));
  }
  {
    Bytes b = {'F', 'O', 'R', '1', 0, 0, 0, 204, 'B', 'E', 'A', 'M'};
    for (int i = 0; i < 200; ++i) b.push_back(static_cast<std::uint8_t>(rng()));
    add("random_body", "a valid header then 200 random bytes", std::move(b));
  }
  // Single random bytes changed: a sample of damage no one designed.
  for (int i = 0; i < flips; ++i) {
    Bytes b = orig;
    const std::size_t at = 12 + static_cast<std::size_t>(rng() % (b.size() - 12));
    const auto x = static_cast<std::uint8_t>(1 + rng() % 255);
    b[at] ^= x;
    add("flip_" + std::to_string(i), "byte " + std::to_string(at) + " xor " + std::to_string(x),
        std::move(b));
  }
  return out;
}

}  // namespace codestore::testing
