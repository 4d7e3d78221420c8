# Writes OUT: a .cpp with every migrations/NNNN_*.sql as a raw string, in number order, so
# the library carries its schema. Run at build time (script mode): -DDIR=... -DOUT=...
file(GLOB files "${DIR}/[0-9][0-9][0-9][0-9]_*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  string(SUBSTRING "${name}" 0 4 number)
  math(EXPR number "${number}")
  file(READ "${f}" sql)
  string(APPEND body "    {${number}, \"${name}\", R\"codestore_sql(${sql})codestore_sql\"},\n")
endforeach()
set(content "// Generated from migrations/*.sql by store/db/embed_migrations.cmake; do not edit.
#include \"db/migrations.h\"

namespace codestore::db {

const std::vector<Migration>& embedded_migrations() {
  static const std::vector<Migration> migrations = {
${body}  };
  return migrations;
}

}  // namespace codestore::db
")
file(WRITE "${OUT}.tmp" "${content}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
