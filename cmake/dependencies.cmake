# Every dependency comes from a Debian 12 package (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(simdjson REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json)
find_package(OpenSSL REQUIRED)
find_package(CURL REQUIRED)
find_package(RocksDB REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# Tool schemas' `pattern`: RE2 matches in linear time with bounded memory (a tenant's pattern
# cannot stall or crash the server, as a backtracking engine would let it).
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
if(MNEMO_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
endif()
