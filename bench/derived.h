// Originals in the formats the corpus does not have, derived from its JPEG photographs once and
// kept on disk: HEIC as phones write it (x265, with a 320 px thumbnail item), AVIF (libaom) and
// animated GIF (8 frames panning across the photo, 480 px wide, by Thimble's GIF writer). They
// let thimble-bench compare HEIC-in, AVIF-in and animated-GIF scenarios with libvips on the same
// photographs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace thimble::bench {

struct DerivedImage {
  std::string name;
  std::string bytes;
  std::size_t source = 0;  // index of the photograph it was made from
};

// `kind` is "heic", "avif" or "gif"; `photos` are (name, JPEG bytes). Files are kept in
// `cache_dir` (made again when missing), so only the first run pays for the encoding.
std::vector<DerivedImage> derive(const std::string& kind,
                                 const std::vector<std::pair<std::string, std::string>>& photos,
                                 const std::filesystem::path& cache_dir);

}  // namespace thimble::bench
