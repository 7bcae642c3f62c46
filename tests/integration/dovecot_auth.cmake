# Included by tests/integration/CMakeLists.txt: the Dovecot auth plugin suite. Real slapd (conf/ldap/demo.ldif)
# and a real Dovecot loading libauthdb_chainmail.so from the build tree (tests/harness/dovecot.h), both
# started once in SetUpTestSuite, so the suite is one ctest entry.
if(TARGET authdb_chainmail)
  add_executable(dovecot_auth_test dovecot_auth_test.cc)
  target_link_libraries(dovecot_auth_test PRIVATE chainmail_integration_support GTest::gtest_main)
  add_dependencies(dovecot_auth_test authdb_chainmail)
  add_test(NAME integration.DovecotAuth COMMAND dovecot_auth_test)
  set_tests_properties(integration.DovecotAuth PROPERTIES LABELS integration TIMEOUT 120)
endif()
