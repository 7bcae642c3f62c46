// maildir.h - delivery into a Maildir++ mailbox (Dovecot's maildir format) the way Dovecot would find it.
//
// deliver_to_maildir(root, folder, message): the folder ("" or "INBOX", else a Maildir++ name such as
// "Reports.New" stored as root/.Reports.New: core/maildir_folder.h) is created on first use with its
// maildirfolder file and added to Dovecot's subscriptions file in the root; then the message is written to
// tmp/, fsync'd, linked into new/ under a unique name carrying its size (",S=<octets>", so Dovecot need not
// stat it), and both directories are fsync'd. Only after that is the delivery reported done.
//
// Subscriptions: one mailbox name per line (Dovecot's version 1 format; a version 2 file, "V\t2" header and
// '\t' as hierarchy separator, is kept in its format). A name is added only if absent. The update takes
// Dovecot's own dot-lock (subscriptions.lock, created exclusively), writes the new file into it and renames
// it over subscriptions, so readers see the old file or the new one, never half of one.
//
// SECURITY: folder names come from configuration and are checked again here (valid_maildir_folder(): no '/',
// no "..", no leading dot). The tmp file is created with O_EXCL and mode 0600; it is removed on every
// failure, so no partial message is ever left behind, in tmp/ or new/.
//
// DIAGNOSTICS: every failure is Temporary with the failing step and strerror (disk full, quota, I/O errors,
// permissions: an operator can fix each of them and the message must then still be there).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace chainmail {

struct MaildirDelivery {
  bool ok = false;
  std::string path;   // the file in new/, when ok
  std::string error;  // when not ok: always temporary trouble
  int errno_value = 0;
};

MaildirDelivery deliver_to_maildir(const std::filesystem::path& root, std::string_view folder,
                                   std::string_view message) noexcept;

// Creates the folder (and the root) if missing, and subscribes it. Part of deliver_to_maildir; exposed for
// tests and tools. Returns an error text, empty on success.
std::string ensure_maildir_folder(const std::filesystem::path& root, std::string_view folder);

}  // namespace chainmail
