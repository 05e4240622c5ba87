// thimble-bench: measures Thimble's transform latency in-process (no HTTP), per scenario, on
// every image of a folder, side by side with libvips' vips_thumbnail_buffer when the bench was
// built with libvips. Prints the environment first, warns about builds whose numbers mean nothing,
// then per scenario and engine: latency percentiles per image, images/s on one thread and on all
// cores, source megapixels/s, output size and PSNR against a reference resize, Thimble's split
// between sniff, decode, resize/filters and encode, and the Thimble/libvips ratios.
//
// With --server URL it drives a running thimble over HTTP instead (server_load.h): uncached
// transforms, cached hits and 304 revalidations, each with requests/s, latency percentiles and
// status counts, and the uncached throughput against the in-process one at the same concurrency.
#include <curl/curl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "conf/base/json.h"
#include "derived.h"
#include "server_load.h"
#include "signing/signer.h"
#include "transform/auto_quality.h"
#include "transform/decode.h"
#include "transform/pipeline.h"
#include "transform/spec.h"
#ifdef THIMBLE_HAVE_VIPS
#include "vips_baseline.h"
#endif

namespace {

namespace fs = std::filesystem;
using namespace thimble::transform;
using thimble::Result;
using thimble::bench::percentile;

constexpr const char* kUsage =
    "usage: thimble-bench [--iterations N] [--warmup N] [--scenario OPTIONS]... [--no-baseline]\n"
    "                     [--json FILE] [--csv FILE] [--chart FILE.png] [--derived DIR]\n"
    "                     [--avif-speed N] [--quality-sweep] [FOLDER]\n"
    "\n"
    "Renders every JPEG/PNG/WebP image below FOLDER (default: ../shared/corpus, else\n"
    "conf/samples) with each scenario, a Thumbor option string such as 'fit-in/300x200', and\n"
    "the same thumbnails with libvips (when built with libvips-dev) unless --no-baseline.\n"
    "Default scenarios: fit-in/300x200, 300x300, fit-in/1280x1280,\n"
    "fit-in/300x200/filters:format(webp), fit-in/300x200@alpha, 300x300/smart,\n"
    "fit-in/300x200/filters:format(avif), fit-in/300x200@heic, fit-in/300x200@avif,\n"
    "fit-in/200x200@gif. A scenario ending in @alpha runs on the images with an alpha channel\n"
    "only (PNG, WebP); @heic, @avif and @gif on the JPEG photographs made into HEIC (with a\n"
    "thumbnail item, as phones write), AVIF or an 8-frame animated GIF, once, and kept in\n"
    "--derived DIR (default: thimble-bench-derived in the temporary folder). --avif-speed\n"
    "sets output.avif_speed (libaom's speed, libvips gets the same).\n"
    "--json/--csv also write every figure, one record per scenario and engine, to FILE;\n"
    "--chart draws the latency distributions as a PNG.\n"
    "--quality-sweep prints, instead of timings, mean bytes and luma SSIM of both engines at\n"
    "qualities 50-95 and of Thimble's quality(auto), on the JPEG photographs (default scenarios:\n"
    "fit-in/300x200 as JPEG, WebP and AVIF).\n"
    "\n"
    "Server mode: thimble-bench --server URL [--key-file FILE] [--connections N] [--requests N]\n"
    "                           [--iterations N] [--scenario OPTIONS]... FOLDER\n"
    "drives a running thimble whose originals are FOLDER, with URLs signed by the key in FILE or\n"
    "THIMBLE_KEY. Per scenario: uncached transforms (every image --iterations times under new\n"
    "URLs, one connection per core, against the in-process throughput on as many threads), then\n"
    "--requests cached hits (default 50000) and as many 304 revalidations on --connections\n"
    "keep-alive connections (default 64).\n";

struct Image {
  std::string name;
  std::string bytes;
};

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
    const bool image =
        ext == ".jpg" || ext == ".png" || ext == ".webp" || ext == ".heic" || ext == ".avif";
    if (!entry.is_regular_file() || !image) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    images.push_back({fs::relative(entry.path(), folder).string(), bytes.str()});
  }
  std::sort(images.begin(), images.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return images;
}

// One engine's figures for one scenario.
struct EngineRun {
  std::vector<double> latencies_ms;  // one per timed render (1 thread)
  double source_megapixels = 0;      // summed over the timed renders
  double single_thread_per_s = 0;
  double all_cores_per_s = 0;
  double mean_output_kb = 0;
  std::optional<double> median_psnr_db;  // per image, against the reference resize; not for smart
  std::optional<double> mean_ssim;       // luma SSIM against the same reference, mean per image
  int failures = 0;
};

// Renders image `i` once; returns the encoded thumbnail or nothing on failure.
using RenderFn = std::function<std::optional<std::string>(std::size_t i)>;

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

// A one-line progress bar on stderr while it is a terminal (nothing otherwise, so reports piped to
// a file stay clean). step() may be called from any thread.
class Progress {
 public:
  Progress(std::string label, std::size_t total)
      : label_(std::move(label)), total_(total), active_(isatty(STDERR_FILENO) && total > 0) {}
  ~Progress() {
    if (active_) std::fprintf(stderr, "\r%-72s\r", "");
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void step() {
    if (!active_) return;
    const std::size_t done = done_.fetch_add(1) + 1;
    const int percent = static_cast<int>(100 * std::min(done, total_) / total_);
    int shown = shown_.load();
    // Only the step that moves the percentage redraws the line.
    if (percent <= shown || !shown_.compare_exchange_strong(shown, percent)) return;
    constexpr int kWidth = 30;
    const int filled = percent * kWidth / 100;
    std::fprintf(stderr, "\r  %-30.30s [%s%s] %3d%%", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, ' ').c_str(),
                 percent);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::size_t total_;
  bool active_;
  std::atomic<std::size_t> done_{0};
  std::atomic<int> shown_{-1};
};

// Renders images 0..images-1 `iterations` times over, one image per thread at a time on
// `threads` threads; returns renders per second of wall time. `step` runs after each render.
double throughput(const RenderFn& render_one, std::size_t images, int iterations, unsigned threads,
                  const std::function<void()>& step = {}) {
  const std::size_t jobs = images * static_cast<std::size_t>(iterations);
  std::atomic<std::size_t> next{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (std::size_t j; (j = next.fetch_add(1)) < jobs;) {
        render_one(j % images);
        if (step) step();
      }
    });
  }
  for (auto& w : workers) w.join();
  const double wall_ms = elapsed_ms(start);
  return wall_ms > 0 ? 1000.0 * static_cast<double>(jobs) / wall_ms : 0;
}

// Runs warm-up + timed iterations of every image on this thread, then the same work spread over
// all cores (one image per thread at a time).
void measure(const std::string& label, const RenderFn& render_one, std::size_t images, int warmup,
             int iterations, const std::vector<double>& megapixels, EngineRun& run) {
  Progress progress(label, images * static_cast<std::size_t>(warmup + 2 * iterations));
  double busy_ms = 0;
  for (std::size_t i = 0; i < images; ++i) {
    for (int k = 0; k < warmup + iterations; ++k) {
      auto start = std::chrono::steady_clock::now();
      bool ok = render_one(i).has_value();
      double ms = elapsed_ms(start);
      progress.step();
      if (!ok) {
        ++run.failures;
        break;
      }
      if (k < warmup) continue;
      run.latencies_ms.push_back(ms);
      run.source_megapixels += megapixels[i];
      busy_ms += ms;
    }
  }
  if (busy_ms > 0) run.single_thread_per_s = 1000.0 * run.latencies_ms.size() / busy_ms;

  run.all_cores_per_s =
      throughput(render_one, images, iterations, std::max(1u, std::thread::hardware_concurrency()),
                 [&progress] { progress.step(); });
}

// PSNR of a decoded thumbnail against the reference: the source fully decoded (EXIF orientation
// applied), centre-cropped to the thumbnail's aspect ratio and area-resized to its size.
// 8-bit BGR for the quality figure: images with alpha composited over mid-grey, so colours under
// transparent pixels (which encoders may keep or zero) do not count, and translucent ones count
// as they are seen.
cv::Mat flatten(cv::Mat image) {
  if (image.empty()) return image;
  if (image.depth() == CV_16U) image.convertTo(image, CV_8U, 1.0 / 257.0);
  if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
  if (image.channels() != 4) return image;
  cv::Mat out(image.size(), CV_8UC3);
  for (int y = 0; y < image.rows; ++y) {
    const cv::Vec4b* in = image.ptr<cv::Vec4b>(y);
    cv::Vec3b* dst = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < image.cols; ++x) {
      const int a = in[x][3];
      for (int c = 0; c < 3; ++c)
        dst[x][c] = static_cast<uchar>((in[x][c] * a + 128 * (255 - a) + 127) / 255);
    }
  }
  return out;
}

// A thumbnail of either engine decoded by Thimble's own decoders (every format, the first frame
// of an animation), so both are measured the same way.
cv::Mat decode_thumbnail(const std::string& encoded) {
  const auto bytes =
      std::span(reinterpret_cast<const std::uint8_t*>(encoded.data()), encoded.size());
  Result<ImageInfo> info = sniff(bytes);
  if (!info.ok()) return {};
  Result<cv::Mat> image = thimble::transform::decode_image(bytes, *info, 1);
  return image.ok() ? *image : cv::Mat();
}

struct QualityScore {
  double psnr_db = 0, ssim = 0;
};

std::optional<QualityScore> score_against_reference(const cv::Mat& source,
                                                    const std::string& encoded) {
  cv::Mat thumb = flatten(decode_thumbnail(encoded));
  if (thumb.empty() || source.empty()) return std::nullopt;
  double aspect = static_cast<double>(thumb.cols) / thumb.rows;
  int w = source.cols, h = source.rows;
  if (static_cast<double>(w) / h > aspect) {
    w = std::max(1, static_cast<int>(h * aspect + 0.5));
  } else {
    h = std::max(1, static_cast<int>(w / aspect + 0.5));
  }
  cv::Mat reference;
  cv::resize(source(cv::Rect((source.cols - w) / 2, (source.rows - h) / 2, w, h)), reference,
             thumb.size(), 0, 0, cv::INTER_AREA);
  return QualityScore{cv::PSNR(reference, thumb), thimble::transform::luma_ssim(reference, thumb)};
}

void summarise_outputs(const std::vector<std::string>& outputs,
                       const std::vector<cv::Mat>& references, bool with_quality, EngineRun& run) {
  double bytes = 0;
  std::vector<double> psnr;
  double ssim_sum = 0;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    bytes += static_cast<double>(outputs[i].size());
    if (!with_quality || outputs[i].empty()) continue;
    if (auto q = score_against_reference(references[i], outputs[i])) {
      psnr.push_back(q->psnr_db);
      ssim_sum += q->ssim;
    }
  }
  if (!outputs.empty()) run.mean_output_kb = bytes / 1024.0 / static_cast<double>(outputs.size());
  // The median: a lossless output identical to its reference scores "infinite" dB.
  if (!psnr.empty()) {
    run.median_psnr_db = percentile(psnr, 0.5);
    run.mean_ssim = ssim_sum / static_cast<double>(psnr.size());
  }
}

// One row of the machine-readable reports.
struct ReportRow {
  std::string scenario, engine;
  EngineRun run;
  StageTimes stages;  // mean ms per image; Thimble only
};

struct Stats {
  double p50, p95, p99, min, max, megapixels_per_s;
};

Stats stats_of(const EngineRun& run) {
  double busy_s = 0;
  for (double ms : run.latencies_ms) busy_s += ms / 1000.0;
  const auto& l = run.latencies_ms;
  return {percentile(l, 0.5),  percentile(l, 0.95),
          percentile(l, 0.99), percentile(l, 0.0),
          percentile(l, 1.0),  busy_s > 0 ? run.source_megapixels / busy_s : 0.0};
}

bool write_csv(const std::string& path, const std::vector<ReportRow>& rows) {
  std::ofstream out(path);
  out << "scenario,engine,p50_ms,p95_ms,p99_ms,min_ms,max_ms,images_per_s_1t,images_per_s_all,"
         "megapixels_per_s,output_kb,psnr_db,ssim,sniff_ms,decode_ms,resize_ms,encode_ms,"
         "failures\n";
  for (const auto& row : rows) {
    Stats st = stats_of(row.run);
    char line[512];
    std::snprintf(line, sizeof line,
                  "%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%.2f,%.2f,%s,%s,%.3f,%.3f,%.3f,%.3f,%d\n",
                  st.p50, st.p95, st.p99, st.min, st.max, row.run.single_thread_per_s,
                  row.run.all_cores_per_s, st.megapixels_per_s, row.run.mean_output_kb,
                  row.run.median_psnr_db ? std::to_string(*row.run.median_psnr_db).c_str() : "",
                  row.run.mean_ssim ? std::to_string(*row.run.mean_ssim).c_str() : "",
                  row.stages.sniff_ms, row.stages.decode_ms, row.stages.transform_ms,
                  row.stages.encode_ms, row.run.failures);
    // Scenarios contain no commas or quotes the parser accepts unquoted; quote them anyway.
    out << '"' << row.scenario << "\"," << row.engine << ',' << line;
  }
  return static_cast<bool>(out);
}

bool write_json(const std::string& path, const std::vector<ReportRow>& rows,
                const std::string& machine) {
  std::ofstream out(path);
  out << "{\"machine\":" << thimble::json_string(machine) << ",\"results\":[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    Stats st = stats_of(row.run);
    char numbers[768];
    std::snprintf(numbers, sizeof numbers,
                  "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"min_ms\":%.3f,"
                  "\"max_ms\":%.3f,\"images_per_s_1t\":%.2f,\"images_per_s_all\":%.2f,"
                  "\"megapixels_per_s\":%.2f,\"output_kb\":%.2f,\"sniff_ms\":%.3f,"
                  "\"decode_ms\":%.3f,\"resize_ms\":%.3f,\"encode_ms\":%.3f,\"failures\":%d",
                  st.p50, st.p95, st.p99, st.min, st.max, row.run.single_thread_per_s,
                  row.run.all_cores_per_s, st.megapixels_per_s, row.run.mean_output_kb,
                  row.stages.sniff_ms, row.stages.decode_ms, row.stages.transform_ms,
                  row.stages.encode_ms, row.run.failures);
    out << (i ? "," : "") << "{\"scenario\":" << thimble::json_string(row.scenario)
        << ",\"engine\":" << thimble::json_string(row.engine) << ',' << numbers << ",\"psnr_db\":"
        << (row.run.median_psnr_db ? std::to_string(*row.run.median_psnr_db) : "null")
        << ",\"ssim\":" << (row.run.mean_ssim ? std::to_string(*row.run.mean_ssim) : "null") << '}';
  }
  out << "]}\n";
  return static_cast<bool>(out);
}

void print_row(const char* engine, const EngineRun& run, const std::string& stages) {
  char psnr[16] = "     -";
  if (run.median_psnr_db) std::snprintf(psnr, sizeof psnr, "%6.2f", *run.median_psnr_db);
  char ssim[16] = "     -";
  if (run.mean_ssim) std::snprintf(ssim, sizeof ssim, "%6.4f", *run.mean_ssim);
  Stats st = stats_of(run);
  std::printf("  %-8s %7.2f %7.2f %7.2f %7.2f %7.2f %8.1f %8.1f %7.1f %7.1f %s %s  %s%s\n", engine,
              st.p50, st.p95, st.p99, st.min, st.max, run.single_thread_per_s, run.all_cores_per_s,
              st.megapixels_per_s, run.mean_output_kb, psnr, ssim, stages.c_str(),
              run.failures ? "  (some images failed)" : "");
}

// A PNG of the latency distributions, one lane per scenario and engine on a shared linear axis:
// every timed render as a tick, the p25-p75 box, the median as a bar and p95 as a diamond.
bool write_chart(const std::string& path, const std::vector<ReportRow>& rows) {
  constexpr int kLabelWidth = 330, kPlotWidth = 760, kLane = 34, kTop = 40, kMargin = 20;
  double max_ms = 1;
  for (const auto& row : rows) max_ms = std::max(max_ms, percentile(row.run.latencies_ms, 1.0));
  int height = kTop + kLane * static_cast<int>(rows.size()) + 40;
  cv::Mat chart(height, kLabelWidth + kPlotWidth + kMargin, CV_8UC3, cv::Scalar(255, 255, 255));
  auto x_of = [&](double ms) { return kLabelWidth + static_cast<int>(ms / max_ms * kPlotWidth); };
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  cv::putText(
      chart,
      "latency per image (ms): tick = one render, box = p25-p75, bar = median, diamond = p95",
      {kMargin, 24}, font, 0.55, {0, 0, 0}, 1, cv::LINE_AA);
  for (int g = 0; g <= 4; ++g) {  // grid with labels at quarters of the axis
    int x = x_of(max_ms * g / 4.0);
    cv::line(chart, {x, kTop - 6}, {x, height - 30}, {225, 225, 225}, 1);
    char label[32];
    std::snprintf(label, sizeof label, "%.0f", max_ms * g / 4.0);
    cv::putText(chart, label, {x - 10, height - 12}, font, 0.45, {80, 80, 80}, 1, cv::LINE_AA);
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    int mid = kTop + kLane * static_cast<int>(i) + kLane / 2;
    cv::Scalar colour =
        row.engine == "thimble" ? cv::Scalar(160, 90, 20) : cv::Scalar(30, 120, 220);
    std::string label = row.scenario + "  " + row.engine;
    cv::putText(chart, label, {kMargin, mid + 5}, font, 0.45, {0, 0, 0}, 1, cv::LINE_AA);
    const auto& l = row.run.latencies_ms;
    if (l.empty()) continue;
    for (double ms : l) cv::line(chart, {x_of(ms), mid - 10}, {x_of(ms), mid + 10}, colour, 1);
    cv::rectangle(chart, {x_of(percentile(l, 0.25)), mid - 6}, {x_of(percentile(l, 0.75)), mid + 6},
                  colour, 2);
    int p50 = x_of(percentile(l, 0.5)), p95 = x_of(percentile(l, 0.95));
    cv::line(chart, {p50, mid - 13}, {p50, mid + 13}, {0, 0, 0}, 3);
    std::vector<cv::Point> diamond = {
        {p95, mid - 6}, {p95 + 6, mid}, {p95, mid + 6}, {p95 - 6, mid}};
    cv::fillConvexPoly(chart, diamond, {0, 0, 200}, cv::LINE_AA);
  }
  try {
    return cv::imwrite(path, chart);
  } catch (const cv::Exception&) {
    return false;  // e.g. a name without a known image extension
  }
}

// The scenario with a max_age() filter of `seconds`: the same pixels to make, but a URL (and a
// cache key) no server has seen, as long as `seconds` is new.
std::string uncached_variant(const std::string& scenario, long long seconds) {
  const std::string filter = "max_age(" + std::to_string(seconds) + ")";
  return scenario.find("filters:") == std::string::npos ? scenario + "/filters:" + filter
                                                        : scenario + ":" + filter;
}

struct ServerOptions {
  std::string url;
  std::string key;
  int connections = 64;
  std::size_t requests = 50000;
};

void print_load(const char* phase, int connections, const thimble::bench::LoadReport& r) {
  std::string statuses;
  for (const auto& [status, count] : r.statuses) {
    statuses +=
        (statuses.empty() ? "" : " ") + std::to_string(status) + ":" + std::to_string(count);
  }
  if (r.errors > 0) statuses += " errors:" + std::to_string(r.errors);
  std::printf("  %-9s %5d %8zu %9.0f %8.2f %8.2f %8.2f %8.2f  %s\n", phase, connections, r.requests,
              r.per_second(), percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.95),
              percentile(r.latencies_ms, 0.99),
              r.latencies_ms.empty()
                  ? 0.0
                  : *std::max_element(r.latencies_ms.begin(), r.latencies_ms.end()),
              statuses.c_str());
}

// Drives a running thimble: per scenario, uncached transforms, cached hits and 304s.
int server_mode(const ServerOptions& options, const std::vector<Image>& images,
                const std::vector<std::string>& scenarios, int iterations) {
  using thimble::bench::LoadRequest;
  using thimble::bench::run_load;
  const thimble::signing::UrlSigner signer({options.key}, false);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Images whose names need no percent-encoding in a URL.
  std::vector<const Image*> usable;
  std::vector<std::string> names;
  for (const Image& image : images) {
    if (image.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._/-") == std::string::npos) {
      usable.push_back(&image);
      names.push_back(image.name);
    }
  }
  std::printf("server %s, %zu images, uncached on %d connections, hits and 304s on %d\n\n",
              options.url.c_str(), names.size(), cores, options.connections);
  std::printf("  %-9s %5s %8s %9s %8s %8s %8s %8s  %s\n", "phase", "conns", "requests", "req/s",
              "p50 ms", "p95", "p99", "max", "statuses");
  use_one_thread_per_render();
  const RenderSettings settings;
  for (const std::string& scenario : scenarios) {
    Result<ThumbnailSpec> spec = parse_spec(scenario + "/image");
    if (!spec.ok()) {
      std::fprintf(stderr, "scenario '%s': %s\n", scenario.c_str(),
                   spec.status().message().c_str());
      return 2;
    }
    std::printf("%s\n", scenario.c_str());
    // Uncached: every image `iterations` times under URLs no server has seen (a random
    // max_age(), which changes only the Cache-Control of the answer).
    std::vector<LoadRequest> fresh;
    static std::mt19937_64 random{std::random_device{}()};
    for (int k = 0; k < iterations; ++k) {
      const long long seconds = 100000 + static_cast<long long>(random() % 1000000000);
      for (const std::string& name : names) {
        fresh.push_back(
            {options.url + signer.sign(uncached_variant(scenario, seconds) + "/" + name), ""});
      }
    }
    auto uncached = run_load(fresh, fresh.size(), cores, 1);
    print_load("uncached", cores, uncached);

    // The same work in this process on as many threads, for the ratio.
    const RenderFn render_one = [&](std::size_t i) -> std::optional<std::string> {
      const Image& image = *usable[i];
      Result<Thumbnail> out = render(
          std::span(reinterpret_cast<const std::uint8_t*>(image.bytes.data()), image.bytes.size()),
          *spec, settings);
      if (!out.ok()) return std::nullopt;
      return std::move(out->bytes);
    };
    const std::size_t jobs = usable.size() * static_cast<std::size_t>(iterations);
    const double in_process =
        throughput(render_one, usable.size(), iterations, static_cast<unsigned>(cores));
    std::printf("  %-9s %5d %8zu %9.1f   uncached over HTTP = %.0f%% of in-process\n", "in-proc",
                cores, jobs, in_process,
                in_process > 0 ? 100.0 * uncached.per_second() / in_process : 0.0);

    // Cached: each image's thumbnail made once, then asked for again and again.
    std::vector<LoadRequest> warm;
    for (const std::string& name : names) {
      warm.push_back({options.url + signer.sign(scenario + "/" + name), ""});
    }
    auto made = run_load(warm, warm.size(), std::min<int>(cores, static_cast<int>(warm.size())), 1);
    auto hits = run_load(warm, options.requests, options.connections, 2);
    print_load("cached", options.connections, hits);
    // 304: the same, revalidated with the ETags the server gave.
    std::vector<LoadRequest> revalidate = warm;
    for (std::size_t i = 0; i < revalidate.size(); ++i) revalidate[i].if_none_match = made.etags[i];
    auto not_modified = run_load(revalidate, options.requests, options.connections, 2);
    print_load("304", options.connections, not_modified);
  }
  std::printf(
      "\nuncached: URLs never asked before, so every request is fetched and transformed; in-proc: "
      "the\n"
      "same renders without HTTP on as many threads. cached/304: answered from the result "
      "cache.\n");
  return 0;
}

long peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

#ifdef THIMBLE_HAVE_VIPS
// libvips' target for the thumbnail Thimble made (`made`): the same size, format and frames.
thimble::bench::VipsTarget vips_target_for(const Thumbnail& made, const ThumbnailSpec& spec,
                                           const RenderSettings& settings, int quality) {
  return {made.size.width, made.size.height, spec.fit == FitMode::kCrop, spec.smart, made.format,
          quality, 9 - std::min(9, settings.avif_speed),  // the same
                                                          // libaom speed
          made.frames > 1};
}
#endif

// The configured quality of `format` when the URL names none.
int configured_quality(ImageFormat format, const RenderSettings& settings) {
  return format == ImageFormat::kWebp   ? settings.webp_quality
         : format == ImageFormat::kAvif ? settings.avif_quality
                                        : settings.jpeg_quality;
}

// `options` with its format() replaced by format(png), or format(png) added.
std::string with_format_png(std::string options) {
  for (const char* name : {"format(webp)", "format(avif)", "format(jpeg)", "format(jpg)"}) {
    if (auto at = options.find(name); at != std::string::npos) {
      return options.replace(at, std::string(name).size(), "format(png)");
    }
  }
  return options + (options.find("filters:") == std::string::npos ? "/filters:" : ":") +
         "format(png)";
}

std::string with_quality(const std::string& options, const std::string& quality) {
  return options + (options.find("filters:") == std::string::npos ? "/filters:" : ":") +
         "quality(" + quality + ")";
}

// --quality-sweep: bytes against perceptual quality for both engines at qualities 50-95 and for
// Thimble's quality(auto), on the JPEG photographs, so the byte saving is read at equal quality
// and not only at equal settings.
int quality_sweep(const std::vector<Image>& images, const std::vector<std::string>& scenarios,
                  const RenderSettings& settings, bool baseline) {
  // Each picture once: the corpus' EXIF examples (exif/) are one photo in eight orientations,
  // which would weigh eight times in the means.
  std::vector<std::size_t> photos;
  bool exif_seen = false;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (!images[i].name.ends_with(".jpg")) continue;
    if (images[i].name.starts_with("exif/")) {
      if (exif_seen) continue;
      exif_seen = true;
    }
    photos.push_back(i);
  }
  auto bytes_of = [&](std::size_t i) {
    return std::span(reinterpret_cast<const std::uint8_t*>(images[i].bytes.data()),
                     images[i].bytes.size());
  };
  struct Point {
    double kb = 0, ssim = 0;
  };
  // Against each engine's own unencoded thumbnail (references[k], one per photo).
  auto point_of = [&](const std::vector<std::string>& outputs,
                      const std::vector<cv::Mat>& unencoded) {
    Point p;
    int scored = 0;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      p.kb += static_cast<double>(outputs[k].size()) / 1024.0;
      const cv::Mat decoded = flatten(decode_thumbnail(outputs[k]));
      if (decoded.empty() || k >= unencoded.size() || unencoded[k].empty()) continue;
      p.ssim += thimble::transform::luma_ssim(decoded, unencoded[k]);
      ++scored;
    }
    p.kb /= static_cast<double>(std::max<std::size_t>(1, outputs.size()));
    p.ssim /= std::max(1, scored);
    return p;
  };
  std::printf(
      "quality sweep: %zu JPEG photographs (each picture once); mean KB and mean luma SSIM of each "
      "engine's thumbnail\n"
      "against its own unencoded one (the same thumbnail written as PNG), so the encoders are\n"
      "compared and not the resizes. \"libvips KB at that SSIM\": libvips' bytes at the same mean\n"
      "SSIM, read off its own sweep (linear between its qualities).\n",
      photos.size());
  struct Row {
    std::string quality;
    Point mine;
    std::optional<Point> theirs;
  };
  for (const std::string& options : scenarios) {
    std::vector<Row> table;
    // Each engine's unencoded thumbnails: the scenario written losslessly.
    std::vector<cv::Mat> own, vips_own;
    {
      const std::string lossless = with_format_png(options);
      Result<ThumbnailSpec> spec = parse_spec(lossless + "/image");
      if (!spec.ok()) {
        std::fprintf(stderr, "scenario '%s': %s\n", options.c_str(),
                     spec.status().message().c_str());
        return 2;
      }
      for (std::size_t i : photos) {
        Result<Thumbnail> made = render(bytes_of(i), *spec, settings);
        own.push_back(made.ok() ? flatten(decode_thumbnail(made->bytes)) : cv::Mat());
#ifdef THIMBLE_HAVE_VIPS
        if (baseline && made.ok()) {
          std::string error;
          vips_own.push_back(flatten(decode_thumbnail(thimble::bench::vips_thumbnail(
              bytes_of(i), vips_target_for(*made, *spec, settings, 100), error))));
        }
#endif
      }
    }
    auto run = [&](const std::string& quality, const RenderSettings& used,
                   std::optional<int> vips_quality) -> bool {
      Result<ThumbnailSpec> spec = parse_spec(with_quality(options, quality) + "/image");
      if (!spec.ok()) {
        std::fprintf(stderr, "scenario '%s': %s\n", options.c_str(),
                     spec.status().message().c_str());
        return false;
      }
      std::vector<std::string> outputs, vips_outputs;
      for (std::size_t i : photos) {
        Result<Thumbnail> made = render(bytes_of(i), *spec, used);
        outputs.push_back(made.ok() ? made->bytes : std::string());
#ifdef THIMBLE_HAVE_VIPS
        if (baseline && vips_quality && made.ok()) {
          std::string error;
          vips_outputs.push_back(thimble::bench::vips_thumbnail(
              bytes_of(i), vips_target_for(*made, *spec, used, *vips_quality), error));
        }
#else
        (void)vips_quality;
#endif
      }
      Row row{quality, point_of(outputs, own), std::nullopt};
      if (!vips_outputs.empty()) row.theirs = point_of(vips_outputs, vips_own);
      table.push_back(row);
      return true;
    };
    for (int quality = 50; quality <= 95; quality += 5) {
      if (!run(std::to_string(quality), settings, quality)) return 2;
    }
    for (double target : {0.95, 0.96, 0.965, 0.97, 0.98, 0.99}) {
      RenderSettings automatic = settings;
      automatic.auto_quality_ssim = target;
      char label[32];
      std::snprintf(label, sizeof label, "auto@%g", target);
      if (!run("auto", automatic, std::nullopt)) return 2;
      table.back().quality = label;
    }
    // libvips' KB at a mean SSIM, linear between the two sweep points around it.
    auto vips_kb_at = [&table](double ssim) -> std::optional<double> {
      for (std::size_t k = 1; k < table.size(); ++k) {
        if (!table[k - 1].theirs || !table[k].theirs) continue;
        const Point& a = *table[k - 1].theirs;
        const Point& b = *table[k].theirs;
        if (ssim < a.ssim || ssim > b.ssim || b.ssim <= a.ssim) continue;
        return a.kb + (b.kb - a.kb) * (ssim - a.ssim) / (b.ssim - a.ssim);
      }
      return std::nullopt;
    };
    std::printf("\n%s\n  %-10s %10s %8s %10s %8s %22s\n", options.c_str(), "quality", "thimble KB",
                "SSIM", "libvips KB", "SSIM", "libvips KB at that SSIM");
    for (const Row& row : table) {
      std::printf("  %-10s %10.2f %8.4f", row.quality.c_str(), row.mine.kb, row.mine.ssim);
      if (row.theirs) {
        std::printf(" %10.2f %8.4f", row.theirs->kb, row.theirs->ssim);
      } else {
        std::printf(" %10s %8s", "", "");
      }
      if (auto kb = vips_kb_at(row.mine.ssim)) {
        std::printf(" %10.2f (%3.0f%% fewer)", *kb, 100.0 * (1.0 - row.mine.kb / *kb));
      }
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 5, warmup = 1;
  std::vector<std::string> scenarios;
  std::string folder;
  bool baseline = true;
  std::string json_path, csv_path, chart_path, key_file;
  fs::path derived_dir = fs::temp_directory_path() / "thimble-bench-derived";
  std::optional<int> avif_speed;
  bool sweep = false;
  ServerOptions server;
  std::vector<ReportRow> rows;
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
    } else if (arg == "--derived" && i + 1 < argc) {
      derived_dir = argv[++i];
    } else if (arg == "--avif-speed" && i + 1 < argc) {
      avif_speed = std::clamp(std::atoi(argv[++i]), 0, 10);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--chart" && i + 1 < argc) {
      chart_path = argv[++i];
    } else if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--no-baseline") {
      baseline = false;
    } else if (arg == "--quality-sweep") {
      sweep = true;
    } else if (arg == "--server" && i + 1 < argc) {
      server.url = argv[++i];
      while (server.url.ends_with("/")) server.url.pop_back();
    } else if (arg == "--key-file" && i + 1 < argc) {
      key_file = argv[++i];
    } else if (arg == "--connections" && i + 1 < argc) {
      server.connections = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--requests" && i + 1 < argc) {
      server.requests = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    } else if (!arg.starts_with("--") && folder.empty()) {
      folder = arg;
    } else {
      std::cerr << "thimble-bench: bad argument '" << arg << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (scenarios.empty() && sweep) {
    scenarios = {"fit-in/300x200", "fit-in/300x200/filters:format(webp)",
                 "fit-in/300x200/filters:format(avif)"};
  }
  if (scenarios.empty()) {
    scenarios = {"fit-in/300x200",
                 "300x300",
                 "fit-in/1280x1280",
                 "fit-in/300x200/filters:format(webp)",
                 "fit-in/300x200@alpha",
                 "300x300/smart",
                 "fit-in/300x200/filters:format(avif)",
                 "fit-in/300x200@heic",
                 "fit-in/300x200@avif",
                 "fit-in/200x200@gif"};
  }
  if (folder.empty()) folder = fs::exists("../shared/corpus") ? "../shared/corpus" : "conf/samples";
  std::vector<Image> images = load_images(folder);
  if (images.empty()) {
    std::cerr << "thimble-bench: no images in " << folder << "\n";
    return 1;
  }

  if (!server.url.empty()) {
    Result<std::string> key = thimble::signing::tool_key(key_file, std::getenv("THIMBLE_KEY"));
    if (!key.ok()) {
      std::cerr << "thimble-bench: --server: " << key.status().message() << "\n";
      return 2;
    }
    server.key = std::move(key).value();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    std::printf("thimble-bench: %s, %u cores, build %s\n", cpu_model().c_str(),
                std::thread::hardware_concurrency(), THIMBLE_BUILD_TYPE);
    return server_mode(server, images, scenarios, iterations);
  }

  char machine[256];
  std::snprintf(machine, sizeof machine, "%s, %u cores, build %s, OpenCV %s", cpu_model().c_str(),
                std::thread::hardware_concurrency(), THIMBLE_BUILD_TYPE, CV_VERSION);
  std::printf("thimble-bench: %s\n", machine);
  if (std::string(THIMBLE_BUILD_TYPE) != "Release" || THIMBLE_SANITIZED) {
    std::printf(
        "WARNING: not an optimised Release build without sanitizers: numbers are not "
        "representative\n");
  }
#ifdef THIMBLE_HAVE_VIPS
  if (baseline && !thimble::bench::start_vips(argv[0])) {
    std::fprintf(stderr, "thimble-bench: libvips failed to start; running without baseline\n");
    baseline = false;
  }
  if (baseline) std::printf("baseline: libvips %s\n", thimble::bench::libvips_version().c_str());
#else
  if (baseline) std::printf("baseline: none (built without libvips-dev)\n");
  baseline = false;
#endif
  std::printf("%zu images from %s, %d warm-up + %d timed iterations each\n\n", images.size(),
              folder.c_str(), warmup, iterations);

  use_one_thread_per_render();
  RenderSettings settings;
  if (avif_speed) settings.avif_speed = *avif_speed;
  // Reference pixels for the quality figure and source sizes for megapixels/s, decoded once.
  std::vector<cv::Mat> references;
  std::vector<double> megapixels;
  for (const auto& image : images) {
    // Alpha kept (then composited like the thumbnails); otherwise colour with EXIF orientation
    // applied, as the thumbnails are.
    Result<ImageInfo> info = sniff(
        std::span(reinterpret_cast<const std::uint8_t*>(image.bytes.data()), image.bytes.size()));
    const int flags = info.ok() && info->has_alpha ? cv::IMREAD_UNCHANGED : cv::IMREAD_COLOR;
    cv::Mat full = flatten(cv::imdecode(cv::Mat(1, static_cast<int>(image.bytes.size()), CV_8U,
                                                const_cast<char*>(image.bytes.data())),
                                        flags));
    if (full.empty() && info.ok()) {
      // HEIC and AVIF, which OpenCV does not read: Thimble's decoder, then their irot/imir.
      full = flatten(decode_thumbnail(image.bytes));
      if (!full.empty()) thimble::transform::apply_orientation(full, info->orientation);
    }
    megapixels.push_back(static_cast<double>(full.total()) / 1e6);
    references.push_back(std::move(full));
  }
  if (sweep) return quality_sweep(images, scenarios, settings, baseline);
  std::printf("  %-8s %7s %7s %7s %7s %7s %8s %8s %7s %7s %6s %6s  %s\n", "engine", "p50 ms", "p95",
              "p99", "min", "max", "img/s 1T", "img/s NT", "MP/s", "KB out", "PSNR", "SSIM",
              "sniff/decode/resize/encode ms");
  for (const auto& entry : scenarios) {
    // `OPTIONS@alpha`: the scenario on the images with an alpha channel only; `@heic`, `@avif`,
    // `@gif`: on the JPEG photographs made into that format (derived.h).
    const std::size_t at = entry.rfind('@');
    const std::string kind = at == std::string::npos ? "" : entry.substr(at + 1);
    const bool alpha_only = kind == "alpha";
    const bool derived = kind == "heic" || kind == "avif" || kind == "gif";
    if (!kind.empty() && !alpha_only && !derived) {
      std::fprintf(stderr, "scenario '%s': unknown @%s\n", entry.c_str(), kind.c_str());
      return 2;
    }
    const std::string scenario = kind.empty() ? entry : entry.substr(0, at);
    Result<ThumbnailSpec> spec = parse_spec(scenario + "/image");
    if (!spec.ok()) {
      std::fprintf(stderr, "scenario '%s': %s\n", entry.c_str(), spec.status().message().c_str());
      return 2;
    }
    std::vector<const Image*> chosen;  // the images themselves stay where they are
    std::vector<cv::Mat> chosen_references;
    std::vector<double> chosen_megapixels;
    std::deque<Image> derived_images;
    if (derived) {
      std::vector<std::pair<std::string, std::string>> photos;
      std::vector<std::size_t> photo_index;
      for (std::size_t i = 0; i < images.size(); ++i) {
        if (!images[i].name.ends_with(".jpg")) continue;
        photos.emplace_back(images[i].name, images[i].bytes);
        photo_index.push_back(i);
      }
      std::printf("%s: making the %s originals (kept in %s)...\n", entry.c_str(), kind.c_str(),
                  derived_dir.c_str());
      std::fflush(stdout);
      for (auto& made : thimble::bench::derive(kind, photos, derived_dir)) {
        const std::size_t i = photo_index[made.source];
        derived_images.push_back({made.name, std::move(made.bytes)});
        chosen.push_back(&derived_images.back());
        chosen_references.push_back(references[i]);
        chosen_megapixels.push_back(kind == "gif" ? 8 * 480 * 270 / 1e6 : megapixels[i]);
      }
    }
    for (std::size_t i = 0; i < images.size() && !derived; ++i) {
      if (alpha_only) {
        Result<ImageInfo> info = sniff(std::span(
            reinterpret_cast<const std::uint8_t*>(images[i].bytes.data()), images[i].bytes.size()));
        if (!info.ok() || !info->has_alpha) continue;
      }
      chosen.push_back(&images[i]);
      chosen_references.push_back(references[i]);
      chosen_megapixels.push_back(megapixels[i]);
    }
    std::printf("%s (%zu images)\n", entry.c_str(), chosen.size());
    if (chosen.empty()) continue;
    auto bytes_of = [&](std::size_t i) {
      return std::span(reinterpret_cast<const std::uint8_t*>(chosen[i]->bytes.data()),
                       chosen[i]->bytes.size());
    };

    // Thimble. The first render of each image also fixes the libvips target, so both engines
    // make thumbnails of the same size and format.
    std::vector<std::string> outputs(chosen.size());
    std::vector<std::optional<Thumbnail>> firsts(chosen.size());
    StageTimes sum;
    int rendered = 0;
    RenderFn thimble_one = [&](std::size_t i) -> std::optional<std::string> {
      Result<Thumbnail> out = render(bytes_of(i), *spec, settings);
      if (!out.ok()) return std::nullopt;
      return std::move(out->bytes);
    };
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      Result<Thumbnail> out = render(bytes_of(i), *spec, settings);
      if (!out.ok()) continue;
      outputs[i] = std::move(out->bytes);
      sum.sniff_ms += out->times.sniff_ms;
      sum.decode_ms += out->times.decode_ms;
      // The "resize" column: everything between the decode and the encode, smart/ included.
      sum.transform_ms += out->times.smart_ms + out->times.transform_ms;
      sum.encode_ms += out->times.encode_ms;
      ++rendered;
      firsts[i] = std::move(*out);
    }
    EngineRun thimble_run;
    measure(entry + " (thimble)", thimble_one, chosen.size(), warmup, iterations, chosen_megapixels,
            thimble_run);
    const bool with_quality = !spec->smart && kind != "gif";
    summarise_outputs(outputs, chosen_references, with_quality, thimble_run);
    char stages[64];
    double n = std::max(1, rendered);
    std::snprintf(stages, sizeof stages, "%.2f/%.2f/%.2f/%.2f", sum.sniff_ms / n, sum.decode_ms / n,
                  sum.transform_ms / n, sum.encode_ms / n);
    print_row("thimble", thimble_run, stages);
    rows.push_back({entry,
                    "thimble",
                    thimble_run,
                    {.sniff_ms = sum.sniff_ms / n,
                     .decode_ms = sum.decode_ms / n,
                     .transform_ms = sum.transform_ms / n,
                     .encode_ms = sum.encode_ms / n}});

#ifdef THIMBLE_HAVE_VIPS
    if (baseline) {
      std::vector<thimble::bench::VipsTarget> targets(chosen.size());
      for (std::size_t i = 0; i < chosen.size(); ++i) {
        if (!firsts[i]) continue;
        targets[i] = vips_target_for(
            *firsts[i], *spec, settings,
            spec->quality.value_or(configured_quality(firsts[i]->format, settings)));
      }
      RenderFn vips_one = [&](std::size_t i) -> std::optional<std::string> {
        if (!firsts[i]) return std::nullopt;
        std::string error;
        std::string out = thimble::bench::vips_thumbnail(bytes_of(i), targets[i], error);
        if (out.empty()) return std::nullopt;
        return out;
      };
      std::vector<std::string> vips_outputs(chosen.size());
      for (std::size_t i = 0; i < chosen.size(); ++i) vips_outputs[i] = vips_one(i).value_or("");
      EngineRun vips_run;
      measure(entry + " (libvips)", vips_one, chosen.size(), warmup, iterations, chosen_megapixels,
              vips_run);
      summarise_outputs(vips_outputs, chosen_references, with_quality, vips_run);
      print_row("libvips", vips_run, "");
      rows.push_back({entry, "libvips", vips_run, {}});
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      std::printf(
          "  thimble/libvips: p50 latency x%.2f, throughput 1T x%.2f, NT x%.2f",
          ratio(percentile(thimble_run.latencies_ms, 0.5), percentile(vips_run.latencies_ms, 0.5)),
          ratio(thimble_run.single_thread_per_s, vips_run.single_thread_per_s),
          ratio(thimble_run.all_cores_per_s, vips_run.all_cores_per_s));
      if (thimble_run.median_psnr_db && vips_run.median_psnr_db) {
        std::printf(", PSNR %+.2f dB", *thimble_run.median_psnr_db - *vips_run.median_psnr_db);
      }
      if (thimble_run.mean_ssim && vips_run.mean_ssim) {
        std::printf(", SSIM %+.4f", *thimble_run.mean_ssim - *vips_run.mean_ssim);
      }
      std::printf(", bytes x%.2f", ratio(thimble_run.mean_output_kb, vips_run.mean_output_kb));
      std::printf("\n");
    }
#endif
  }
  std::printf(
      "\n1T: one image at a time on one thread; NT: one image per thread on all %u cores.\n"
      "MP/s: source megapixels per second on one thread. PSNR: median dB per image against the "
      "source\n"
      "area-resized to the same size; SSIM: mean luma SSIM against the same (neither measured "
      "for smart\n"
      "crops or animations). Peak RSS %ld MB.\n",
      std::thread::hardware_concurrency(), peak_rss_mb());
  std::string machine_line = machine;
#ifdef THIMBLE_HAVE_VIPS
  if (baseline) machine_line += ", libvips " + thimble::bench::libvips_version();
#endif
  if (!json_path.empty() && !write_json(json_path, rows, machine_line)) {
    std::fprintf(stderr, "thimble-bench: cannot write %s\n", json_path.c_str());
    return 1;
  }
  if (!csv_path.empty() && !write_csv(csv_path, rows)) {
    std::fprintf(stderr, "thimble-bench: cannot write %s\n", csv_path.c_str());
    return 1;
  }
  if (!chart_path.empty() && !write_chart(chart_path, rows)) {
    std::fprintf(stderr, "thimble-bench: cannot write %s\n", chart_path.c_str());
    return 1;
  }
  return 0;
}
