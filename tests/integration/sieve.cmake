# Included by tests/integration/CMakeLists.txt: the Sieve extension vnd.chainmail (sieve-ext) in Pigeonhole's
# own tools and in real Dovecot LMTP delivery. One ctest entry per binary; each starts what it needs once.
#   integration.SieveTools: sieve-test and sievec with lib90_sieve_chainmail_plugin.so from the build tree,
#     against the demo directory read from conf/ldap/demo.ldif (no slapd).
#   integration.SieveLmtp: a user script using both tests, run by Dovecot's LMTP (harness/dovecot_lmtp.h).
if(TARGET sieve_chainmail_plugin)
  add_executable(sieve_tools_test sieve_tools_test.cc)
  target_link_libraries(sieve_tools_test PRIVATE chainmail_sieve_support GTest::gtest_main)
  add_dependencies(sieve_tools_test sieve_chainmail_plugin)
  target_compile_definitions(sieve_tools_test PRIVATE
    CHAINMAIL_SIEVE_PLUGIN_DIR="$<TARGET_FILE_DIR:sieve_chainmail_plugin>")
  add_test(NAME integration.SieveTools COMMAND sieve_tools_test)
  set_tests_properties(integration.SieveTools PROPERTIES LABELS integration TIMEOUT 120)

  add_executable(sieve_lmtp_test sieve_lmtp_test.cc)
  target_link_libraries(sieve_lmtp_test PRIVATE chainmail_sieve_support GTest::gtest_main)
  add_dependencies(sieve_lmtp_test sieve_chainmail_plugin)
  target_compile_definitions(sieve_lmtp_test PRIVATE
    CHAINMAIL_SIEVE_PLUGIN_DIR="$<TARGET_FILE_DIR:sieve_chainmail_plugin>")
  if(TARGET chainmail_lmtp_plugin)
    add_dependencies(sieve_lmtp_test chainmail_lmtp_plugin)
    target_compile_definitions(sieve_lmtp_test PRIVATE
      CHAINMAIL_LMTP_PLUGIN_DIR="$<TARGET_FILE_DIR:chainmail_lmtp_plugin>")
  endif()
  add_test(NAME integration.SieveLmtp COMMAND sieve_lmtp_test)
  set_tests_properties(integration.SieveLmtp PROPERTIES LABELS integration TIMEOUT 120)
endif()
