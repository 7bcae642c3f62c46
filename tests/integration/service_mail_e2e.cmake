# Included by tests/integration/CMakeLists.txt: chainmail-service-mail through a real Postfix, end to end.
# SMTP to port 25 -> chainmail-milter routes the service address -> Postfix's "service" pipe (conf/postfix)
# runs chainmail-service-mail as the mail storage user -> Maildir++ -> real Dovecot (chainmail auth plugin)
# serves it over IMAP; autoreply answers through this Postfix's own sendmail. Real slapd, unbound, milter,
# Dovecot and Postfix start once in SetUpTestSuite, so the suite is one ctest entry. Needs root (the pipe's
# user=, a private mount of /etc/postfix) and the shared DMARC corpus (CHAINMAIL_SHARED_DIR).
if(TARGET authdb_chainmail AND TARGET chainmail-milter AND TARGET chainmail-service-mail
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/../harness/dovecot.cc)
  add_executable(service_mail_e2e_test service_mail_e2e_support.cc service_mail_e2e_test.cc)
  target_link_libraries(service_mail_e2e_test PRIVATE chainmail_milter_support GTest::gtest_main)
  add_dependencies(service_mail_e2e_test authdb_chainmail chainmail chainmail-milter chainmail-service-mail)
  target_compile_definitions(service_mail_e2e_test PRIVATE
    CHAINMAIL_SERVICE_MAIL_BIN="$<TARGET_FILE:chainmail-service-mail>"
    CHAINMAIL_DMARC_SAMPLES="${CHAINMAIL_SHARED_DIR}/testdata/dmarc")
  add_test(NAME integration.ServiceMailE2E COMMAND service_mail_e2e_test)
  set_tests_properties(integration.ServiceMailE2E PROPERTIES LABELS integration TIMEOUT 180)
endif()
