// CTest's fixture for the PostgreSQL half of the suites (tests/CMakeLists.txt):
// `pg_test_server start DIR` before the first test that needs it (postgres.start),
// `pg_test_server stop DIR` after the last (postgres.stop, run also when tests failed).
// A server left in DIR by a run that was killed is stopped before a new one starts.
#include <cstdio>
#include <exception>
#include <string>

#include "support/pg_server.h"

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "start" && std::string(argv[1]) != "stop")) {
    std::fprintf(stderr, "usage: pg_test_server start|stop DIR\n");
    return 2;
  }
  codestore::testing::PgServer::stop(argv[2]);
  if (std::string(argv[1]) == "stop") return 0;
  try {
    codestore::testing::PgServer::start(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pg_test_server: %s\n", e.what());
    codestore::testing::PgServer::stop(argv[2]);
    return 1;
  }
  return 0;
}
