// Thimble's fuzz targets: the code that reads hostile bytes (request paths, originals and the
// answers of S3 stores).
//
// Each target accepts any input. A crash, a sanitizer report, a hang or a broken invariant
// (which aborts) is a finding. They run under libFuzzer (fuzz_main.cpp, `tests/fuzz/run.sh`) and,
// over the seeds and every saved finding, in the normal test suite (test_fuzz_regressions.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace thimble::fuzz {

using Input = std::span<const std::uint8_t>;

// A request path: signature check (sign → verify round trip), URL parsing, the configured
// limits, and the canonical form (it must parse back to itself).
void url(Input data);

// An original's header: format, size and EXIF orientation, without decoding.
void sniff(Input data);

// An original through the whole pipeline with limits on: the first byte picks one of a set of
// URLs (resize modes, crop, trim, smart, filters, meta, every output format), the rest is the
// original. Covers the decoders, including the DC-only progressive JPEG decode.
void render(Input data);
inline constexpr int kRenderUrls = 14;  // how many URLs render()'s first byte picks from

// One page of an S3 listing (ListObjectsV2 XML) as thimble-warm and purge read it from a store
// that may be hostile: every object's key and size, the truncation flag and the next token.
void s3_listing(Input data);

struct Target {
  std::string_view name;
  void (*run)(Input);
};
inline constexpr Target kTargets[] = {
    {"url", url}, {"sniff", sniff}, {"render", render}, {"s3_listing", s3_listing}};

}  // namespace thimble::fuzz
