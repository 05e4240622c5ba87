// Integration: the real `thimble` binary on a free loopback port, driven over HTTP with libcurl.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "signing/signer.h"
#include "support.h"
#include "thimble_process.h"

using namespace thimble;
using thimble::proxy::exposition_value;
using thimble::test::Client;
using thimble::test::kKey;
using thimble::test::Reply;
using Server = thimble::test::ThimbleProcess;

namespace {

cv::Size image_size(const std::string& bytes) {
  cv::Mat img = cv::imdecode(
      cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
      cv::IMREAD_UNCHANGED);
  return img.size();
}

}  // namespace

TEST_CASE("a signed thumbnail is served over HTTP with the headers a CDN needs") {
  Server server;
  Client client;
  Reply r = client.request(server.url("fit-in/300x200/photos/storm.jpg"));
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "image/jpeg");
  CHECK(r.header("content-length") == std::to_string(r.body.size()));
  CHECK(r.header("cache-control") == "public, max-age=600");
  CHECK(r.header("etag").front() == '"');
  CHECK(r.header("last-modified") != "<absent>");
  CHECK(r.header("expires") != "<absent>");
  CHECK(r.header("date") != "<absent>");
  CHECK(r.header("connection") == "keep-alive");
  CHECK(image_size(r.body) == cv::Size(300, 200));

  Reply again = client.request(server.url("fit-in/300x200/photos/storm.jpg"),
                               {"If-None-Match: " + r.header("etag")});
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.header("etag") == r.header("etag"));
  CHECK(again.header("cache-control") == "public, max-age=600");

  Reply since = client.request(server.url("fit-in/300x200/photos/storm.jpg"),
                               {"If-Modified-Since: " + r.header("last-modified")});
  CHECK(since.status == 304);
  // The access log has one JSON line per request.
  CHECK(server.log_with("\"status\":304").find("\"status\":304") != std::string::npos);
}

TEST_CASE("every request gets an id, echoed back and logged with its durations and source") {
  Server server;
  Client client;
  Reply given =
      client.request(server.url("fit-in/120x80/photos/storm.jpg"), {"X-Request-Id: edge-7f3a:42"});
  CHECK(given.header("x-request-id") == "edge-7f3a:42");
  // No id, or one that could forge log lines: a fresh 16-hex-digit id instead.
  Reply fresh = client.request(server.url("fit-in/120x80/photos/storm.jpg"));
  Reply hostile =
      client.request(server.url("fit-in/120x80/photos/storm.jpg"), {"X-Request-Id: a\"b"});
  for (const Reply* r : {&fresh, &hostile}) {
    CHECK(r->header("x-request-id").size() == 16);
    CHECK(r->header("x-request-id").find_first_not_of("0123456789abcdef") == std::string::npos);
  }
  CHECK(fresh.header("x-request-id") != hostile.header("x-request-id"));
  const std::string log = server.log_with(hostile.header("x-request-id"));
  // The miss did the work: its line has the source and every stage; the hits have none.
  const std::size_t id = log.find("\"id\":\"edge-7f3a:42\"");
  REQUIRE(id != std::string::npos);
  const std::size_t start = log.rfind('\n', id) + 1;
  const std::string first = log.substr(start, log.find('\n', id) - start);
  CHECK(first.find("\"cache\":\"miss\"") != std::string::npos);
  CHECK(first.find("\"source\":\"photos/storm.jpg\"") != std::string::npos);
  for (const char* field :
       {"\"fetch_ms\":", "\"decode_ms\":", "\"transform_ms\":", "\"encode_ms\":"}) {
    CHECK(first.find(field) != std::string::npos);
  }
  const std::size_t hit = log.find("\"id\":\"" + fresh.header("x-request-id") + "\"");
  REQUIRE(hit != std::string::npos);
  const std::string second = log.substr(hit, log.find('\n', hit) - hit);
  CHECK(second.find("\"cache\":\"hit\"") != std::string::npos);
  CHECK(second.find("decode_ms") == std::string::npos);
}

TEST_CASE("/metrics counts requests, stages and caches in Prometheus' text format") {
  Server server;
  Client client;
  CHECK(client.request(server.url("fit-in/300x200/photos/storm.jpg")).status == 200);
  CHECK(client.request(server.url("fit-in/300x200/photos/storm.jpg")).status == 200);
  CHECK(client.request(server.url("fit-in/300x200/photos/missing.jpg")).status == 404);
  CHECK(client.request(server.base() + "/bad-signature/fit-in/300x200/photos/storm.jpg").status ==
        403);
  Reply m = client.request(server.base() + "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(m.header("cache-control") == "no-store");
  const std::string& text = m.body;
  CHECK(exposition_value(text, "thimble_requests_total{route=\"thumbnail\",status=\"200\"}") == 2);
  CHECK(exposition_value(text, "thimble_requests_total{route=\"thumbnail\",status=\"404\"}") == 1);
  CHECK(exposition_value(text, "thimble_requests_total{route=\"thumbnail\",status=\"403\"}") == 1);
  CHECK(exposition_value(text, "thimble_cache_requests_total{outcome=\"hit\"}") == 1);
  CHECK(exposition_value(text, "thimble_cache_requests_total{outcome=\"miss\"}") == 1);
  CHECK(exposition_value(text, "thimble_stage_duration_seconds_count{stage=\"decode\"}") == 1);
  CHECK(exposition_value(text, "thimble_stage_duration_seconds_count{stage=\"fetch\"}") == 2);
  CHECK(exposition_value(text, "thimble_source_errors_total{kind=\"not_found\"}") == 1);
  CHECK(exposition_value(text, "thimble_source_fetches_total") == 2);
  CHECK(exposition_value(text, "thimble_transforms_total") == 1);
  CHECK(exposition_value(text, "thimble_cache_entries{cache=\"results\"}") == 1);
  CHECK(exposition_value(text, "thimble_requests_in_flight") == 1);  // this scrape
  CHECK(exposition_value(text, "thimble_worker_queue_depth") == 0);
  CHECK(exposition_value(text, "process_resident_memory_bytes") > 1e6);
  CHECK(exposition_value(text, "process_open_fds") > 3);
  // Histograms are cumulative and end with +Inf = count.
  const double count =
      exposition_value(text, "thimble_request_duration_seconds_count{route=\"thumbnail\"}");
  CHECK(count == 4);
  CHECK(exposition_value(
            text, "thimble_request_duration_seconds_bucket{route=\"thumbnail\",le=\"+Inf\"}") ==
        count);
  // Every sample has a TYPE line for its family.
  CHECK(text.find("# TYPE thimble_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("# TYPE thimble_cache_bytes gauge\n") != std::string::npos);
}

TEST_CASE("security.signature_header reads the signature from the named request header") {
  Server server("{host: 127.0.0.1, workers: 2}", "", "{max_age: 600}", ", signature_header: X-Sig");
  Client client;
  const std::string signed_url = server.url("fit-in/100x100/photos/storm.jpg");
  const std::string path = signed_url.substr(server.base().size());
  const std::string signature = path.substr(1, path.find('/', 1) - 1);
  const std::string bare = path.substr(path.find('/', 1));
  CHECK(client.request(server.base() + bare, {"X-Sig: " + signature}).status == 200);
  CHECK(client.request(server.base() + bare).status == 403);
  CHECK(client.request(signed_url).status == 200);  // the path form keeps working
}

TEST_CASE("with server.admin_port, /metrics moves off the public port") {
  const int admin_port = test::free_port();
  Server server("{host: 127.0.0.1, workers: 2, admin_port: " + std::to_string(admin_port) + "}");
  Client client;
  const std::string admin = "http://127.0.0.1:" + std::to_string(admin_port);
  CHECK(client.request(server.base() + "/metrics").status == 404);
  CHECK(client.request(server.base() + "/healthz").status == 200);
  CHECK(client.request(server.url("fit-in/100x100/photos/storm.jpg")).status == 200);
  Reply m = client.request(admin + "/metrics");
  CHECK(m.status == 200);
  CHECK(exposition_value(m.body, "thimble_requests_total{route=\"thumbnail\",status=\"200\"}") ==
        1);
  CHECK(exposition_value(m.body, "thimble_requests_total{route=\"other\",status=\"404\"}") == 1);
  CHECK(client.request(admin + "/readyz").status == 200);
  // The admin port serves no thumbnails.
  CHECK(client
            .request(admin +
                     server.url("fit-in/100x100/photos/storm.jpg").substr(server.base().size()))
            .status == 404);
}

TEST_CASE("HEAD answers the same headers with the real Content-Length and no body") {
  Server server;
  Client client;
  Reply get = client.request(server.url("fit-in/200x200/photos/storm.jpg"));
  Reply head = client.request(server.url("fit-in/200x200/photos/storm.jpg"), {}, "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.header("content-length") == std::to_string(get.body.size()));
  CHECK(head.header("etag") == get.header("etag"));
  CHECK(head.header("content-type") == "image/jpeg");
  // The connection is still usable after a HEAD: nothing stray was sent.
  Reply after = client.request(server.url("fit-in/200x200/photos/storm.jpg"));
  CHECK(after.status == 200);
  CHECK(after.new_connections == 0);
}

TEST_CASE("errors over HTTP: bad signature, malformed URL, missing file, path escape") {
  Server server;
  Client client;
  struct Row {
    std::string url;
    long status;
    const char* cache_control;
  };
  const signing::UrlSigner wrong({"wrong-key"}, false);
  const Row rows[] = {
      {server.base() + wrong.sign("fit-in/300x200/photos/storm.jpg"), 403, "public, max-age=60"},
      {server.base() + "/unsafe/fit-in/300x200/photos/storm.jpg", 403, "public, max-age=60"},
      {server.base() + "/fit-in/300x200/photos/storm.jpg", 403, "public, max-age=60"},
      {server.url("fit-in/300x200/filters:nonsense(1)/photos/storm.jpg"), 400,
       "public, max-age=60"},
      {server.url("fit-in/300x200/"), 400, "public, max-age=60"},
      {server.url("fit-in/300x200/photos/nothing-here.jpg"), 404, "public, max-age=60"},
      {server.url("fit-in/300x200/../secret.jpg"), 403, "public, max-age=60"},
      {server.url("fit-in/300x200/photos/%2e%2e/%2e%2e/secret.jpg"), 403, "public, max-age=60"},
      {server.base() + "/healthz", 200, "no-store"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.url);
    Reply r = client.request(row.url);
    CHECK(r.status == row.status);
    CHECK(r.header("cache-control") == row.cache_control);
    CHECK(r.body.size() < 200);
  }
  Reply post = client.request(server.url("fit-in/300x200/photos/storm.jpg"), {}, "POST");
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD");
}

TEST_CASE("auto-WebP reads the browser's Accept header and answers Vary: Accept") {
  Server server("{host: 127.0.0.1, workers: 2}", "output: {auto_webp: true}\n");
  Client client;
  const std::string url = server.url("fit-in/200x200/photos/storm.jpg");
  Reply browser =
      client.request(url, {"Accept: image/avif,image/webp,image/apng,image/*,*/*;q=0.8"});
  CHECK(browser.header("content-type") == "image/webp");
  CHECK(browser.header("vary") == "Accept");
  Reply refusing = client.request(url, {"Accept: image/webp;q=0, image/jpeg"});
  CHECK(refusing.header("content-type") == "image/jpeg");
  Reply plain = client.request(url, {"Accept: */*"});
  CHECK(plain.header("content-type") == "image/jpeg");
  CHECK(plain.header("vary") == "Accept");
  CHECK(plain.header("etag") != browser.header("etag"));
}

TEST_CASE("keep-alive connections are reused, and HTTP/1.0 clients are told to close") {
  Server server;
  Client client;
  Reply first = client.request(server.url("fit-in/100x100/photos/storm.jpg"));
  CHECK(first.new_connections == 1);
  for (int i = 0; i < 5; ++i) {
    Reply next = client.request(server.url("fit-in/100x100/photos/storm.jpg"));
    CHECK(next.status == 200);
    CHECK(next.new_connections == 0);
  }
  Client old;
  Reply http10 = old.request(server.url("fit-in/100x100/photos/storm.jpg"), {}, "GET", true);
  CHECK(http10.status == 200);
  CHECK(http10.header("connection") == "close");
}

TEST_CASE("URLs built by libthumbor work unchanged, percent-encoded keys included") {
  Server server;
  test::TempDir dir;
  test::write_file(
      dir.path() / "sign.py",
      "from libthumbor import CryptoURL\n"
      "c = CryptoURL(key='" +
          std::string(kKey) +
          "')\n"
          "print(c.generate(width=120, height=90, image_url='key%20with%20space.jpg'))\n"
          "print(c.generate(width=80, height=80, halign='left', image_url='photos/storm.jpg'))\n");
  FILE* pipe = popen(("/usr/bin/python3 " + (dir.path() / "sign.py").string()).c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 512> line{};
  std::vector<std::string> urls;
  while (fgets(line.data(), line.size(), pipe)) {
    std::string url = line.data();
    url.erase(url.find_last_not_of("\n") + 1);
    urls.push_back(url);
  }
  REQUIRE(pclose(pipe) == 0);
  REQUIRE(urls.size() == 2);
  Client client;
  Reply spaced = client.request(server.base() + urls[0]);
  CHECK(spaced.status == 200);
  CHECK(image_size(spaced.body) == cv::Size(120, 90));
  Reply aligned = client.request(server.base() + urls[1]);
  CHECK(aligned.status == 200);
  CHECK(image_size(aligned.body) == cv::Size(80, 80));
}

TEST_CASE("a full worker queue answers 503 with Retry-After instead of waiting") {
  Server server("{host: 127.0.0.1, workers: 1, queue_length: 1}");
  std::vector<Reply> replies(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      Client client;
      // Distinct, slow transforms: a full decode of a 20-megapixel JPEG each.
      replies[static_cast<std::size_t>(i)] =
          client.request(server.url("fit-in/" + std::to_string(6000 - i) + "x6000/large.jpg"));
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, busy = 0;
  std::string statuses;
  for (const auto& r : replies) statuses += std::to_string(r.status) + " ";
  CAPTURE(statuses);
  for (const auto& r : replies) {
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++busy;
      CHECK(r.header("retry-after") == "1");
      CHECK(r.header("cache-control") == "no-store");
    }
  }
  // One job running plus one waiting at most; if all six arrive before the worker takes the
  // first job off the queue, only that one is accepted.
  CHECK(ok + busy == 6);
  CHECK(ok >= 1);
  CHECK(ok <= 2);
  CHECK(busy >= 4);
}

TEST_CASE("SIGTERM lets in-flight requests finish, then exits 0") {
  Server server;
  Reply slow;
  std::thread in_flight([&] {
    Client client;
    // A full decode of a 20-megapixel JPEG, a wavelet sharpen and a 6000-pixel encode: seconds.
    slow = client.request(
        server.url("fit-in/6000x6000/filters:quality(95):sharpen(2,1,false)/large.jpg"));
  });
  // SIGTERM only once a worker is busy with the request: it has been accepted, so it must be
  // answered. (A request that reaches a draining server is refused, which is right but not what
  // this test is about.)
  Client probe;
  for (int i = 0; i < 600; ++i) {
    if (exposition_value(probe.request(server.base() + "/metrics").body, "thimble_workers_busy") >=
        1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int status = server.stop();
  in_flight.join();
  CHECK(slow.status == 200);
  CHECK(image_size(slow.body) == cv::Size(6000, 3375));
  CHECK(status == 0);
}

TEST_CASE("SIGHUP reloads keys and presets without dropping a request, and refuses a bad file") {
  Server server;
  Client client;
  const signing::UrlSigner rotated({"rotated-key"}, false);
  const std::string base = server.base();
  CHECK(client.request(base + rotated.sign("fit-in/100x100/photos/storm.jpg")).status == 403);

  // A slow request is in flight while the configuration changes under it.
  Reply slow;
  std::thread in_flight([&] {
    Client own;
    slow = own.request(server.url("fit-in/6000x6000/filters:quality(95)/large.jpg"));
  });
  for (int i = 0; i < 600; ++i) {
    if (exposition_value(client.request(base + "/metrics").body, "thimble_workers_busy") >= 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string yaml = test::read_file(server.config_path());
  const std::string old_keys = "keys: [" + std::string(kKey) + "]";
  yaml.replace(yaml.find(old_keys), old_keys.size(),
               "keys: [rotated-key, " + std::string(kKey) + "]");
  test::write_file(server.config_path(),
                   yaml + "presets: {tiny: {options: 'fit-in/32x32', public: true}}\n");
  server.signal(SIGHUP);
  Reply tiny;
  for (int i = 0; i < 300 && tiny.status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    tiny = client.request(base + "/preset:tiny/photos/storm.jpg");
  }
  CHECK(tiny.status == 200);
  CHECK(image_size(tiny.body) == cv::Size(32, 21));
  CHECK(client.request(base + rotated.sign("fit-in/100x100/photos/storm.jpg")).status == 200);
  CHECK(client.request(server.url("fit-in/100x100/photos/storm.jpg")).status == 200);  // old key
  in_flight.join();
  CHECK(slow.status == 200);
  CHECK(server.log().find("configuration reloaded from") != std::string::npos);

  // A broken file is refused with the reason; the running configuration keeps serving.
  test::write_file(server.config_path(), yaml + "presets: {tiny: 'fit-in/32x32/filters:nope()'}\n");
  server.signal(SIGHUP);
  std::string log;
  for (int i = 0; i < 300 && log.find("reload refused") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = server.log();
  }
  CHECK(log.find("reload refused, the previous configuration keeps serving: presets.tiny: ") !=
        std::string::npos);
  CHECK(client.request(base + "/preset:tiny/photos/storm.jpg").status == 200);
  // Changing the port needs a restart, and the log says so.
  test::write_file(server.config_path(), yaml +
                                             "presets: {tiny: {options: 'fit-in/32x32', public: "
                                             "true}}\n");
  std::string with_port = test::read_file(server.config_path());
  with_port.replace(with_port.find("workers: 2"), 10, "workers: 3");
  test::write_file(server.config_path(), with_port);
  server.signal(SIGHUP);
  for (int i = 0; i < 300 && log.find("take effect after a restart") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = server.log();
  }
  CHECK(log.find("warning: changes to server take effect after a restart") != std::string::npos);
  CHECK(server.stop() == 0);
}

TEST_CASE("--check-config exits 0 for a valid file and 1 naming the key for a bad one") {
  test::TempDir dir;
  test::write_file(dir.path() / "good.yaml", "security: {keys: [k]}\nsource: {file: {root: .}}\n");
  test::write_file(dir.path() / "bad.yaml",
                   "security: {keys: [k]}\nsource: {file: {root: .}}\nserver: {port: 0}\n");
  const std::string thimble = THIMBLE_SERVER_BINARY;
  auto run = [&](const std::string& args) {
    std::string output;
    FILE* pipe = popen((thimble + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 512> buffer{};
    while (fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    int status = pclose(pipe);
    return std::pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, output);
  };
  auto [good_status, good_output] =
      run("--check-config --config " + (dir.path() / "good.yaml").string());
  CHECK(good_status == 0);
  CHECK(good_output.find("configuration OK") != std::string::npos);
  auto [bad_status, bad_output] =
      run("--check-config --config " + (dir.path() / "bad.yaml").string());
  CHECK(bad_status == 1);
  CHECK(bad_output.find("server.port: must be between 1 and 65535, got 0") != std::string::npos);
  test::write_file(dir.path() / "preset.yaml",
                   "security: {keys: [k]}\nsource: {file: {root: .}}\n"
                   "presets: {broken: 'fit-in/10x10/filters:bogus(1)'}\n");
  auto [preset_status, preset_output] =
      run("--check-config --config " + (dir.path() / "preset.yaml").string());
  CHECK(preset_status == 1);
  CHECK(preset_output.find("presets.broken: ") != std::string::npos);
  auto [env_status, env_output] =
      run("--check-config --config " + (dir.path() / "good.yaml").string() + " --bogus");
  CHECK(env_status == 2);
  CHECK(env_output.find("usage:") != std::string::npos);
}

TEST_CASE("signed URLs up to 8 KB are served: Pistache's default 4 KB request limit is raised") {
  Server server;
  Client client;
  const std::string long_key = "photos/" + std::string(6000, 'a') + ".jpg";
  Reply r = client.request(server.url("fit-in/100x100/" + long_key));
  CHECK(r.status == 400);  // too long a file name for the file system, said plainly
  CHECK(r.body.find("the image path is too long") != std::string::npos);
  std::string deep_key;
  for (int i = 0; i < 20; ++i) deep_key += std::string(200, static_cast<char>('a' + i)) + "/";
  deep_key += "photo.jpg";  // just under PATH_MAX: the file source looks, and finds nothing
  Reply deep = client.request(server.url("fit-in/100x100/" + deep_key));
  CHECK(deep.status == 404);
  // Over limits.max_url_bytes (8 KB by default): refused before any other work.
  Reply over = client.request(server.url("fit-in/100x100/photos/" + std::string(8200, 'b')));
  CHECK(over.status == 414);
}

TEST_CASE("a second process sharing the result storage serves without the original") {
  test::TempDir shared;
  const std::string storage =
      "result_storage: {type: directory, directory: '" + shared.path().string() + "'}\n";
  Server first("{host: 127.0.0.1, workers: 2}", storage);
  Client client;
  Reply made = client.request(first.url("fit-in/150x100/photos/storm.jpg"));
  REQUIRE(made.status == 200);
  // The write happens after the answer: wait for it to land.
  const auto stored = shared.path() / "fit-in/150x100/photos/storm.jpg";
  for (int i = 0; i < 100 && !std::filesystem::exists(stored); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(std::filesystem::exists(stored));
  Server second("{host: 127.0.0.1, workers: 2}", storage);
  std::filesystem::remove_all(second.originals());  // this replica has no originals at all
  Client other;
  Reply served = other.request(second.url("fit-in/150x100/photos/storm.jpg"));
  CHECK(served.status == 200);
  CHECK(served.body == made.body);
  CHECK(served.header("etag") == made.header("etag"));
  // Anything not stored still needs the original, which this replica lacks.
  CHECK(other.request(second.url("fit-in/151x100/photos/storm.jpg")).status == 404);
}
