// report_archive_module.h - the entry point of the module chainmail-archive: adapters/mime's extract_report()
// (libarchive) with C linkage, so that the `chainmail` command can find it by name.
//
// Why a module: libarchive brings seven libraries of its own (its compressors, nettle, libacl), and loading
// them was about a millisecond of every `chainmail` start, a tenth of reading a 1 MB report. A plain XML
// report needs none of them, so the command loads the module at the first gzip or zip report
// (report_archive_loader.cc), and a folder of compressed reports pays once.
#pragma once

#include <cstddef>

#include "adapters/mime/report_archive.h"

// *out is extract_report(data, *limits). False only when the result could not be handed over (no memory).
extern "C" bool chainmail_extract_report(const char* data, std::size_t size,
                                         const chainmail::ArchiveLimits* limits,
                                         chainmail::ExtractResult* out) noexcept;
