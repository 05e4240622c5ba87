// signing/: libthumbor-compatible signatures, verification, rotation, and the thimble-sign CLI.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "signing/signer.h"
#include "support.h"

using namespace thimble;
using signing::UrlSigner;

namespace {

// Produced by libthumbor's CryptoURL(key='MY_SECURE_KEY').generate(...) (SPEC.md §2).
const char* const kVectors[] = {
    "/FQjiRjoVp42Nl25AbGL6IweUUdI=/300x200/my.server.com/some/path/to/image.jpg",
    "/oVIIhw6DCjxWND8Sxv4aAxIf7UA=/fit-in/400x300/filters:quality(80):format(webp)/bucket/photos/"
    "cat.jpg",
    "/rIOTZLeLkROhbPbzQJL0ot0VSg4=/-300x-200/left/top/smart/https://example.com/img/dog.png",
    "/ntyRIPjipZ9DTfb5jzfzx657NoU=/meta/trim:bottom-right:10/10x20:510x420/200x0/uploads/2024/"
    "photo.jpg",
    "/KVTzjAwo9sZ38Sb41iMm5_HUBE4=/full-fit-in/800x600/"
    "filters:fill(white):upscale():round_corner(20,255,255,255)/s3/bucket/key%20with%20space.jpg",
    "/aQ0UF3ZO0dRqv4t9Gy9tzr5vY3I=/adaptive-fit-in/0x500/a/b.jpg",
};

struct Run {
  int status;
  std::string out;
};

Run run(const std::string& command) {
  Run result{-1, {}};
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe))
    result.out.append(buffer.data(), n);
  int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace

TEST_CASE("signatures match libthumbor's known-answer vectors") {
  UrlSigner signer({"MY_SECURE_KEY"}, false);
  for (const char* vector : kVectors) {
    std::string url = vector;
    std::string path = url.substr(30);  // after "/<28 chars>/"
    CAPTURE(url);
    CHECK(signer.sign(path) == url);
    CHECK(signer.sign("/" + path) == url);
    auto verified = signer.verify(url);
    REQUIRE(verified.ok());
    CHECK(*verified == path);
  }
}

TEST_CASE("base64url keeps padding and uses - and _") {
  CHECK(signing::base64url_encode("") == "");
  CHECK(signing::base64url_encode("f") == "Zg==");
  CHECK(signing::base64url_encode("fo") == "Zm8=");
  CHECK(signing::base64url_encode("foo") == "Zm9v");
  CHECK(signing::base64url_encode("\xfb\xff") == "-_8=");
}

TEST_CASE("tampered paths, wrong keys and malformed signatures are refused as bad signatures") {
  UrlSigner signer({"MY_SECURE_KEY"}, false);
  const std::string good = kVectors[0];
  struct Row {
    std::string url;
    std::string reason;
  };
  const Row rows[] = {
      {"/FQjiRjoVp42Nl25AbGL6IweUUdI=/301x200/my.server.com/some/path/to/image.jpg",
       "signature does not match"},
      {"/GQjiRjoVp42Nl25AbGL6IweUUdI=/300x200/my.server.com/some/path/to/image.jpg",
       "signature does not match"},
      {"/FQjiRjoVp42Nl25AbGL6IweUUdI/300x200/my.server.com/some/path/to/image.jpg",
       "malformed signature"},
      {"/FQjiRjoVp42Nl25AbGL6IweUU+I=/300x200/my.server.com/some/path/to/image.jpg",
       "malformed signature"},
      {"/300x200/my.server.com/image.jpg", "malformed signature"},
      {"/FQjiRjoVp42Nl25AbGL6IweUUdI=", "missing signature"},
      {"/FQjiRjoVp42Nl25AbGL6IweUUdI=/", "missing signature"},
      {"", "missing signature"},
      {"/unsafe/300x200/image.jpg", "unsigned (unsafe) URLs are not allowed"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.url);
    auto verdict = signer.verify(row.url);
    REQUIRE_FALSE(verdict.ok());
    CHECK(verdict.status().code() == Code::kBadSignature);
    CHECK(verdict.status().message() == row.reason);
  }
  UrlSigner other({"ANOTHER_KEY"}, false);
  CHECK_FALSE(other.verify(good).ok());
}

TEST_CASE("with several keys the first signs and every one verifies") {
  UrlSigner old_only({"old-key"}, false);
  UrlSigner rotated({"new-key", "old-key"}, false);
  const std::string old_url = old_only.sign("fit-in/300x200/a.jpg");
  const std::string new_url = rotated.sign("fit-in/300x200/a.jpg");
  CHECK(new_url != old_url);
  CHECK(new_url == UrlSigner({"new-key"}, false).sign("fit-in/300x200/a.jpg"));
  CHECK(rotated.verify(old_url).ok());
  CHECK(rotated.verify(new_url).ok());
  CHECK_FALSE(old_only.verify(new_url).ok());
}

TEST_CASE("a percent-encoded padding %3D is accepted as =") {
  UrlSigner signer({"MY_SECURE_KEY"}, false);
  CHECK(signer.verify("/aQ0UF3ZO0dRqv4t9Gy9tzr5vY3I%3D/adaptive-fit-in/0x500/a/b.jpg").ok());
  CHECK(signer.verify("/aQ0UF3ZO0dRqv4t9Gy9tzr5vY3I%3d/adaptive-fit-in/0x500/a/b.jpg").ok());
}

TEST_CASE("unsafe URLs pass only when allowed") {
  UrlSigner allowing({"k"}, true);
  auto verdict = allowing.verify("/unsafe/fit-in/300x200/a.jpg");
  REQUIRE(verdict.ok());
  CHECK(*verdict == "fit-in/300x200/a.jpg");
  CHECK_FALSE(UrlSigner({"k"}, false).verify("/unsafe/fit-in/300x200/a.jpg").ok());
}

TEST_CASE("URLs signed by Debian's libthumbor verify, including encoded keys") {
  // libthumbor is Thumbor's own signer: apps that use it must work unchanged.
  const std::string script =
      "from libthumbor import CryptoURL\n"
      "c = CryptoURL(key='rotate-me: &%+/= more')\n"
      "print(c.generate(width=320, height=240, smart=True, image_url='photos/cat%20one.jpg'))\n"
      "print(c.generate(width=100, height=0, fit_in=True, filters=['quality(70)'], "
      "image_url='a/b.png'))\n"
      "print(c.generate(width=50, height=50, halign='right', valign='bottom', "
      "crop=((10,20),(500,600)), image_url='x.webp'))\n";
  test::TempDir dir;
  test::write_file(dir.path() / "sign.py", script);
  Run generated = run("/usr/bin/python3 " + (dir.path() / "sign.py").string());
  REQUIRE_MESSAGE(generated.status == 0, "python3-libthumbor must be installed");
  UrlSigner signer({"rotate-me: &%+/= more"}, false);
  std::istringstream lines(generated.out);
  int count = 0;
  for (std::string url; std::getline(lines, url); ++count) {
    CAPTURE(url);
    auto verdict = signer.verify(url);
    CHECK(verdict.ok());
    CHECK(signer.sign(url.substr(30)) == url);
  }
  CHECK(count == 3);
}

TEST_CASE("a non-ASCII key verifies as libthumbor signs it (Latin-1) and as Thumbor does (UTF-8)") {
  // CryptoURL encodes the key as Latin-1; Thumbor's server (and thimble-sign) as UTF-8.
  const std::string key = "cl\xc3\xa9-s\xc3\xbbre";  // "clé-sûre"
  const std::string script =
      "from libthumbor import CryptoURL\n"
      "c = CryptoURL(key='cl\\u00e9-s\\u00fbre')\n"
      "for w in range(1, 41):\n"
      "    print(c.generate(width=w, height=40, smart=(w % 2 == 0), image_url='p/%d.jpg' % w))\n";
  test::TempDir dir;
  test::write_file(dir.path() / "sign.py", script);
  Run generated = run("/usr/bin/python3 " + (dir.path() / "sign.py").string());
  REQUIRE(generated.status == 0);
  UrlSigner signer({key}, false);
  std::istringstream lines(generated.out);
  int count = 0;
  for (std::string url; std::getline(lines, url); ++count) {
    CAPTURE(url);
    CHECK(signer.verify(url).ok());
  }
  CHECK(count == 40);
  CHECK(signer.verify(signer.sign("10x40/p/10.jpg")).ok());  // the UTF-8 form, as Thumbor signs
  CHECK(*signing::latin1_form(key) == "cl\xe9-s\xfbre");
  CHECK_FALSE(signing::latin1_form("ascii-only").has_value());
  CHECK_FALSE(signing::latin1_form("\xe2\x82\xac").has_value());  // U+20AC has no Latin-1 byte
  CHECK_FALSE(signing::latin1_form("\xc3").has_value());          // truncated UTF-8

  // thimble-sign --libthumbor-latin1 writes CryptoURL's URLs byte for byte.
  test::write_file(dir.path() / "key", key + "\n");
  const std::string sign =
      std::string(THIMBLE_SIGN_BINARY) + " --key-file " + (dir.path() / "key").string();
  const std::string first = generated.out.substr(0, generated.out.find('\n') + 1);
  CHECK(run(sign + " --libthumbor-latin1 " + first.substr(30)).out == first);
  CHECK(run(sign + " " + first.substr(30)).out != first);
}

TEST_CASE("thimble-sign signs like libthumbor and verifies with exit status 0 or 1") {
  test::TempDir dir;
  test::write_file(dir.path() / "key", "MY_SECURE_KEY\n");
  const std::string sign = std::string(THIMBLE_SIGN_BINARY);
  const std::string key_file = " --key-file " + (dir.path() / "key").string();

  Run signed_path = run(sign + key_file + " 'adaptive-fit-in/0x500/a/b.jpg'");
  CHECK(signed_path.status == 0);
  CHECK(signed_path.out == std::string(kVectors[5]) + "\n");

  Run from_env =
      run("THIMBLE_KEY=MY_SECURE_KEY " + sign + " /300x200/my.server.com/some/path/to/image.jpg");
  CHECK(from_env.out == std::string(kVectors[0]) + "\n");

  CHECK(run(sign + key_file + " --verify '" + kVectors[1] + "' 2>/dev/null").status == 0);
  CHECK(run(sign + key_file +
            " --verify '/oVIIhw6DCjxWND8Sxv4aAxIf7UA=/fit-in/400x301/x.jpg' 2>/dev/null")
            .status == 1);
  CHECK(run("env -u THIMBLE_KEY " + sign + " a.jpg 2>/dev/null").status == 2);
}

TEST_CASE("tools take the key from the first line of --key-file, else THIMBLE_KEY, never empty") {
  test::TempDir dir;
  test::write_file(dir.path() / "key.txt", "from-file\r\nsecond line\n");
  const std::string file = (dir.path() / "key.txt").string();
  CHECK(*signing::tool_key(file, "from-env") == "from-file");  // the file wins, CR dropped
  CHECK(*signing::tool_key("", "from-env") == "from-env");
  Result<std::string> missing = signing::tool_key((dir.path() / "none.txt").string(), "from-env");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("cannot read a key from") == 0);
  CHECK(signing::tool_key("", nullptr).status().message() ==
        "no key: use --key-file FILE or set THIMBLE_KEY");
  CHECK_FALSE(signing::tool_key("", "").ok());
}
