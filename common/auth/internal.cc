#include "common/auth/internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rapport::auth::internal {
namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The 6-bit value of a base64url character, or -1.
int SextetOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

FileStamp StampOf(const struct stat& st) {
  FileStamp stamp;
  stamp.device = st.st_dev;
  stamp.inode = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = Nanos(st.st_mtim);
  stamp.ctime_ns = Nanos(st.st_ctim);
  return stamp;
}

absl::Status FileError(const std::string& path, int error) {
  std::string message = absl::StrCat(path, ": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace

std::string Base64UrlEncode(absl::string_view data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) |
                 (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) |
                 (static_cast<uint8_t>(data[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(absl::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int nbits = 0;
  for (char c : text) {
    int sextet = SextetOf(c);
    if (sextet < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(sextet);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xff));
    }
  }
  // The bits left over must be zero, or two texts would decode alike.
  if ((bits & ((1u << nbits) - 1)) != 0) return std::nullopt;
  return out;
}

JsonPtr ParseJsonObject(absl::string_view text) {
  json_error_t error;
  JsonPtr json(
      json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &error));
  if (json == nullptr || !json_is_object(json.get())) return nullptr;
  return json;
}

std::string DumpJson(const json_t* json, size_t flags) {
  char* text = json_dumps(json, flags);
  if (text == nullptr) return "";
  std::string out(text);
  std::free(text);
  return out;
}

std::optional<std::string> StringMember(const json_t* object,
                                        const char* name) {
  const json_t* value = json_object_get(object, name);
  if (value == nullptr || !json_is_string(value)) return std::nullopt;
  return std::string(json_string_value(value), json_string_length(value));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  if (size <= 0 || data == nullptr) return "";
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<FileStamp> StatFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FileError(path, errno);
  return StampOf(st);
}

absl::StatusOr<FileContents> ReadFile(const std::string& path,
                                      int64_t max_size) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(path, errno);
  FileContents contents;
  absl::Status status;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    status = FileError(path, errno);
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::InvalidArgumentError(
        absl::StrCat(path, ": is not a regular file"));
  } else if (st.st_size > max_size) {
    status = absl::InvalidArgumentError(
        absl::StrCat(path, ": larger than ", max_size, " bytes"));
  } else {
    contents.stamp = StampOf(st);
    std::array<char, 8192> buffer;
    while (true) {
      ssize_t n = read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = FileError(path, errno);
        break;
      }
      if (n == 0) break;
      contents.data.append(buffer.data(), static_cast<size_t>(n));
      if (static_cast<int64_t>(contents.data.size()) > max_size) {
        status = absl::InvalidArgumentError(
            absl::StrCat(path, ": larger than ", max_size, " bytes"));
        break;
      }
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return contents;
}

}  // namespace rapport::auth::internal
