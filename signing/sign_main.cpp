// thimble-sign: signs Thumbor option paths exactly as libthumbor does, or checks a signed one.
// The key comes from --key-file or THIMBLE_KEY, never from the command line alone, so it does
// not end up in shell history or `ps` output.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "signing/signer.h"

namespace {

constexpr const char* kUsage =
    "usage: thimble-sign [--key-file FILE] [--libthumbor-latin1] PATH\n"
    "       thimble-sign [--key-file FILE] --verify /SIGNATURE/PATH\n"
    "\n"
    "Prints /SIGNATURE/PATH for a Thumbor option path such as\n"
    "'fit-in/300x200/filters:quality(80)/photos/cat.jpg', signed with HMAC-SHA1 exactly as\n"
    "libthumbor signs it. With --verify, checks a signed path: exit status 0 when the signature\n"
    "matches, 1 when it does not.\n"
    "\n"
    "The key is read from FILE (its first line) or from the THIMBLE_KEY environment variable.\n"
    "\n"
    "A key with characters beyond ASCII has two encodings: Thumbor's server signs and verifies\n"
    "with its UTF-8 bytes (what thimble-sign does), libthumbor's CryptoURL signs with its\n"
    "Latin-1 bytes. Thimble accepts both. --libthumbor-latin1 signs as CryptoURL does.\n";

int usage_error(const std::string& message) {
  std::cerr << "thimble-sign: " << message << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key_file;
  std::string path;
  bool verify = false;
  bool latin1 = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--key-file") {
      if (++i == argc) return usage_error("--key-file needs a file name");
      key_file = argv[i];
    } else if (arg == "--verify") {
      verify = true;
    } else if (arg == "--libthumbor-latin1") {
      latin1 = true;
    } else if (arg.starts_with("--")) {
      return usage_error("unknown option " + arg);
    } else if (path.empty()) {
      path = arg;
    } else {
      return usage_error("only one PATH may be given");
    }
  }
  if (path.empty()) return usage_error("a PATH is required");

  thimble::Result<std::string> key =
      thimble::signing::tool_key(key_file, std::getenv("THIMBLE_KEY"));
  if (!key.ok()) return usage_error(key.status().message());

  std::string signing_key = *key;
  const bool ascii = std::all_of(signing_key.begin(), signing_key.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (latin1 && !verify && !ascii) {
    std::optional<std::string> form = thimble::signing::latin1_form(signing_key);
    if (!form) return usage_error("the key has characters beyond U+00FF: CryptoURL cannot use it");
    signing_key = *form;
  }
  thimble::signing::UrlSigner signer({signing_key}, /*allow_unsafe=*/false);
  if (verify) {
    auto verdict = signer.verify(path);
    if (!verdict.ok()) {
      std::cerr << "invalid: " << verdict.status().message() << "\n";
      return 1;
    }
    std::cout << "valid\n";
    return 0;
  }
  std::cout << signer.sign(path) << "\n";
  return 0;
}
