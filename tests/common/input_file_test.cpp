// The one way kdx opens outside input: regular files only, each kind under its cap.
#include "common/input_file.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"
#include "tests/support/test_support.h"

namespace kdx {
namespace {

std::string error_of(const std::string& path, InputKind kind = InputKind::Data) {
  try {
    read_input(path, kind);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(InputFile, ReadsARegularFileAndALinkToOne) {
  test::TempDir d;
  d.write("a.txt", "hello\n");
  ASSERT_EQ(::symlink(d.file("a.txt").c_str(), d.file("link.txt").c_str()), 0);
  EXPECT_EQ(read_input(d.file("a.txt"), InputKind::Data), "hello\n");
  EXPECT_EQ(read_input(d.file("link.txt"), InputKind::Record), "hello\n");
  EXPECT_EQ(check_input(d.file("a.txt"), InputKind::Spec), 6u);
}

// A FIFO with no writer used to block every reader forever; /dev/zero filled memory.
TEST(InputFile, FilesThatAreNotFilesAreRefusedWithoutBlocking) {
  test::TempDir d;
  ASSERT_EQ(::mkfifo(d.file("fifo").c_str(), 0644), 0);
  EXPECT_EQ(error_of(d.file("fifo")), d.file("fifo") + ": not a regular file (a FIFO)");
  EXPECT_EQ(error_of("/dev/zero"), "/dev/zero: not a regular file (a character device)");
  EXPECT_EQ(error_of(d.path()), d.path() + ": not a regular file (a directory)");
  EXPECT_EQ(error_of(d.file("missing")),
            "cannot read " + d.file("missing") + ": No such file or directory");
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock = d.file("sock");
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // open(2) itself refuses a socket.
  EXPECT_EQ(error_of(sock), "cannot read " + sock + ": No such device or address");
  ::close(s);
}

TEST(InputFile, EachKindHasACapThatItsVariableRaises) {
  test::TempDir d;
  d.write("big.txt", std::string(3000, 'x'));
  ::setenv("KDX_MAX_DATA_SIZE", "2K", 1);
  EXPECT_EQ(error_of(d.file("big.txt")),
            d.file("big.txt") +
                ": 2.9 KiB is more than the 2 KiB limit for data files (set KDX_MAX_DATA_SIZE to "
                "raise it)");
  ::setenv("KDX_MAX_DATA_SIZE", "4K", 1);
  EXPECT_EQ(read_input(d.file("big.txt"), InputKind::Data).size(), 3000u);
  ::setenv("KDX_MAX_DATA_SIZE", "lots", 1);
  EXPECT_EQ(error_of(d.file("big.txt")),
            "KDX_MAX_DATA_SIZE='lots' is not a size (e.g. 8G, 500M, 1048576)");
  ::unsetenv("KDX_MAX_DATA_SIZE");
  EXPECT_EQ(input_cap(InputKind::Record), 16u << 20);
  EXPECT_EQ(input_cap(InputKind::Data), 4ull << 30);
}

TEST(InputFile, ByteSizesParseWithoutWrapping) {
  EXPECT_EQ(parse_byte_size("123"), 123);
  EXPECT_EQ(parse_byte_size("16K"), 16384);
  EXPECT_EQ(parse_byte_size("8G"), 8ll << 30);
  EXPECT_EQ(parse_byte_size("9223372036854775807"), 9223372036854775807ll);
  EXPECT_EQ(parse_byte_size("9223372036854775808"), -1);
  EXPECT_EQ(parse_byte_size("99999999999T"), -1);
  EXPECT_EQ(parse_byte_size("G"), -1);
  EXPECT_EQ(parse_byte_size("-1"), -1);
  EXPECT_EQ(format_bytes(812), "812 bytes");
  EXPECT_EQ(format_bytes(16u << 20), "16 MiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
}

}  // namespace
}  // namespace kdx
