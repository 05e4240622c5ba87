// thimble-bench: measures Thimble's transform latency in-process (no HTTP), per scenario, on
// every image of a folder. Prints the environment first, warns about builds whose numbers mean
// nothing, then one row per scenario: median and p95 per image, images/s on one thread, and the
// split between sniff, decode, resize/filters and encode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "transform/pipeline.h"
#include "transform/spec.h"

namespace {

namespace fs = std::filesystem;
using namespace thimble::transform;
using thimble::Result;

constexpr const char* kUsage =
    "usage: thimble-bench [--iterations N] [--warmup N] [--scenario OPTIONS]... [FOLDER]\n"
    "\n"
    "Renders every JPEG/PNG/WebP image below FOLDER (default: ../shared/corpus, else\n"
    "conf/samples) with each scenario, a Thumbor option string such as 'fit-in/300x200'.\n"
    "Default scenarios: fit-in/300x200, 300x300, fit-in/1280x1280,\n"
    "fit-in/300x200/filters:format(webp).\n";

struct Image {
  std::string name;
  std::string bytes;
};

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::vector<Image> load_images(const fs::path& folder) {
  std::vector<Image> images;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(folder, ec)) {
    std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".jpg" && ext != ".png" && ext != ".webp")) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    images.push_back({fs::relative(entry.path(), folder).string(), bytes.str()});
  }
  std::sort(images.begin(), images.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return images;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 5, warmup = 1;
  std::vector<std::string> scenarios;
  std::string folder;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (arg == "--scenario" && i + 1 < argc) {
      scenarios.push_back(argv[++i]);
    } else if (!arg.starts_with("--") && folder.empty()) {
      folder = arg;
    } else {
      std::cerr << "thimble-bench: bad argument '" << arg << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (scenarios.empty()) {
    scenarios = {"fit-in/300x200", "300x300", "fit-in/1280x1280",
                 "fit-in/300x200/filters:format(webp)"};
  }
  if (folder.empty()) folder = fs::exists("../shared/corpus") ? "../shared/corpus" : "conf/samples";
  std::vector<Image> images = load_images(folder);
  if (images.empty()) {
    std::cerr << "thimble-bench: no images in " << folder << "\n";
    return 1;
  }

  std::printf("thimble-bench: %s, %u cores, build %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), THIMBLE_BUILD_TYPE);
  if (std::string(THIMBLE_BUILD_TYPE) != "Release" || THIMBLE_SANITIZED) {
    std::printf(
        "WARNING: not an optimised Release build without sanitizers: numbers are not "
        "representative\n");
  }
  std::printf("%zu images from %s, %d warm-up + %d timed iterations each, 1 thread\n\n",
              images.size(), folder.c_str(), warmup, iterations);
  std::printf("%-40s %9s %9s %8s %7s %7s %7s %7s\n", "scenario", "median ms", "p95 ms", "img/s",
              "sniff", "decode", "resize", "encode");

  use_one_thread_per_render();
  RenderSettings settings;
  for (const auto& scenario : scenarios) {
    Result<ThumbnailSpec> spec = parse_spec(scenario + "/image");
    if (!spec.ok()) {
      std::fprintf(stderr, "scenario '%s': %s\n", scenario.c_str(),
                   spec.status().message().c_str());
      return 2;
    }
    std::vector<double> totals;
    StageTimes sum;
    int failures = 0;
    for (const auto& image : images) {
      auto data =
          std::span(reinterpret_cast<const std::uint8_t*>(image.bytes.data()), image.bytes.size());
      for (int i = 0; i < warmup + iterations; ++i) {
        auto start = std::chrono::steady_clock::now();
        Result<Thumbnail> out = render(data, *spec, settings);
        double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (!out.ok()) {
          ++failures;
          break;
        }
        if (i < warmup) continue;
        totals.push_back(ms);
        sum.sniff_ms += out->times.sniff_ms;
        sum.decode_ms += out->times.decode_ms;
        sum.transform_ms += out->times.transform_ms;
        sum.encode_ms += out->times.encode_ms;
      }
    }
    double n = static_cast<double>(std::max<std::size_t>(totals.size(), 1));
    double total_time = 0;
    for (double t : totals) total_time += t;
    std::printf("%-40s %9.2f %9.2f %8.1f %7.2f %7.2f %7.2f %7.2f%s\n", scenario.c_str(),
                percentile(totals, 0.5), percentile(totals, 0.95),
                total_time > 0 ? 1000.0 * n / total_time : 0.0, sum.sniff_ms / n, sum.decode_ms / n,
                sum.transform_ms / n, sum.encode_ms / n, failures ? "  (some images failed)" : "");
  }
  std::printf("\nstage columns: mean ms per image\n");
  return 0;
}
