# Included by tests/integration/CMakeLists.txt: the submission suite (587 STARTTLS + AUTH, 465 implicit TLS,
# the "senders" owner check, IMAP over TLS). Real slapd, Dovecot with chainmail's auth plugin from the build
# tree (tests/harness/dovecot.h), chainmail-milter and Postfix from conf/postfix, started once in
# SetUpTestSuite, so the suite is one ctest entry. Needs the auth plugin and the Dovecot harness.
if(TARGET authdb_chainmail AND TARGET chainmail-milter AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/../harness/dovecot.cc)
  add_executable(submission_test submission_test.cc)
  target_link_libraries(submission_test PRIVATE chainmail_milter_support GTest::gtest_main)
  add_dependencies(submission_test authdb_chainmail chainmail chainmail-milter)
  add_test(NAME integration.Submission COMMAND submission_test)
  set_tests_properties(integration.Submission PROPERTIES LABELS integration TIMEOUT 120)
endif()
