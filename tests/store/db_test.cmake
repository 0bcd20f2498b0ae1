# osb_add_db_test(NAME SOURCES ... LIBS ...): one GoogleTest binary whose
# tests are registered twice — "sqlite." against a fresh SQLite file and
# "postgres." against the real PostgreSQL fixture server — so one suite
# proves identical behaviour on both backends.
# The postgres fixture (tests/store/CMakeLists.txt) writes its URL here.
set(OSB_PG_FIXTURE_DIR ${CMAKE_BINARY_DIR}/pgtest)

function(osb_add_db_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} osb_test_db GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} TEST_PREFIX "sqlite." DISCOVERY_TIMEOUT 60
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
                       PROPERTIES LABELS "${T_LABELS}" ENVIRONMENT "OSB_TEST_DB=sqlite")
  gtest_discover_tests(${name} TEST_PREFIX "postgres." DISCOVERY_TIMEOUT 60
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
                       PROPERTIES LABELS "${T_LABELS}" FIXTURES_REQUIRED postgres
                       ENVIRONMENT "OSB_TEST_DB=postgres:${OSB_PG_FIXTURE_DIR}/url")
endfunction()
