// maildir_folder.h - Maildir++ folder names, as Dovecot's maildir layout stores them; no I/O.
//
// One place for the rules, so that the configuration check refuses what delivery would refuse, and
// service-mail files a report into the directory where `chainmail dmarc` and Dovecot look for it.
//
// A folder name is dot-separated, non-empty parts ("Reports.New"), with no '/', no control character and no
// DEL, so that it names one directory directly below the Maildir's root: Maildir++ keeps the hierarchy flat,
// and "Reports.New" is the directory ".Reports.New". INBOX is the root itself, named "" or "INBOX".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace chainmail {

// INBOX: "" or "INBOX".
bool is_inbox_folder(std::string_view folder);

// True when `folder` is INBOX or a folder name as above.
bool valid_maildir_folder(std::string_view folder);

// The directory of a valid `folder` of the Maildir at `root`: the root itself for INBOX, else root/.<folder>.
// Path arithmetic only: nothing is looked at on disk.
std::filesystem::path maildir_folder_dir(const std::filesystem::path& root, std::string_view folder);

}  // namespace chainmail
