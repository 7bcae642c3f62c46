# Included by tests/integration/CMakeLists.txt: the LMTP hook suites. Real Dovecot (LMTP, loading
# lib20_chainmail_lmtp_plugin.so from the build tree), real slapd (conf/ldap/demo.ldif) and real Postfix,
# started once per suite in SetUpTestSuite; the binary is one ctest entry. DovecotLmtpProduction runs
# conf/dovecot with the chainmail auth plugin (harness/dovecot.h) when that plugin is built.
if(TARGET chainmail_lmtp_plugin)
  add_executable(dovecot_lmtp_test dovecot_lmtp_test.cc)
  target_link_libraries(dovecot_lmtp_test PRIVATE chainmail_integration_support GTest::gtest_main)
  add_dependencies(dovecot_lmtp_test chainmail chainmail_lmtp_plugin)
  if(TARGET authdb_chainmail)
    add_dependencies(dovecot_lmtp_test authdb_chainmail)
  else()
    target_compile_definitions(dovecot_lmtp_test PRIVATE CHAINMAIL_NO_AUTH_PLUGIN=1)
  endif()
  target_compile_definitions(dovecot_lmtp_test PRIVATE
    CHAINMAIL_LMTP_PLUGIN_DIR="$<TARGET_FILE_DIR:chainmail_lmtp_plugin>")
  add_test(NAME integration.DovecotLmtp COMMAND dovecot_lmtp_test)
  set_tests_properties(integration.DovecotLmtp PROPERTIES LABELS integration TIMEOUT 120)
endif()
