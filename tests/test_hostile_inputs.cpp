// Hostile originals and URLs against the real server: each gets its documented status (README,
// "What Thimble answers") without a crash, a hang or a leaked descriptor, and the server keeps
// serving. The time each took is printed for the report; only a hang guard is asserted.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>
#include <vector>

#include "format_tools.h"
#include "hostile_images.h"
#include "icc_profiles.h"
#include "image_writer.h"
#include "raw_socket.h"
#include "thimble_process.h"

using namespace thimble;
using namespace std::chrono_literals;

namespace {

std::string encoded(const cv::Mat& image, const char* extension) {
  std::vector<std::uint8_t> bytes;
  REQUIRE(cv::imencode(extension, image, bytes));
  return {bytes.begin(), bytes.end()};
}

std::string u16be(int v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}

// `jpeg` with an APP1 Exif segment holding `tiff` right after its SOI marker.
// `jpeg` with an APP2 ICC_PROFILE segment: part `sequence` of `count`, holding `data`.
std::string with_icc_part(const std::string& jpeg, int sequence, int count,
                          const std::string& data) {
  const std::string payload = std::string("ICC_PROFILE\0", 12) + static_cast<char>(sequence) +
                              static_cast<char>(count) + data;
  return jpeg.substr(0, 2) + "\xFF\xE2" + u16be(static_cast<int>(payload.size()) + 2) + payload +
         jpeg.substr(2);
}

std::string with_exif(const std::string& jpeg, const std::string& tiff) {
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  return jpeg.substr(0, 2) + "\xFF\xE1" + u16be(static_cast<int>(payload.size()) + 2) + payload +
         jpeg.substr(2);
}

// A big-endian TIFF whose one IFD entry is Orientation = `value`.
std::string orientation_tiff(int value) {
  return std::string("MM\0*\0\0\0\x08", 8) + u16be(1) + u16be(0x0112) + u16be(3) +
         std::string("\0\0\0\x01", 4) + u16be(value) + u16be(0) + std::string(4, '\0');
}

// A PNG of `width` x `height` grey pixels (filter byte 0 per row), with `extra` chunks.
std::string grey_png(int width, int height, const std::string& extra = {}) {
  std::string rows;
  for (int y = 0; y < height; ++y) rows += std::string(1, '\0') + std::string(width, '\x80');
  return test::png_file(width, height, 0, 8, rows, extra);
}

// A PNG header claiming `width` x `height`, with no pixel data at all.
std::string png_claiming(int width, int height) {
  std::string header = test::be32(static_cast<std::uint32_t>(width)) +
                       test::be32(static_cast<std::uint32_t>(height)) + std::string{8, 2, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + test::png_chunk("IHDR", header) +
         std::string(3000, '\0');
}

}  // namespace

TEST_CASE("hostile originals and URLs get their documented status, and the server keeps serving") {
  test::ThimbleProcess server("{host: 127.0.0.1, workers: 2, access_log: false}",
                              "limits: {max_decoder_memory_bytes: 268435456}");
  const std::filesystem::path& root = server.originals();
  const std::string photo = test::read_file(root / "photos/storm.jpg");
  const cv::Mat small =
      cv::imread((root / "photos/storm.jpg").string(), cv::IMREAD_REDUCED_COLOR_8);
  const std::string small_jpeg = encoded(small, ".jpg");
  const std::string png = encoded(small, ".png");
  const std::string webp = encoded(small, ".webp");
  // zlib bombs: 64 MB of zeros compress to about 64 KB.
  const std::string bomb = test::zlib_compress(std::string(64 << 20, '\0'));
  cv::Mat deep(40, 60, CV_16UC3, cv::Scalar(1000, 30000, 65535));
  const cv::Mat tile_ready = small(cv::Rect(0, 0, small.cols & ~3, small.rows & ~3)).clone();
  const std::string avif = test::avif_of(tile_ready);
  const std::string heic = test::heic_of(tile_ready);
  // Odd sides: libheif writes one tile a pixel larger, cropped by a grid description in idat
  // (version, flags, rows - 1, columns - 1, then the 16-bit width at offset 8 from the box type).
  const std::string odd_heic = test::heic_of(small(cv::Rect(0, 0, 101, 67)).clone());
  const std::string side_30000("\x00\x00\x75\x30", 4);
  const std::string animated = test::gif_of_frames(12, 64);
  // The storm photo as a progressive 4:2:0 JPEG: at fit-in/100x100 it is decoded from its DC
  // scans alone (jpeg_dc.h), chroma with the 2x2 transform.
  std::vector<std::uint8_t> progressive_buffer;
  REQUIRE(cv::imencode(".jpg", cv::imread((root / "photos/storm.jpg").string()), progressive_buffer,
                       {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  const std::string progressive(progressive_buffer.begin(), progressive_buffer.end());

  struct Original {
    const char* name;
    std::string bytes;
    int status;
  };
  const Original originals[] = {
      {"truncated-header.jpg", photo.substr(0, 300), 415},
      {"truncated-pixels.jpg", photo.substr(0, photo.size() / 2), 200},  // grey below the cut
      {"truncated.png", png.substr(0, png.size() / 2), 415},
      {"progressive-420.jpg", progressive, 200},
      {"truncated-header-progressive-420.jpg", progressive.substr(0, 120), 415},  // before SOF2
      // Cut inside the DC scans: the ordinary decode, grey below the cut as for a baseline file.
      {"truncated-dc-progressive-420.jpg", progressive.substr(0, 1500), 200},
      {"truncated.webp", webp.substr(0, webp.size() / 2), 415},
      {"empty.jpg", "", 415},
      {"text.jpg", "<html>this is not an image</html>\n", 415},
      {"iccp-bomb.png", grey_png(64, 48, test::png_chunk("iCCP", std::string("icc\0\0", 5) + bomb)),
       200},
      {"ztxt-bomb.png",
       grey_png(64, 48, test::png_chunk("zTXt", std::string("Comment\0\0", 9) + bomb)), 200},
      {"broken-exif.jpg", with_exif(small_jpeg, std::string("MM\0*\xff\xff\xff\xf0", 8)), 200},
      // Colour profiles: converted, or ignored (and logged) when they cannot be used.
      {"icc-p3.jpg", with_icc_part(small_jpeg, 1, 1, test::display_p3_profile()), 200},
      {"icc-garbage.jpg", with_icc_part(small_jpeg, 1, 1, std::string(60000, '\xa5')), 200},
      {"icc-part-missing.jpg", with_icc_part(small_jpeg, 1, 3, test::display_p3_profile()), 200},
      {"icc-part-twice.jpg", with_icc_part(with_icc_part(small_jpeg, 1, 2, "abc"), 1, 2, "abc"),
       200},
      {"icc-grey.jpg", with_icc_part(small_jpeg, 1, 1, test::grey_profile()), 200},
      {"exif-loop.jpg", with_exif(small_jpeg, std::string("MM\0*\0\0\0\x08", 8) + u16be(60000)),
       200},
      {"orientation-9.jpg", with_exif(small_jpeg, orientation_tiff(9)), 200},
      {"orientation-65535.jpg", with_exif(small_jpeg, orientation_tiff(65535)), 200},
      {"deep.png", encoded(deep, ".png"), 200},
      {"cmyk.jpg", test::write_jpeg(cv::Mat(40, 60, CV_8UC4, cv::Scalar(0, 255, 255, 0))), 200},
      {"one.png", grey_png(1, 1), 200},
      {"tall.png", grey_png(1, 29000), 200},
      {"taller.png", grey_png(1, 65000), 413},                // over limits.max_source_dimension
      {"claims-30000.png", png_claiming(30000, 30000), 413},  // 3 KB claiming 900 MP
      {"claims-9000.png", png_claiming(9000, 9000), 415},     // in the limits, but no pixels
      // A real 32767x32767 frame behind `FF 00 <len>`, a fake 16x16 one where a sniffer that
      // reads FF 00 as a segment lands: the sniffer reads markers as libjpeg does.
      {"hidden-frame.jpg", test::jpeg_with_hidden_frame(32767, 32767, false), 413},
      {"hidden-frame-progressive.jpg", test::jpeg_with_hidden_frame(32767, 32767, true), 413},
      {"hidden-frame-small.jpg", test::jpeg_with_hidden_frame(640, 480, false), 200},
      // 8000x8000 grey, one DC scan and 20,000 empty AC scans: over limits.max_jpeg_scans.
      {"empty-scans.jpg", test::jpeg_with_empty_scans(8000, 8000, 20000), 415},
      // 100x100 rows and then 256 MB of zeros in the same zlib stream: never inflated.
      {"inflates-past-rows.png", test::png_inflating_past_rows(100, 100, 256u << 20), 200},
      // 4:4:4 progressive at 9000x9000: 486 MB of coefficients, over a 256 MB decoder budget.
      // HEIC, AVIF and GIF.
      {"good.heic", heic, 200},
      {"good.avif", avif, 200},
      {"animated.gif", animated, 200},
      {"truncated.heic", heic.substr(0, heic.size() / 2), 415},
      {"truncated.avif", avif.substr(0, avif.size() / 2), 415},
      {"truncated-header.avif", avif.substr(0, 200), 415},
      {"truncated.gif", animated.substr(0, 40), 415},
      {"claims-30000.avif", test::patched(avif, "ispe", 8, side_30000 + side_30000), 413},
      {"claims-30000.heic", test::patched(heic, "ispe", 8, side_30000 + side_30000), 413},
      {"missing-primary.heic", test::patched(heic, "pitm", 8, "\x7f\x7f"), 415},
      {"grid-of-itself.avif", test::grid_referring_to_itself(tile_ready), 415},
      {"odd-sides.heic", odd_heic, 200},
      {"grid-description-disagrees.heic", test::patched(odd_heic, "idat", 8, "\x75\x30"), 415},
      {"claims-65535.gif", test::gif_claiming(65535, 65535), 413},
      {"10000-frames.gif", test::gif_of_frames(10000, 100), 413},
      {"icc-garbage.heic",
       test::heic_of_jpeg(test::write_jpeg(tile_ready, 90, false, false, std::string(3000, 'x'))),
       200},
      {"coefficients-444.jpg",
       test::write_jpeg(cv::Mat(9000, 9000, CV_8UC3, cv::Scalar(90, 140, 200)), 50, true, true),
       413},
  };
  for (const Original& o : originals) test::write_file(root / o.name, o.bytes);

  test::Client client;
  // A good request, every 20 ms on its own connection, all along: the slowest answer it got
  // during each hostile request is reported with it.
  std::mutex probe_mutex;
  double slowest_probe_ms = 0;
  std::atomic<bool> probing{true};
  std::thread prober([&] {
    test::Client probe;
    while (probing) {
      const auto sent = std::chrono::steady_clock::now();
      const long status = probe.request(server.base() + "/healthz").status;
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent)
              .count();
      {
        std::lock_guard lock(probe_mutex);
        slowest_probe_ms = std::max(slowest_probe_ms, status == 200 ? ms : 1e9);
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  auto expect = [&](const std::string& what, const std::string& url, int status) {
    CAPTURE(what);
    test::reset_peak_rss(server.pid());
    {
      std::lock_guard lock(probe_mutex);
      slowest_probe_ms = 0;
    }
    const auto start = std::chrono::steady_clock::now();
    test::Reply r = client.request(url);
    const auto took =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    CHECK(r.status == status);
    CHECK(took < 10s);  // a hang guard, not a speed target
    if (r.status >= 400) {
      CHECK_FALSE(r.body.empty());  // a short message naming the problem
      CHECK(r.body.size() < 300);   // that does not echo a hostile URL back at length
    }
    double probe_ms = 0;
    {
      std::lock_guard lock(probe_mutex);
      probe_ms = slowest_probe_ms;
    }
    CHECK(probe_ms < 1000);  // a good request is never held up (a hang guard)
    MESSAGE(what << ": " << r.status << " in " << took.count() << " ms, peak RSS "
                 << test::peak_rss_mib(server.pid()) << " MiB, /healthz meanwhile at most "
                 << probe_ms << " ms" << (r.status >= 400 ? ": " + r.body : std::string()));
  };
  for (const Original& o : originals) {
    expect(o.name, server.url("fit-in/100x100/" + std::string(o.name)), o.status);
  }

  std::string ten_thousand = "fit-in/100x100/filters:";
  for (int i = 0; i < 10000; ++i) ten_thousand += "grayscale():";
  std::string thirty_three = "fit-in/100x100/filters:";
  for (int i = 0; i < 33; ++i) thirty_three += "grayscale():";
  const struct {
    const char* what;
    std::string url;
    int status;
  } urls[] = {
      {"%00 in the key", server.url("fit-in/100x100/photos/storm.jpg%00.png"), 400},
      {"%00 in an option", server.url("fit-in/100x100%00/photos/storm.jpg"), 400},
      {"overlong segment", server.url("fit-in/100x100/" + std::string(300, 'k') + ".jpg"), 400},
      {"overlong URL", server.url("fit-in/100x100/" + std::string(9000, 'k') + ".jpg"), 414},
      // 120 KB: over server.max_request_bytes, refused by the HTTP layer, connection closed.
      {"10,000 filters", server.url(ten_thousand + "quality(80)/photos/storm.jpg"), 431},
      {"33 filters", server.url(thirty_three + "quality(80)/photos/storm.jpg"), 400},
      {"nested parentheses",
       server.url("filters:blur(" + std::string(2000, '(') + std::string(2000, ')') +
                  ")/photos/storm.jpg"),
       400},
      {"unbalanced parentheses", server.url("filters:blur(((1)/photos/storm.jpg"), 400},
      {"../ in the key", server.url("fit-in/100x100/../secret.jpg"), 403},
      {"%2e%2e/ in the key", server.url("fit-in/100x100/%2e%2e/secret.jpg"), 403},
      {"bad signature", server.base() + "/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/photos/storm.jpg", 403},
  };
  for (const auto& u : urls) expect(u.what, u.url, u.status);

  // Bytes no client library sends: each is refused with one 4xx, and its connection closed, so
  // nothing sent after it on that connection is answered out of step.
  const std::string valid_after = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string raw[] = {
      std::string("GET /unsafe/\0/a.jpg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 60),
      "\x01\x02\x03 / HTTP/1.1\r\n\r\n" + valid_after,
      "GET / HTTP/9.9\r\n\r\n" + valid_after,
      "GET / HTTP/1.1\r\nHost: " + std::string(20000, 'h') + "\r\n\r\n" + valid_after,
  };
  for (const std::string& request : raw) {
    const std::string answer = test::raw_exchange(server.port(), request);
    CAPTURE(answer.substr(0, 80));
    REQUIRE(answer.size() > 12);
    const int status = std::atoi(answer.c_str() + 9);
    MESSAGE("raw request of " << request.size() << " bytes: " << status);
    CHECK((status / 100 == 4 || status == 505));
    CHECK(test::count_answers(answer) == 1);
  }
  // Still serving, still healthy.
  expect("a good URL after all that", server.url("fit-in/100x100/photos/storm.jpg"), 200);
  probing = false;
  prober.join();
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "the processing deadline stops a decode: Thimble's 503 at the deadline, good requests "
    "meanwhile") {
  // Scans are allowed here, so only the deadline can stop the decode (about 6 ms a scan).
  test::ThimbleProcess server(
      "{host: 127.0.0.1, workers: 2, access_log: false, "
      "request_timeout_ms: 1500}",
      "limits: {max_jpeg_scans: 10000}");
  test::write_file(server.originals() / "scans.jpg",
                   test::jpeg_with_empty_scans(8000, 8000, 20000));
  std::vector<std::thread> attackers;
  std::vector<long> statuses(2);
  std::vector<double> took(2);
  for (int i = 0; i < 2; ++i) {  // both workers
    attackers.emplace_back([&, i] {
      test::Client client;
      const auto start = std::chrono::steady_clock::now();
      statuses[static_cast<std::size_t>(i)] =
          client.request(server.url("fit-in/" + std::to_string(100 + i) + "x100/scans.jpg")).status;
      took[static_cast<std::size_t>(i)] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  }
  std::this_thread::sleep_for(200ms);
  test::Client good;
  const auto start = std::chrono::steady_clock::now();
  const long healthy = good.request(server.base() + "/healthz").status;
  const double health_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (auto& t : attackers) t.join();
  CHECK(healthy == 200);
  for (int i = 0; i < 2; ++i) {
    CHECK(statuses[static_cast<std::size_t>(i)] == 503);
    CHECK(took[static_cast<std::size_t>(i)] < 4.0);  // the deadline, not 2 x timeout + 5 s
    MESSAGE("20,000-scan JPEG with a 1.5 s deadline: "
            << statuses[static_cast<std::size_t>(i)] << " in " << took[static_cast<std::size_t>(i)]
            << " s");
  }
  MESSAGE("/healthz meanwhile: " << health_ms << " ms");
  // Once they are stopped, a thumbnail is made at once.
  CHECK(good.request(server.url("fit-in/100x100/photos/storm.jpg")).status == 200);
  CHECK(server.stop() == 0);
}
