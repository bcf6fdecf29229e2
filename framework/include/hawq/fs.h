// Small file-system helpers with the durability the results journal needs. Torch-free.
#pragma once

#include <string>

namespace hawq {

// Writes `contents` to `path` atomically: temporary file in the same folder, fsync, rename,
// fsync of the folder. Readers see the old file or the new one, never a partial one.
void write_file_atomic(const std::string& path, const std::string& contents);
// Whole file as a string; throws UserError naming the file if it cannot be read.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
void make_dirs(const std::string& path);
// Folder part of a path ("." if none).
std::string dir_name(const std::string& path);
// Runs a shell command, returns its stdout; throws UserError with `what` if it fails.
std::string run_command(const std::string& cmd, const std::string& what);
// SHA-256-free content fingerprint (FNV-1a 64, hex) for cache keys and point ids.
std::string fingerprint(const std::string& data);

}  // namespace hawq
