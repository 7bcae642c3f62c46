// maildir_folder.cc - see maildir_folder.h.
#include "core/maildir_folder.h"

namespace chainmail {

bool is_inbox_folder(std::string_view folder) {
  return folder.empty() || folder == "INBOX";
}

bool valid_maildir_folder(std::string_view folder) {
  if (is_inbox_folder(folder)) return true;
  // No empty part: a leading or trailing dot, or two in a row, would also let ".." reach the parent.
  if (folder.front() == '.' || folder.back() == '.' || folder.find("..") != std::string_view::npos)
    return false;
  for (const char ch : folder) {
    if (ch == '/' || static_cast<unsigned char>(ch) < 32 || ch == 127) return false;
  }
  return true;
}

std::filesystem::path maildir_folder_dir(const std::filesystem::path& root, std::string_view folder) {
  if (is_inbox_folder(folder)) return root;
  // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on "." + std::string(...).
  std::string name = ".";
  name += folder;
  return root / name;
}

}  // namespace chainmail
