# Writes OUT: a .cpp with every migrations/NNNN_*.sql (SQLite) and every
# migrations/postgresql/NNNN_*.sql (their PostgreSQL twins) as raw strings, in number order,
# so the library carries its schema for both backends. Run at build time (script mode):
# -DDIR=... -DOUT=...
function(embed_dir dir out_var)
  file(GLOB files "${dir}/[0-9][0-9][0-9][0-9]_*.sql")
  list(SORT files)
  set(body "")
  foreach(f IN LISTS files)
    get_filename_component(name "${f}" NAME)
    string(SUBSTRING "${name}" 0 4 number)
    math(EXPR number "${number}")
    file(READ "${f}" sql)
    string(APPEND body "    {${number}, \"${name}\", R\"codestore_sql(${sql})codestore_sql\"},\n")
  endforeach()
  set(${out_var} "${body}" PARENT_SCOPE)
endfunction()
embed_dir("${DIR}" sqlite_body)
embed_dir("${DIR}/postgresql" postgresql_body)
set(content "// Generated from migrations/*.sql and migrations/postgresql/*.sql by
// store/db/embed_migrations.cmake; do not edit.
#include \"db/migrations.h\"

namespace codestore::db {

const std::vector<Migration>& embedded_migrations() {
  static const std::vector<Migration> migrations = {
${sqlite_body}  };
  return migrations;
}

const std::vector<Migration>& embedded_postgresql_migrations() {
  static const std::vector<Migration> migrations = {
${postgresql_body}  };
  return migrations;
}

}  // namespace codestore::db
")
file(WRITE "${OUT}.tmp" "${content}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
