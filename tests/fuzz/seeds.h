// The starting inputs of Thimble's fuzz targets, made from the bundled samples: small images in
// every format and layout the decoders take (baseline and progressive JPEG with 4:2:0 and 4:4:4
// chroma, EXIF orientation, grey; PNG 8/16-bit, alpha, grey; WebP lossy, lossless, alpha, animated;
// HEIC; AVIF; GIF still, transparent and animated),
// URLs using every segment and filter, and S3 listing pages.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace thimble::fuzz {

// The seeds of `target` ("url", "sniff", "render" or "s3_listing"), from the samples in
// `samples_dir` (listings are written here).
std::vector<std::string> seeds_for(std::string_view target,
                                   const std::filesystem::path& samples_dir);

}  // namespace thimble::fuzz
