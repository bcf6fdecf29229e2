// File helpers: atomic writes for the journal and results, reading, command execution.
#include "hawq/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hawq/errors.h"

namespace hawq {

std::string dir_name(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw UserError("cannot create folder " + path + ": " + ec.message());
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string dir = dir_name(path);
  make_dirs(dir);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw UserError("cannot write " + tmp + ": " + std::strerror(errno));
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw UserError("write to " + tmp + " failed: " + std::strerror(errno));
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw UserError("fsync of " + tmp + " failed");
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw UserError("rename " + tmp + " -> " + path + " failed: " + std::strerror(errno));
  int dfd = ::open(dir.c_str(), O_RDONLY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

std::string run_command(const std::string& cmd, const std::string& what) {
  std::array<char, 4096> buf{};
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) throw UserError(what + ": cannot run `" + cmd + "`");
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(f);
  if (rc != 0) throw UserError(what + ": `" + cmd + "` failed with status " + std::to_string(rc));
  return out;
}

std::string fingerprint(const std::string& data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace hawq
