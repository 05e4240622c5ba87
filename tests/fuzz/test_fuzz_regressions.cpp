// The fuzz targets over their seeds and over every input a fuzz run ever found
// (tests/fuzz/regressions/<target>/), in the ordinary builds: a finding, once fixed, stays fixed.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "../support.h"
#include "seeds.h"
#include "targets.h"
#include "transform/sniff.h"

using namespace thimble;

namespace {
const std::filesystem::path kSamples = std::filesystem::path(THIMBLE_SOURCE_DIR) / "conf/samples";
}

// A run aborts (and fails this test) on a crash, a sanitizer report or a broken invariant.
TEST_CASE("every seed and every saved finding runs clean through its fuzz target") {
  const std::filesystem::path saved =
      std::filesystem::path(THIMBLE_SOURCE_DIR) / "tests/fuzz/regressions";
  for (const fuzz::Target& target : fuzz::kTargets) {
    CAPTURE(target.name);
    std::vector<std::string> inputs = fuzz::seeds_for(target.name, kSamples);
    CHECK(inputs.size() >= 12);
    if (std::filesystem::exists(saved / target.name)) {
      for (const auto& entry : std::filesystem::directory_iterator(saved / target.name)) {
        inputs.push_back(test::read_file(entry.path()));
      }
    }
    for (const std::string& input : inputs) target.run(test::as_bytes(input));
  }
}

TEST_CASE("the image seeds are real images in every format the sniffer knows") {
  std::set<transform::ImageFormat> formats;
  for (const std::string& seed : fuzz::seeds_for("sniff", kSamples)) {
    Result<transform::ImageInfo> info = transform::sniff(test::as_bytes(seed));
    REQUIRE_MESSAGE(info.ok(), info.status().message());
    formats.insert(info->format);
  }
  CHECK(formats.size() == 6);  // JPEG, PNG, WebP, GIF, HEIC, AVIF
}
