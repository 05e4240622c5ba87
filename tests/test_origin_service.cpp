// proxy/OriginService over a real FileSource: statuses, headers, revalidation, path safety.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <utime.h>

#include <functional>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cache/result_cache.h"
#include "format_tools.h"
#include "proxy/common/header_policy.h"
#include "proxy/service/origin_service.h"
#include "proxy/service/status_table.h"
#include "proxy/sources/file_source.h"
#include "service_client.h"
#include "signing/signer.h"
#include "support.h"
#include "transform/pipeline.h"
#include "transform/sniff.h"

using namespace thimble;
using namespace thimble::proxy;

namespace {

// A served folder with a few originals and the whole service around it.
struct Fixture {
  test::TempDir dir;
  std::filesystem::path root = dir.path() / "originals";
  SystemClock clock;
  signing::UrlSigner signer{{"test-key", "old-key"}, /*allow_unsafe=*/false};
  std::unique_ptr<FileSource> source;
  cache::ResultCache results{64 << 20, 4, clock};
  std::unique_ptr<OriginService> service;
  WorkerPool workers{2, 64};  // the work runs on workers, as in the server

  explicit Fixture(bool auto_webp = false, bool keep_originals = true,
                   const std::function<void(OriginOptions&)>& tune = nullptr) {
    transform::use_one_thread_per_render();  // as the server does: no OpenCV threads of its own
    std::filesystem::create_directories(root / "photos");
    std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"), root / "photos/storm.jpg");
    std::filesystem::copy_file(test::corpus("png/mate_Gulp_alpha.png"), root / "gulp.png");
    test::write_file(root / "notes.jpg", "this is not an image");
    test::write_file(dir.path() / "secret.jpg", "outside the root");
    std::filesystem::create_symlink(dir.path() / "secret.jpg", root / "escape.jpg");
    std::filesystem::create_symlink("photos/storm.jpg", root / "inside-link.jpg");
    source = std::make_unique<FileSource>(root.string(), 8 << 20);
    OriginOptions options;
    options.output.auto_webp = auto_webp;
    options.cache_control.max_age = 3600;
    if (!keep_originals) options.original_cache.memory_bytes = 0;
    if (tune) tune(options);
    ServiceDependencies with(*source, results, clock);
    with.workers = &workers;
    service = std::make_unique<OriginService>(options, signer, std::move(with));
  }

  OriginResponse get(const std::string& options_and_image, const std::string& method = "GET",
                     const std::string& if_none_match = "", const std::string& accept = "",
                     const std::string& if_modified_since = "") {
    OriginRequest request = test::request(method, signer.sign(options_and_image),
                                          {{"accept", accept},
                                           {"if-none-match", if_none_match},
                                           {"if-modified-since", if_modified_since}});
    return test::serve(*service, request);
  }
};

std::string header(const OriginResponse& r, const char* name) {
  const std::string* value = r.header(name);
  return value ? *value : std::string("<absent>");
}

}  // namespace

TEST_CASE("a signed thumbnail is answered with the headers a CDN needs") {
  Fixture f;
  OriginResponse r = f.get("fit-in/300x200/photos/storm.jpg");
  REQUIRE(r.status == 200);
  CHECK(header(r, "Content-Type") == "image/jpeg");
  CHECK(header(r, "Cache-Control") == "public, max-age=3600");
  CHECK(header(r, "Expires") != "<absent>");
  CHECK(header(r, "Last-Modified") != "<absent>");
  CHECK(header(r, "Vary") == "<absent>");
  const std::string etag = header(r, "ETag");
  CHECK(etag.size() > 20);
  CHECK(etag.front() == '"');
  CHECK(etag.substr(0, 3) != "W/\"");
  REQUIRE(r.body);
  cv::Mat img = cv::imdecode(
      cv::Mat(1, static_cast<int>(r.body->size()), CV_8U, const_cast<char*>(r.body->data())),
      cv::IMREAD_COLOR);
  CHECK(img.cols == 300);
  CHECK(img.rows == 200);
  CHECK(r.cache_outcome == "miss");
}

TEST_CASE("the second identical request is served from the result cache with the same ETag") {
  Fixture f;
  OriginResponse first = f.get("fit-in/300x200/photos/storm.jpg");
  // Same transform spelled differently: same cache entry, same ETag.
  OriginResponse second = f.get("fit-in/0300x200/center/middle/photos/storm.jpg");
  CHECK(second.cache_outcome == "hit");
  CHECK(header(second, "ETag") == header(first, "ETag"));
  CHECK(*second.body == *first.body);
  CHECK(f.results.stats().insertions == 1);
  // The ETag depends on what is produced, not on the request bytes, but changes with the output.
  OriginResponse other = f.get("fit-in/300x201/photos/storm.jpg");
  CHECK(header(other, "ETag") != header(first, "ETag"));
}

TEST_CASE("If-None-Match answers 304 from the cache and, after a restart, from the source") {
  Fixture f;
  OriginResponse first = f.get("fit-in/300x200/photos/storm.jpg");
  const std::string etag = header(first, "ETag");
  OriginResponse cached = f.get("fit-in/300x200/photos/storm.jpg", "GET", etag);
  CHECK(cached.status == 304);
  CHECK(cached.body == nullptr);
  CHECK(header(cached, "ETag") == etag);
  CHECK(header(cached, "Cache-Control") == "public, max-age=3600");
  CHECK(cached.cache_outcome == "hit");

  // A fresh process has an empty cache: the source's validator still proves the copy is current.
  cache::ResultCache empty(64 << 20, 1, f.clock);
  OriginOptions options;
  options.cache_control.max_age = 3600;
  OriginService fresh(options, f.signer, {*f.source, empty, f.clock});
  OriginRequest request = test::request("GET", f.signer.sign("fit-in/300x200/photos/storm.jpg"),
                                        {{"if-none-match", "W/" + etag + ", \"other\""}});
  OriginResponse revalidated = test::serve(fresh, request);
  CHECK(revalidated.status == 304);
  CHECK(header(revalidated, "ETag") == etag);
  CHECK(empty.stats().insertions == 0);  // nothing was transformed

  // Once the original changes, the old ETag no longer matches.
  struct utimbuf times {
    1000000000, 1000000000
  };
  REQUIRE(utime((f.root / "photos/storm.jpg").c_str(), &times) == 0);
  OriginResponse changed = test::serve(fresh, request);
  CHECK(changed.status == 200);
  CHECK(header(changed, "ETag") != etag);
}

TEST_CASE("If-Modified-Since is honoured from the source's modification time") {
  Fixture f;
  OriginResponse first = f.get("fit-in/100x100/photos/storm.jpg");
  const std::string last_modified = header(first, "Last-Modified");
  CHECK(f.get("fit-in/100x100/photos/storm.jpg", "GET", "", "", last_modified).status == 304);
  CHECK(f.get("fit-in/100x100/photos/storm.jpg", "GET", "", "", "Thu, 01 Jan 1970 00:00:01 GMT")
            .status == 200);
  // If-None-Match wins over If-Modified-Since.
  CHECK(f.get("fit-in/100x100/photos/storm.jpg", "GET", "\"nope\"", "", last_modified).status ==
        200);
}

TEST_CASE("errors get the right status, a short message and the right cache lifetime") {
  Fixture f;
  struct Row {
    OriginRequest request;
    int status;
    const char* cache_control;
    const char* message;
  };
  const std::string dotdot = "fit-in/100x100/../secret.jpg";
  const Row rows[] = {
      {test::request("GET", "/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/fit-in/100x100/photos/storm.jpg"), 403,
       "public, max-age=60", "signature does not match"},
      {test::request("GET", "/unsafe/fit-in/100x100/photos/storm.jpg"), 403, "public, max-age=60",
       "unsigned (unsafe) URLs are not allowed"},
      {test::request("GET", f.signer.sign("filters:sepia()/photos/storm.jpg")), 400,
       "public, max-age=60", "unknown filter 'sepia'"},
      {test::request("GET", f.signer.sign("fit-in/100x100/photos/missing.jpg")), 404,
       "public, max-age=60", "source not found"},
      {test::request("GET", f.signer.sign("fit-in/100x100/photos")), 404, "public, max-age=60",
       "source not found"},
      {test::request("GET", f.signer.sign(dotdot)), 403, "public, max-age=60",
       "the image path leaves the source folder"},
      {test::request("GET", f.signer.sign("fit-in/100x100/photos/%2e%2e/%2E%2E/secret.jpg")), 403,
       "public, max-age=60", "the image path leaves the source folder"},
      {test::request("GET", f.signer.sign("fit-in/100x100/escape.jpg")), 403, "public, max-age=60",
       "the image path leaves the source folder"},
      {test::request("GET", f.signer.sign("fit-in/100x100/%2Fetc%2Fpasswd")), 403,
       "public, max-age=60", "the image path must be relative"},
      {test::request("GET", f.signer.sign("fit-in/100x100/a%00.jpg")), 400, "public, max-age=60",
       "not validly percent-encoded"},
      {test::request("GET", f.signer.sign("fit-in/100x100/notes.jpg")), 415, "public, max-age=60",
       "not a JPEG, PNG, WebP, GIF, HEIC or AVIF image"},
      {test::request("POST", f.signer.sign("fit-in/100x100/photos/storm.jpg")), 405,
       "public, max-age=60", "only GET and HEAD are supported"},
      {test::request("GET", "/"), 404, "public, max-age=60", "no such resource"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.request.path);
    OriginResponse r = test::serve(*f.service, row.request);
    CHECK(r.status == row.status);
    CHECK(header(r, "Cache-Control") == row.cache_control);
    CHECK(header(r, "Content-Type") == "text/plain; charset=utf-8");
    CHECK(header(r, "ETag") == "<absent>");
    REQUIRE(r.body);
    CHECK(r.body->find(row.message) != std::string::npos);
    CHECK(r.body->size() < 200);
  }
  // A relative symlink that stays inside the root is fine.
  CHECK(f.get("fit-in/100x100/inside-link.jpg").status == 200);
}

TEST_CASE("transient failures are never cacheable and overload says when to retry") {
  Fixture f;
  OriginResponse busy = f.service->error({Code::kOverloaded, "too many requests in progress"});
  CHECK(busy.status == 503);
  CHECK(header(busy, "Cache-Control") == "no-store");
  CHECK(header(busy, "Retry-After") == "1");
  OriginResponse upstream = f.service->error({Code::kUpstreamError, "source failed"});
  CHECK(upstream.status == 502);
  CHECK(header(upstream, "Cache-Control") == "no-store");
  CHECK(f.service->error({Code::kInternal, "bug"}).status == 500);
}

TEST_CASE("auto-WebP picks the format from Accept and says Vary: Accept, also on 304") {
  Fixture f(/*auto_webp=*/true);
  OriginResponse webp =
      f.get("fit-in/200x200/photos/storm.jpg", "GET", "", "image/avif,image/webp,*/*");
  CHECK(header(webp, "Content-Type") == "image/webp");
  CHECK(header(webp, "Vary") == "Accept");
  OriginResponse jpeg = f.get("fit-in/200x200/photos/storm.jpg", "GET", "", "*/*");
  CHECK(header(jpeg, "Content-Type") == "image/jpeg");
  CHECK(header(jpeg, "Vary") == "Accept");
  CHECK(header(jpeg, "ETag") != header(webp, "ETag"));
  OriginResponse not_modified =
      f.get("fit-in/200x200/photos/storm.jpg", "GET", header(webp, "ETag"), "image/webp");
  CHECK(not_modified.status == 304);
  CHECK(header(not_modified, "Vary") == "Accept");
  // An explicit format() does not depend on Accept: no Vary.
  OriginResponse png =
      f.get("fit-in/200x200/filters:format(png)/photos/storm.jpg", "GET", "", "image/webp");
  CHECK(header(png, "Content-Type") == "image/png");
  CHECK(header(png, "Vary") == "<absent>");
}

TEST_CASE("auto-AVIF: AVIF first, then WebP, then the source's format, each with Vary: Accept") {
  Fixture f(/*auto_webp=*/true, /*keep_originals=*/true,
            [](OriginOptions& o) { o.output.auto_avif = true; });
  std::filesystem::copy_file(test::corpus("webp/sunset_by_Aitzol_Berasategi.q80.webp"),
                             f.root / "sunset.webp");
  struct Row {
    const char* accept;
    const char* type;
  };
  for (const Row& row :
       {Row{"image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/avif"},
        Row{"image/avif;q=0,image/webp,*/*", "image/webp"}, Row{"image/webp,*/*", "image/webp"},
        Row{"image/png,image/*;q=0.8,*/*;q=0.5", "image/jpeg"}, Row{"", "image/jpeg"}}) {
    CAPTURE(row.accept);
    OriginResponse r = f.get("fit-in/200x200/photos/storm.jpg", "GET", "", row.accept);
    CHECK(r.status == 200);
    CHECK(header(r, "Content-Type") == row.type);
    CHECK(header(r, "Vary") == "Accept");
  }
  // Each negotiated format is its own thumbnail, with its own ETag.
  const OriginResponse avif = f.get("fit-in/200x200/photos/storm.jpg", "GET", "", "image/avif");
  const OriginResponse webp = f.get("fit-in/200x200/photos/storm.jpg", "GET", "", "image/webp");
  CHECK(header(avif, "ETag") != header(webp, "ETag"));
  CHECK(
      f.get("fit-in/200x200/photos/storm.jpg", "GET", header(avif, "ETag"), "image/avif").status ==
      304);
  // format() wins over Accept, without Vary.
  OriginResponse asked =
      f.get("fit-in/200x200/filters:format(jpeg)/photos/storm.jpg", "GET", "", "image/avif");
  CHECK(header(asked, "Content-Type") == "image/jpeg");
  CHECK(header(asked, "Vary") == "<absent>");
  // Without AVIF or WebP in Accept, an original keeps its own format (here WebP).
  CHECK(header(f.get("fit-in/200x200/sunset.webp", "GET", "", "*/*"), "Content-Type") ==
        "image/webp");
}

TEST_CASE(
    "output.quality: auto serves a soft photo smaller than the fixed quality, with its own ETag") {
  Fixture fixed;
  Fixture automatic(/*auto_webp=*/false, /*keep_originals=*/true,
                    [](OriginOptions& o) { o.output.quality = "auto"; });
  const OriginResponse a = fixed.get("fit-in/300x200/photos/storm.jpg");
  const OriginResponse b = automatic.get("fit-in/300x200/photos/storm.jpg");
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  CHECK(header(b, "Content-Type") == "image/jpeg");
  REQUIRE(a.body);
  REQUIRE(b.body);
  CHECK(b.body->size() < a.body->size());  // a soft sky needs less than quality 80
  // The settings are part of the thumbnail's identity: another ETag, so no CDN mixes them up.
  CHECK(header(a, "ETag") != header(b, "ETag"));
  // A URL's quality(N) still wins over the configured search.
  const OriginResponse pinned =
      automatic.get("fit-in/300x200/filters:quality(80)/photos/storm.jpg");
  const OriginResponse pinned_fixed =
      fixed.get("fit-in/300x200/filters:quality(80)/photos/storm.jpg");
  REQUIRE(pinned.body);
  REQUIRE(pinned_fixed.body);
  CHECK(*pinned.body == *pinned_fixed.body);
}

TEST_CASE("an animated GIF is answered animated: GIF, or animated WebP where AVIF is negotiated") {
  Fixture f(/*auto_webp=*/true, /*keep_originals=*/true,
            [](OriginOptions& o) { o.output.auto_avif = true; });
  std::vector<test::GifFrame> frames(3);
  for (int i = 0; i < 3; ++i) {
    frames[static_cast<std::size_t>(i)].image =
        test::frame(80, 60, cv::Scalar(0, 0, 255), cv::Rect(20 * i, 20, 20, 20), cv::Scalar(0));
  }
  test::write_file(f.root / "anim.gif", test::write_gif(80, 60, frames, 0));
  auto frames_in = [](const OriginResponse& r) {
    auto info = transform::sniff(test::as_bytes(*r.body));
    REQUIRE(info.ok());
    return info->frames;
  };
  OriginResponse gif = f.get("fit-in/40x30/anim.gif", "GET", "", "image/png,*/*");
  CHECK(gif.status == 200);
  CHECK(header(gif, "Content-Type") == "image/gif");
  CHECK(frames_in(gif) == 3);
  OriginResponse webp = f.get("fit-in/40x30/anim.gif", "GET", "", "image/avif,image/webp,*/*");
  CHECK(header(webp, "Content-Type") == "image/webp");
  CHECK(header(webp, "Vary") == "Accept");
  CHECK(frames_in(webp) == 3);
  OriginResponse still = f.get("fit-in/40x30/filters:format(png)/anim.gif");
  CHECK(header(still, "Content-Type") == "image/png");
  OriginResponse meta = f.get("meta/fit-in/40x30/anim.gif");
  CHECK(meta.body->find("\"frameCount\":3") != std::string::npos);
}

TEST_CASE("health and readiness routes answer without a signature") {
  Fixture f;
  OriginResponse health = test::serve(*f.service, test::request("GET", "/healthz"));
  CHECK(health.status == 200);
  CHECK(header(health, "Cache-Control") == "no-store");
  CHECK(test::serve(*f.service, test::request("GET", "/readyz")).status == 200);
  f.service->set_draining();
  CHECK(test::serve(*f.service, test::request("GET", "/readyz")).status == 503);
  CHECK(test::serve(*f.service, test::request("GET", "/healthz")).status == 200);
  // While draining, new thumbnail work is refused so the CDN retries elsewhere.
  OriginResponse draining = f.get("fit-in/50x50/photos/storm.jpg");
  CHECK(draining.status == 503);
}

TEST_CASE("the file source refuses originals over the byte limit") {
  test::TempDir dir;
  test::write_file(dir.path() / "big.jpg", std::string(5000, 'x'));
  FileSource source(dir.path().string(), 4000);
  auto result = source.fetch("big.jpg", {});
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == Code::kTooLarge);
  CHECK(percent_decode("a%20b%2Fc") == "a b/c");
  CHECK_FALSE(percent_decode("a%2").has_value());
  CHECK_FALSE(percent_decode("a%zz").has_value());
}

TEST_CASE("max_age() sets this URL's Cache-Control, also when served from the cache") {
  Fixture f;
  OriginResponse first = f.get("fit-in/100x100/filters:max_age(120)/photos/storm.jpg");
  CHECK(header(first, "Cache-Control") == "public, max-age=120");
  OriginResponse hit = f.get("fit-in/100x100/filters:max_age(120)/photos/storm.jpg");
  CHECK(hit.cache_outcome == "hit");
  CHECK(header(hit, "Cache-Control") == "public, max-age=120");
  // max_age(0): the CDN must not keep it, and neither does the memory cache.
  OriginResponse never = f.get("fit-in/100x100/filters:max_age(0)/photos/storm.jpg");
  CHECK(header(never, "Cache-Control") == "public, max-age=0");
  CHECK(f.get("fit-in/100x100/filters:max_age(0)/photos/storm.jpg").cache_outcome == "miss");
}

TEST_CASE("meta/ answers JSON with the same cache headers as a thumbnail") {
  Fixture f;
  OriginResponse r = f.get("meta/fit-in/300x200/photos/storm.jpg");
  CHECK(r.status == 200);
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "ETag") != "<absent>");
  REQUIRE(r.body);
  CHECK(r.body->find("\"url\":\"photos/storm.jpg\"") != std::string::npos);
  CHECK(r.body->find("\"target\":{\"width\":300,\"height\":200,\"format\":\"jpeg\"}") !=
        std::string::npos);
  // meta and the thumbnail are different answers: different ETags.
  CHECK(header(f.get("fit-in/300x200/photos/storm.jpg"), "ETag") != header(r, "ETag"));
}

TEST_CASE("smart/ detects once per original version and answers every size from that") {
  Fixture f(/*auto_webp=*/false, /*keep_originals=*/false);  // see a new version at once
  std::filesystem::copy_file(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg"),
                             f.root / "portrait.jpg");
  CHECK(f.service->remembered_focal_points() == 0);
  CHECK(f.get("100x300/smart/portrait.jpg").status == 200);
  CHECK(f.service->remembered_focal_points() == 1);
  CHECK(f.get("300x100/smart/portrait.jpg").status == 200);
  CHECK(f.get("meta/50x50/smart/portrait.jpg").status == 200);
  CHECK(f.service->remembered_focal_points() == 1);
  // A new version of the original (another modification time) is detected afresh.
  struct utimbuf times {
    1000000000, 1000000000
  };
  REQUIRE(utime((f.root / "portrait.jpg").c_str(), &times) == 0);
  CHECK(f.get("100x301/smart/portrait.jpg").status == 200);
  CHECK(f.service->remembered_focal_points() == 2);
}

TEST_CASE("watermarks come from the same source, and a new mark changes the ETag") {
  Fixture f;
  cv::Mat logo(10, 20, CV_8UC3, cv::Scalar(0, 0, 255));
  REQUIRE(cv::imwrite((f.root / "logo.png").string(), logo));
  OriginResponse marked =
      f.get("fit-in/200x200/filters:watermark(logo.png,0,0,0)/photos/storm.jpg");
  REQUIRE(marked.status == 200);
  const std::string etag = header(marked, "ETag");
  CHECK(etag.find('~') != std::string::npos);
  // Revalidation with a fresh cache still answers 304 while neither file changed.
  cache::ResultCache empty(64 << 20, 1, f.clock);
  OriginService fresh(OriginOptions{}, f.signer, {*f.source, empty, f.clock});
  const std::string url =
      f.signer.sign("fit-in/200x200/filters:watermark(logo.png,0,0,0)/photos/storm.jpg");
  CHECK(test::serve(fresh, test::request("GET", url, {{"if-none-match", etag}})).status == 304);
  // A new version of the mark: a new ETag, and the old one no longer matches.
  struct utimbuf times {
    1000000000, 1000000000
  };
  REQUIRE(utime((f.root / "logo.png").c_str(), &times) == 0);
  OriginResponse remarked =
      test::serve(fresh, test::request("GET", url, {{"if-none-match", etag}}));
  CHECK(remarked.status == 200);
  CHECK(header(remarked, "ETag") != etag);
  // A missing mark is the URL's fault: 400, short-cached like other bad URLs.
  OriginResponse missing =
      f.get("fit-in/200x200/filters:watermark(nope.png,0,0,0)/photos/storm.jpg");
  CHECK(missing.status == 400);
  CHECK(missing.body->find("watermark image 'nope.png'") != std::string::npos);
}

namespace {
// A Source that fails every fetch with a given Status (fault injection).
class FailingSource final : public Source {
 public:
  explicit FailingSource(Status status) : status_(std::move(status)) {}
  Result<SourceObject> fetch(std::string_view, const FetchConditions&) override { return status_; }

 private:
  Status status_;
};
}  // namespace

TEST_CASE("a failing source answers 5xx with no-store, for originals and watermarks alike") {
  SystemClock clock;
  signing::UrlSigner signer({"k"}, false);
  cache::ResultCache results(1 << 20, 1, clock);
  for (Code code : {Code::kUpstreamError, Code::kUpstreamTimeout}) {
    FailingSource source(Status(code, "the source failed"));
    OriginService service(OriginOptions{}, signer, {source, results, clock});
    for (const char* path :
         {"fit-in/10x10/a.jpg", "fit-in/10x10/filters:watermark(m.png,0,0,0)/a.jpg"}) {
      CAPTURE(std::string(path));
      OriginResponse r = test::serve(service, test::request("GET", signer.sign(path)));
      CHECK(r.status == code_info(code).http_status);
      CHECK(header(r, "Cache-Control") == "no-store");
    }
  }
}

TEST_CASE("result storage lets a replica without the original serve the same thumbnail") {
  Fixture f;
  test::TempDir shared;
  cache::DirectoryStore store(shared.path().string(), std::chrono::hours(1), f.clock);
  // A service of a replica: its source and memory, the storage every replica shares.
  auto sharing = [&](Source& source, cache::ResultCache& memory, bool store_unsafe = false) {
    ServiceDependencies with(source, memory, f.clock);
    with.store = &store;
    with.store_unsafe = store_unsafe;
    return with;
  };
  cache::ResultCache warm(1 << 20, 1, f.clock);
  OriginService first(OriginOptions{}, f.signer, sharing(*f.source, warm));
  OriginResponse made =
      test::serve(first, test::request("GET", f.signer.sign("fit-in/100x100/photos/storm.jpg")));
  REQUIRE(made.status == 200);
  CHECK(std::filesystem::exists(shared.path() / "fit-in/100x100/photos/storm.jpg"));
  // Another replica, whose source has nothing at all.
  test::TempDir nothing;
  FileSource empty(nothing.path().string(), 1 << 20);
  cache::ResultCache cold(1 << 20, 1, f.clock);
  OriginService replica(OriginOptions{}, f.signer, sharing(empty, cold));
  OriginResponse served =
      test::serve(replica, test::request("GET", f.signer.sign("fit-in/100x100/photos/storm.jpg")));
  CHECK(served.status == 200);
  CHECK(served.cache_outcome == "stored");
  REQUIRE(served.body);
  CHECK(*served.body == *made.body);
  CHECK(header(served, "ETag") == header(made, "ETag"));
  CHECK(replica.counters().store_hits == 1);
  CHECK(replica.counters().fetches == 0);
  // A replica with other output settings does not serve it: it makes its own and replaces it.
  OriginOptions lower;
  lower.output.jpeg_quality = 40;
  cache::ResultCache cold_too(1 << 20, 1, f.clock);
  OriginService changed(lower, f.signer, sharing(*f.source, cold_too));
  OriginResponse remade =
      test::serve(changed, test::request("GET", f.signer.sign("fit-in/100x100/photos/storm.jpg")));
  CHECK(remade.status == 200);
  CHECK(changed.counters().store_hits == 0);
  CHECK(changed.counters().renders == 1);
  REQUIRE(remade.body);
  CHECK(remade.body->size() < made.body->size());
  CHECK(header(remade, "ETag") != header(made, "ETag"));
  CHECK(test::read_file(shared.path() / "fit-in/100x100/photos/storm.jpg") == *remade.body);
  // Unsigned URLs are not stored unless asked.
  signing::UrlSigner lax({"test-key"}, /*allow_unsafe=*/true);
  OriginService unsafe_service(OriginOptions{}, lax, sharing(*f.source, cold));
  CHECK(test::serve(unsafe_service, test::request("GET", "/unsafe/fit-in/60x60/photos/storm.jpg"))
            .status == 200);
  CHECK_FALSE(std::filesystem::exists(shared.path() / "fit-in/60x60/photos/storm.jpg"));
  cache::ResultCache cold_again(1 << 20, 1, f.clock);
  OriginService storing_unsafe(OriginOptions{}, lax,
                               sharing(*f.source, cold_again, /*store_unsafe=*/true));
  CHECK(test::serve(storing_unsafe, test::request("GET", "/unsafe/fit-in/61x61/photos/storm.jpg"))
            .status == 200);
  CHECK(std::filesystem::exists(shared.path() / "fit-in/61x61/photos/storm.jpg"));
}

TEST_CASE(
    "a held result whose original changed is made again after revalidate_s, and a gone "
    "original's stored thumbnails are removed") {
  namespace fs = std::filesystem;
  test::TempDir dir;
  const fs::path root = dir.path() / "originals";
  fs::create_directories(root / "photos");
  fs::copy_file(test::corpus("medium/mate_Storm.jpg"), root / "photos/storm.jpg");
  FileSource source(root.string(), 16 << 20);
  test::ShiftedClock clock;
  test::TempDir shared;
  cache::DirectoryStore store(shared.path().string(), std::chrono::hours(24), clock);
  cache::ResultCache memory(16 << 20, 1, clock);
  OriginOptions options;
  options.revalidate = std::chrono::seconds(60);
  signing::UrlSigner signer({"test-key"}, false);
  ServiceDependencies with(source, memory, clock);
  with.store = &store;
  OriginService service(options, signer, std::move(with));
  const auto get = [&](const std::string& path) {
    return test::serve(service, test::request("GET", signer.sign(path)));
  };
  const std::string path = "fit-in/100x100/photos/storm.jpg";

  OriginResponse first = get(path);
  REQUIRE(first.status == 200);
  REQUIRE(get("fit-in/50x50/photos/storm.jpg").status == 200);
  CHECK(fs::exists(shared.path() / path));
  CHECK(fs::exists(shared.path() / ".thimble/variants/photos/storm.jpg"));

  // Replaced in place by another photo.
  fs::copy_file(test::corpus("exif/Landscape_1.jpg"), root / "photos/storm.jpg",
                fs::copy_options::overwrite_existing);
  // Within revalidate_s the held result is served as it is, without asking the source.
  clock.shift = std::chrono::seconds(30);
  const std::uint64_t fetches = service.counters().fetches;
  OriginResponse early = get(path);
  CHECK(early.cache_outcome == "hit");
  CHECK(header(early, "ETag") == header(first, "ETag"));
  CHECK(service.counters().fetches == fetches);

  // Past it, the source is asked, and the new photo's thumbnail replaces the old one everywhere.
  clock.shift = std::chrono::seconds(61);
  OriginResponse changed = get(path);
  REQUIRE(changed.status == 200);
  CHECK(header(changed, "ETag") != header(first, "ETag"));
  REQUIRE(changed.body);
  CHECK(*changed.body != *first.body);
  CHECK(test::read_file(shared.path() / path) == *changed.body);
  CHECK(service.counters().checks == 1);

  // Unchanged at the next check: served again with only a stat(), no transform.
  clock.shift = std::chrono::seconds(200);
  const std::uint64_t renders = service.counters().renders;
  OriginResponse same = get(path);
  CHECK(same.status == 200);
  CHECK(header(same, "ETag") == header(changed, "ETag"));
  CHECK(service.counters().renders == renders);
  CHECK(service.counters().checks == 2);
  // Answered from memory again until the next revalidate_s.
  CHECK(get(path).cache_outcome == "hit");

  // A replica whose memory is empty reads the stored result; one written longer ago than
  // revalidate_s is checked before it is served.
  cache::ResultCache cold(16 << 20, 1, clock);
  ServiceDependencies replica_with(source, cold, clock);
  replica_with.store = &store;
  OriginService replica(options, signer, std::move(replica_with));
  clock.shift = std::chrono::seconds(400);
  OriginResponse from_storage = test::serve(replica, test::request("GET", signer.sign(path)));
  CHECK(from_storage.status == 200);
  CHECK(header(from_storage, "ETag") == header(changed, "ETag"));
  CHECK(replica.counters().store_hits == 1);
  CHECK(replica.counters().checks == 1);
  CHECK(replica.counters().renders == 0);

  // Deleted: the next check is a 404, and every stored variant of the photo goes with it.
  fs::remove(root / "photos/storm.jpg");
  clock.shift = std::chrono::seconds(600);
  OriginResponse gone = get(path);
  CHECK(gone.status == 404);
  CHECK_FALSE(fs::exists(shared.path() / path));
  CHECK_FALSE(fs::exists(shared.path() / "fit-in/50x50/photos/storm.jpg"));
  CHECK_FALSE(fs::exists(shared.path() / ".thimble/variants/photos/storm.jpg"));
  CHECK(get(path).status == 404);
}

TEST_CASE("a held result is served as it was when its source fails at the check") {
  test::TempDir dir;
  std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"), dir.path() / "storm.jpg");
  FileSource files(dir.path().string(), 16 << 20);
  // The real folder, until the switch is thrown: then a 502 for every fetch.
  struct Switchable final : Source {
    explicit Switchable(Source& inner) : inner_(inner) {}
    Result<SourceObject> fetch(std::string_view key, const FetchConditions& c) override {
      if (failing) return Status(Code::kUpstreamError, "the store answered 503");
      return inner_.fetch(key, c);
    }
    Source& inner_;
    std::atomic<bool> failing{false};
  } source(files);
  test::ShiftedClock clock;
  cache::ResultCache memory(16 << 20, 1, clock);
  signing::UrlSigner signer({"test-key"}, false);
  OriginService service(OriginOptions{}, signer, {source, memory, clock});
  const std::string url = signer.sign("fit-in/80x80/storm.jpg");
  OriginResponse made = test::serve(service, test::request("GET", url));
  REQUIRE(made.status == 200);
  source.failing = true;
  clock.shift = std::chrono::seconds(120);
  OriginResponse stale = test::serve(service, test::request("GET", url));
  CHECK(stale.status == 200);
  CHECK(header(stale, "ETag") == header(made, "ETag"));
  CHECK(service.counters().checks == 1);
  // Checked (and failed) just now: not asked again before another revalidate_s.
  CHECK(test::serve(service, test::request("GET", url)).cache_outcome == "hit");
  CHECK(service.counters().checks == 1);
}

namespace {

// Counts the fetches of a real source.
class CountingSource final : public Source {
 public:
  explicit CountingSource(Source& inner) : inner_(inner) {}
  Result<SourceObject> fetch(std::string_view key, const FetchConditions& c) override {
    ++fetches;
    return inner_.fetch(key, c);
  }
  int fetches = 0;

 private:
  Source& inner_;
};
}  // namespace

// A service over the fixture's folder whose fetches are counted, on a clock the test moves.
struct CountedFetches {
  Fixture f;
  CountingSource counting{*f.source};
  test::ShiftedClock clock;
  cache::ResultCache results{64 << 20, 1, clock};
  std::unique_ptr<OriginService> service;

  explicit CountedFetches(const std::function<void(OriginOptions&, const Fixture&)>& tune) {
    OriginOptions options;
    tune(options, f);
    service = std::make_unique<OriginService>(options, f.signer,
                                              ServiceDependencies{counting, results, clock});
  }
  int status_of(const std::string& path) {
    return test::serve(*service, test::request("GET", f.signer.sign(path))).status;
  }
};

TEST_CASE("a kept original serves the photo's other sizes until its TTL passes") {
  CountedFetches t(
      [](OriginOptions& options, const Fixture&) { options.original_cache.ttl_s = 60; });
  for (int size : {100, 120, 140}) {
    CHECK(t.status_of("fit-in/" + std::to_string(size) + "x100/photos/storm.jpg") == 200);
  }
  CHECK(t.counting.fetches == 1);
  CHECK(t.service->counters().original_hits == 2);
  t.clock.shift = std::chrono::seconds(61);
  CHECK(t.status_of("fit-in/160x100/photos/storm.jpg") == 200);
  CHECK(t.counting.fetches == 2);
}

TEST_CASE("an original is kept however much of original_cache.memory_bytes it takes") {
  CountedFetches t([](OriginOptions& options, const Fixture& f) {
    const auto storm = std::filesystem::file_size(f.root / "photos/storm.jpg");
    options.original_cache.memory_bytes = storm + (storm >> 2);  // room for it, and not twice
  });
  for (int size : {100, 120, 140}) {
    CHECK(t.status_of("fit-in/" + std::to_string(size) + "x100/photos/storm.jpg") == 200);
  }
  CHECK(t.counting.fetches == 1);
}

namespace {

// A service with presets over the fixture's folder.
struct PresetFixture {
  Fixture f;
  cache::ResultCache results{64 << 20, 1, f.clock};
  std::unique_ptr<OriginService> service;

  explicit PresetFixture(bool only_presets = false) {
    Result<PresetTable> table =
        PresetTable::from({{"small", {"fit-in/200x200/filters:quality(75)", false}},
                           {"avatar", {"100x100/smart", true}}});
    REQUIRE(table.ok());
    OriginOptions options;
    options.presets = std::move(table).value();
    options.security.only_presets = only_presets;
    service = std::make_unique<OriginService>(options, f.signer,
                                              ServiceDependencies(*f.source, results, f.clock));
  }
  OriginResponse get(const std::string& path) {
    return test::serve(*service, test::request("GET", path));
  }
};

}  // namespace

TEST_CASE("a preset is its options: same thumbnail, same ETag, one cache entry") {
  PresetFixture p;
  OriginResponse named = p.get(p.f.signer.sign("preset:small/photos/storm.jpg"));
  REQUIRE(named.status == 200);
  CHECK(named.route == Route::kPreset);
  CHECK(named.cache_outcome == "miss");
  OriginResponse spelled =
      p.get(p.f.signer.sign("fit-in/200x200/filters:quality(75)/photos/storm.jpg"));
  CHECK(spelled.cache_outcome == "hit");
  CHECK(*spelled.body == *named.body);
  CHECK(header(spelled, "ETag") == header(named, "ETag"));
  cv::Mat image =
      cv::imdecode(std::vector<uchar>(named.body->begin(), named.body->end()), cv::IMREAD_COLOR);
  CHECK(std::max(image.cols, image.rows) == 200);
}

TEST_CASE(
    "public presets need no signature, while other presets, unknown names and bad URLs are "
    "refused") {
  PresetFixture p;
  OriginResponse open = p.get("/preset:avatar/photos/storm.jpg");
  REQUIRE(open.status == 200);
  cv::Mat image =
      cv::imdecode(std::vector<uchar>(open.body->begin(), open.body->end()), cv::IMREAD_COLOR);
  CHECK(image.size() == cv::Size(100, 100));
  // A signed-only preset without signature.
  OriginResponse closed = p.get("/preset:small/photos/storm.jpg");
  CHECK(closed.status == 403);
  CHECK(closed.error == "preset 'small' is not public: the URL must be signed");
  CHECK(header(closed, "Cache-Control") == "public, max-age=60");
  // Unknown names, signed or not: 400 naming the preset.
  CHECK(p.get("/preset:huge/photos/storm.jpg").error == "unknown preset 'huge'");
  OriginResponse unknown = p.get(p.f.signer.sign("preset:huge/photos/storm.jpg"));
  CHECK(unknown.status == 400);
  CHECK(unknown.error == "unknown preset 'huge'");
  CHECK(p.get("/preset:" + std::string(300, 'x') + "/a.jpg").error == "unknown preset");
  CHECK(p.get("/preset:avatar/").status == 400);
  CHECK(p.get("/preset:avatar").status == 400);
  // A wrong signature does not fall back to the public form.
  CHECK(p.get("/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/preset:avatar/photos/storm.jpg").status == 403);
  // The public form still checks the image key like any other URL.
  CHECK(p.get("/preset:avatar/../secret.jpg").status == 403);
  CHECK(p.get("/preset:avatar/photos/missing.jpg").status == 404);
}

TEST_CASE("after a preset only the image may follow: appended options are 400, signed or not") {
  PresetFixture p(/*only_presets=*/true);
  const char* appended[] = {
      "filters:format(png)/photos/storm.jpg",
      "filters:max_age(1)/photos/storm.jpg",
      "filters:quality(10)/photos/storm.jpg",
      "filters:watermark(photos/storm.jpg,0,0,0):watermark(photos/storm.jpg,0,0,0)/photos/"
      "storm.jpg",
  };
  for (const char* rest : appended) {
    CAPTURE(rest);
    OriginResponse open = p.get("/preset:avatar/" + std::string(rest));
    CHECK(open.status == 400);
    CHECK(open.error ==
          "only the image may follow a preset (preset:NAME/<image>), not more options");
    CHECK(p.get(p.f.signer.sign("preset:avatar/" + std::string(rest))).status == 400);
    // A second filters: segment after the preset's own is refused too.
    CHECK(p.get(p.f.signer.sign("preset:small/" + std::string(rest))).status == 400);
  }
  CHECK(p.get("/preset:avatar/photos/storm.jpg").status == 200);
  CHECK(p.get("/preset:avatar/300x300/photos/storm.jpg").status == 404);  // a key, not a size
}

TEST_CASE("only_presets refuses every URL that does not name a preset") {
  PresetFixture p(/*only_presets=*/true);
  OriginResponse options = p.get(p.f.signer.sign("fit-in/300x300/photos/storm.jpg"));
  CHECK(options.status == 403);
  CHECK(options.error == "this server only serves presets (preset:NAME/<image>)");
  CHECK(p.get(p.f.signer.sign("preset:small/photos/storm.jpg")).status == 200);
  CHECK(p.get("/preset:avatar/photos/storm.jpg").status == 200);
}

TEST_CASE("presets whose options do not parse are refused at start, naming the preset") {
  Result<PresetTable> bad =
      PresetTable::from({{"broken", {"fit-in/200x200/filters:bogus(1)", false}}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("presets.broken: ") == 0);
  CHECK(bad.status().message().find("bogus") != std::string::npos);
  Result<PresetTable> image =
      PresetTable::from({{"img", {"fit-in/200x200/photos/cat.jpg", false}}});
  REQUIRE_FALSE(image.ok());
  CHECK(image.status().message().find("presets.img: ") == 0);
}

TEST_CASE("security.signature_header: a signature moved out of the path into a header verifies") {
  Fixture f;
  cache::ResultCache results(64 << 20, 1, f.clock);
  OriginOptions options;
  options.security.signature_header = "X-Thimble-Signature";
  OriginService service(options, f.signer, {*f.source, results, f.clock});
  const std::string signed_url = f.signer.sign("fit-in/100x100/photos/storm.jpg");
  const std::string signature = signed_url.substr(1, signed_url.find('/', 1) - 1);
  OriginRequest request = test::request("GET", "/fit-in/100x100/photos/storm.jpg",
                                        {{"x-thimble-signature", signature}});
  OriginResponse moved = test::serve(service, request);
  CHECK(moved.status == 200);
  // The same thumbnail as the path-signed URL, from the same cache entry.
  OriginResponse in_path = test::serve(service, test::request("GET", signed_url));
  CHECK(in_path.cache_outcome == "hit");
  CHECK(header(in_path, "ETag") == header(moved, "ETag"));
  // A header signature for other options, or none at all, is refused.
  request.path = "/fit-in/200x200/photos/storm.jpg";
  CHECK(test::serve(service, request).status == 403);
  request.headers.clear();
  CHECK(test::serve(service, request).status == 403);
  // Without the option the header means nothing.
  request.path = "/fit-in/100x100/photos/storm.jpg";
  request.headers = {{"x-thimble-signature", signature}};
  CHECK(test::serve(*f.service, request).status == 403);
}

TEST_CASE(
    "limits: long URLs are 414, costly filters 400, both short-cached, and others still serve") {
  Fixture f(false, true, [](OriginOptions& o) {
    o.limits.max_url_bytes = 200;
    o.limits.max_blur_radius = 10;
  });
  const std::string image = "photos/storm.jpg";
  OriginResponse fits = f.get("fit-in/100x100/" + image);
  CHECK(fits.status == 200);
  // Padding filters make the signed path longer than 200 bytes.
  std::string padded = "fit-in/100x100/filters:";
  while (f.signer.sign(padded + "quality(80)/" + image).size() <= 200) padded += "strip_icc():";
  OriginResponse long_url = f.get(padded + "quality(80)/" + image);
  CHECK(long_url.status == 414);
  CHECK(header(long_url, "Cache-Control") == "public, max-age=60");
  OriginResponse blurred = f.get("fit-in/100x100/filters:blur(11)/" + image);
  CHECK(blurred.status == 400);
  CHECK(blurred.error.find("blur(11") != std::string::npos);
  CHECK(f.get("fit-in/100x100/filters:blur(10)/" + image).status == 200);
}

TEST_CASE("a request past its processing deadline is 503 with Retry-After, never cached") {
  Fixture f(false, true, [](OriginOptions& o) { o.server.request_timeout_ms = 1; });
  // Fetching and decoding a 2.3 MP PNG outlasts a 1 ms deadline.
  OriginResponse r = f.get("fit-in/300x200/gulp.png");
  CHECK(r.status == 503);
  CHECK(header(r, "Retry-After") == "1");
  CHECK(header(r, "Cache-Control") == "no-store");
  CHECK(f.results.stats().insertions == 0);
}
