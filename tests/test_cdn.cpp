// The CDN recipes in conf/nginx, run by Debian's nginx on loopback in front of a real `thimble`.
// Only addresses and folders of the recipes are rewritten for the test; everything else is the
// file operators copy.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "nginx_server.h"
#include "support.h"
#include "thimble_process.h"

using namespace thimble;
using namespace std::chrono_literals;
using thimble::proxy::exposition_value;
using thimble::test::Client;
using thimble::test::Reply;
using thimble::test::ThimbleProcess;

namespace {

// What Thimble itself answered so far on the thumbnail route with `status`.
double thimble_answers(const ThimbleProcess& thimble, int status) {
  Client client;
  return std::max(0.0, exposition_value(client.request(thimble.base() + "/metrics").body,
                                        "thimble_requests_total{route=\"thumbnail\",status=\"" +
                                            std::to_string(status) + "\"}"));
}

// The part of a signed URL after the host.
std::string path_of(const ThimbleProcess& thimble, const std::string& options_and_image) {
  return thimble.url(options_and_image).substr(thimble.base().size());
}

// Thimble with auto-AVIF, auto-WebP and 2-second error lifetimes, behind the caching recipe.
struct CacheStack {
  ThimbleProcess thimble{"{host: 127.0.0.1, workers: 2}",
                         "output: {auto_webp: true, auto_avif: true}\n",
                         "{max_age: 600, error_max_age: 2}"};
  test::TempDir cache_dir;
  test::Nginx nginx{test::nginx_recipe(
      "thimble-cache.conf", {{"/var/cache/nginx/thimble", (cache_dir.path() / "cache").string()},
                             {"127.0.0.1:8888", "127.0.0.1:" + std::to_string(thimble.port())}})};
};

}  // namespace

TEST_CASE("nginx cache recipe: the first request reaches Thimble, the second is a HIT") {
  CacheStack s;
  Client client;
  const std::string url = s.nginx.base() + path_of(s.thimble, "fit-in/300x200/photos/storm.jpg");
  Reply first = client.request(url, {"Accept: image/jpeg"});
  Reply second = client.request(url, {"Accept: image/jpeg"});
  MESSAGE("first:  " << first.status << " X-Cache-Status " << first.header("x-cache-status")
                     << ", Cache-Control " << first.header("cache-control") << ", ETag "
                     << first.header("etag") << ", Vary " << first.header("vary"));
  MESSAGE("second: " << second.status << " X-Cache-Status " << second.header("x-cache-status"));
  CHECK(first.status == 200);
  CHECK(first.header("x-cache-status") == "MISS");
  CHECK(first.header("cache-control") == "public, max-age=600");
  CHECK(second.status == 200);
  CHECK(second.header("x-cache-status") == "HIT");
  CHECK(second.body == first.body);
  CHECK(second.header("etag") == first.header("etag"));
  CHECK(thimble_answers(s.thimble, 200) == 1);
}

TEST_CASE("nginx cache recipe: AVIF, WebP and JPEG clients share one URL, three entries in all") {
  CacheStack s;
  Client client;
  const std::string url = s.nginx.base() + path_of(s.thimble, "fit-in/300x200/photos/storm.jpg");
  struct Case {
    const char* accept;
    const char* cache;
    const char* type;
  };
  // Browsers' real Accept strings: Chrome, Firefox, Safari 14 (WebP, no AVIF), Safari 13 (no
  // WebP), curl.
  const Case cases[] = {
      {"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "MISS", "image/avif"},
      {"image/avif,image/webp,*/*", "HIT", "image/avif"},
      {"image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "MISS",
       "image/webp"},
      {"image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "MISS", "image/jpeg"},
      {"*/*", "HIT", "image/jpeg"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.accept);
    Reply r = client.request(url, {std::string("Accept: ") + c.accept});
    CHECK(r.status == 200);
    CHECK(r.header("x-cache-status") == c.cache);
    CHECK(r.header("content-type") == c.type);
    CHECK(r.header("vary") == "Accept");
  }
  CHECK(thimble_answers(s.thimble, 200) == 3);
}

TEST_CASE("nginx cache recipe: a 404 is cached only for Thimble's error lifetime") {
  CacheStack s;
  Client client;
  const std::string url = s.nginx.base() + path_of(s.thimble, "fit-in/300x200/photos/later.jpg");
  Reply missing = client.request(url);
  CHECK(missing.status == 404);
  CHECK(missing.header("cache-control") == "public, max-age=2");
  CHECK(client.request(url).header("x-cache-status") == "HIT");
  // The photo is uploaded; once the 404's two seconds are over, the CDN asks again.
  std::filesystem::copy_file(test::corpus("medium/mate_Storm.jpg"),
                             s.thimble.originals() / "photos/later.jpg");
  std::this_thread::sleep_for(3s);  // Thimble also forgets its own 404 (not_found_ttl_s) by then
  Reply later = client.request(url);
  MESSAGE("after 3 s: " << later.status << " X-Cache-Status " << later.header("x-cache-status"));
  CHECK(later.status == 200);
  CHECK(later.header("x-cache-status") == "EXPIRED");
  CHECK(thimble_answers(s.thimble, 404) == 1);
}

TEST_CASE("nginx cache recipe: a forged signature's 403 never answers for the genuine URL") {
  CacheStack s;
  Client client;
  const std::string genuine = path_of(s.thimble, "fit-in/200x200/photos/storm.jpg");
  const std::string forged = "/AAAAAAAAAAAAAAAAAAAAAAAAAAA=" + genuine.substr(genuine.find('/', 1));
  Reply bad = client.request(s.nginx.base() + forged);
  CHECK(bad.status == 403);
  CHECK(client.request(s.nginx.base() + forged).header("x-cache-status") == "HIT");
  Reply good = client.request(s.nginx.base() + genuine);
  CHECK(good.status == 200);
  CHECK(good.header("x-cache-status") == "MISS");
  CHECK(client.request(s.nginx.base() + genuine).header("x-cache-status") == "HIT");
}

TEST_CASE("nginx cache recipe: a miss storm reaches Thimble once (proxy_cache_lock)") {
  CacheStack s;
  const std::string url = s.nginx.base() + path_of(s.thimble, "fit-in/600x600/large.jpg");
  std::vector<Reply> replies(16);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    threads.emplace_back([&, i] {
      Client client;
      replies[i] = client.request(url, {"Accept: image/jpeg"});
    });
  }
  for (auto& t : threads) t.join();
  for (const Reply& r : replies) {
    CHECK(r.status == 200);
    CHECK(r.body == replies.front().body);
  }
  CHECK(thimble_answers(s.thimble, 200) == 1);
}

TEST_CASE(
    "nginx result-storage recipe: stored thumbnails are served from disk, even with Thimble "
    "down") {
  ThimbleProcess thimble("{host: 127.0.0.1, workers: 2}",
                         "output: {auto_webp: true, auto_avif: true}\n"
                         "result_storage: {type: directory, directory: results}\n");
  const std::filesystem::path results = thimble.directory() / "results";
  test::Nginx nginx(
      test::nginx_recipe("thimble-result-storage.conf",
                         {{"/var/lib/thimble/results", results.string()},
                          {"127.0.0.1:8888", "127.0.0.1:" + std::to_string(thimble.port())}}));
  Client client;
  const std::string path = path_of(thimble, "fit-in/300x200/photos/storm.jpg");
  auto wait_for = [](const std::filesystem::path& file) {
    for (int i = 0; i < 250 && !std::filesystem::exists(file); ++i)
      std::this_thread::sleep_for(20ms);
    return std::filesystem::exists(file);
  };

  for (const auto& [accept, type, file] :
       {std::tuple{"image/jpeg", "image/jpeg", "fit-in/300x200/photos/storm.jpg"},
        std::tuple{"image/webp,*/*", "image/webp", "fit-in/300x200/photos/storm.jpg.webp"},
        std::tuple{"image/avif,image/webp,*/*", "image/avif",
                   "fit-in/300x200/photos/storm.jpg.avif"}}) {
    CAPTURE(accept);
    Reply made = client.request(nginx.base() + path, {std::string("Accept: ") + accept});
    CHECK(made.status == 200);
    CHECK(made.header("x-served-from") == "<absent>");  // Thimble made it
    REQUIRE(wait_for(results / file));                  // and stored it after answering
    Reply stored = client.request(nginx.base() + path, {std::string("Accept: ") + accept});
    CHECK(stored.status == 200);
    CHECK(stored.header("x-served-from") == "result-storage");
    CHECK(stored.header("content-type") == type);
    CHECK(stored.header("cache-control") == "public, max-age=86400");
    CHECK(stored.body == made.body);
  }
  CHECK(thimble_answers(thimble, 200) == 3);
  // Thimble's sidecar and index files are never served from the folder.
  CHECK(client.request(nginx.base() + path + ".meta").status != 200);
  const std::filesystem::path index = results / ".thimble/variants/photos/storm.jpg";
  REQUIRE(std::filesystem::is_directory(index));
  for (const auto& entry : std::filesystem::directory_iterator(index)) {
    Reply leaked = client.request(nginx.base() + "/x/.thimble/variants/photos/storm.jpg/" +
                                  entry.path().filename().string());
    CHECK(leaked.status != 200);
  }

  CHECK(thimble.stop() == 0);
  Reply failover = client.request(nginx.base() + path, {"Accept: image/jpeg"});
  CHECK(failover.status == 200);
  CHECK(failover.header("x-served-from") == "result-storage");
  // What was never made needs Thimble.
  CHECK(client.request(nginx.base() + path_of(thimble, "fit-in/64x64/photos/storm.jpg")).status ==
        502);
}
