// thimble-warm end to end: the real binary with the server's configuration file, a real `thimble`
// beside it, the file source + directory store and the S3 source + S3 store on an S3 server.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "s3_server.h"
#include "support.h"
#include "thimble_process.h"

using namespace thimble;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct WarmRun {
  int status = -1;
  std::string out, err;
};

// Runs thimble-warm with `args`; `while_running` (if given) is called with its pid once it started
// and may signal it.
WarmRun run_warm(const std::vector<std::string>& args,
                 const std::function<void(pid_t)>& while_running = nullptr) {
  test::TempDir logs;
  const fs::path out = logs.path() / "out", err = logs.path() / "err";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    test::end_with_parent(SIGKILL, parent);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    const int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("thimble-warm"));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(THIMBLE_WARM_BINARY, argv.data());
    _exit(127);
  }
  if (while_running) while_running(pid);
  int status = 0;
  ::waitpid(pid, &status, 0);
  WarmRun run;
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = test::read_file(out);
  run.err = test::read_file(err);
  return run;
}

// A number from the summary: the value of the line `  <label>   <n>`. (No std::regex: GCC 12
// warns inside it under the sanitizers.)
long summary_value(const WarmRun& run, const std::string& label) {
  const std::string start = "\n  " + label + " ";
  const std::size_t at = run.err.find(start);
  if (at == std::string::npos) return -1;
  const std::size_t digits = run.err.find_first_not_of(' ', at + start.size());
  if (digits == std::string::npos || !std::isdigit(static_cast<unsigned char>(run.err[digits]))) {
    return -1;
  }
  return std::stol(run.err.substr(digits));
}

// Where originals live and where results land, for one kind of source and storage.
struct Backend {
  std::string source_yaml, storage_yaml;
  std::function<void(const std::string& key, const std::string& bytes)> put;
  std::function<void(const std::string& key)> remove;
  // The stored body of a result key; nullopt when there is none.
  std::function<std::optional<std::string>(const std::string& key)> stored;
};

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

double metric(const test::ThimbleProcess& thimble, const std::string& name) {
  const std::string text = test::http_call("GET", thimble.base() + "/metrics").body;
  const std::size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

// The scenario every backend goes through: warm, skip, serve from storage, a changed original, a
// deleted one, a purge.
void warm_scenario(Backend& backend) {
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  const std::string other = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  backend.put("photos/storm.jpg", photo);
  backend.put("photos/landscape.jpg", other);
  backend.put("photos/rain.jpg", test::read_file(test::corpus("medium/mate_RainDrops.jpg")));
  backend.put("photos/notes.jpg", "these are notes, not a photo");
  backend.put("albums/cover.jpg", photo);

  test::ThimbleProcess thimble("{host: 127.0.0.1, workers: 2}",
                               "output: {auto_webp: true}\n"
                               "presets: {small: fit-in/200x200, tiny: fit-in/120x90}\n" +
                                   backend.storage_yaml,
                               "{max_age: 600}", "", backend.source_yaml);
  const std::string config = thimble.config_path().string();
  // preset:tiny is fit-in/120x90: the same stored file answers both URLs.
  const std::vector<std::string> plan = {"--config", config,    "--preset",  "small",
                                         "--preset", "tiny",    "--formats", "jpeg,webp",
                                         "--prefix", "photos/", "--jobs",    "2"};

  // Two presets in two formats of the four photos; the notes are listed as a failure.
  WarmRun first = run_warm(plan);
  CAPTURE(first.err);
  CHECK(first.status == 1);
  CHECK(summary_value(first, "originals") == 4);
  CHECK(summary_value(first, "made") == 12);
  CHECK(summary_value(first, "failed") == 4);
  CHECK(first.err.find("photos/notes.jpg  preset:small  jpeg  415") != std::string::npos);
  CHECK(first.err.find("photos/notes.jpg  preset:tiny  webp  415") != std::string::npos);
  for (const char* key :
       {"fit-in/200x200/photos/storm.jpg", "fit-in/200x200/photos/storm.jpg.webp",
        "fit-in/120x90/photos/rain.jpg", "fit-in/120x90/photos/landscape.jpg.webp"}) {
    CAPTURE(std::string(key));
    CHECK(backend.stored(key).has_value());
  }
  CHECK_FALSE(backend.stored("fit-in/120x90/albums/cover.jpg").has_value());  // not under --prefix

  // The server answers each of them from storage, byte for byte, without a transform.
  test::Client client;
  const test::Reply served =
      client.request(thimble.url("preset:small/photos/storm.jpg"), {"Accept: image/webp,*/*"});
  CHECK(served.status == 200);
  CHECK(served.header("content-type") == "image/webp");
  CHECK(served.body == backend.stored("fit-in/200x200/photos/storm.jpg.webp").value_or(""));
  const test::Reply plain = client.request(thimble.url("fit-in/120x90/photos/storm.jpg"));
  CHECK(plain.body == backend.stored("fit-in/120x90/photos/storm.jpg").value_or(""));
  CHECK(metric(thimble, "thimble_transforms_total") == 0);
  CHECK(metric(thimble, "thimble_result_storage_hits_total") == 2);

  // A second run finds everything up to date.
  WarmRun second = run_warm(plan);
  CAPTURE(second.err);
  CHECK(summary_value(second, "made") == 0);
  CHECK(summary_value(second, "skipped") == 12);
  CHECK(summary_value(second, "failed") == 4);

  // Replaced in place: past revalidate_s the server renders the new photo and stores it.
  backend.put("photos/storm.jpg", other);
  std::this_thread::sleep_for(1100ms);
  const test::Reply changed = client.request(thimble.url("fit-in/120x90/photos/storm.jpg"));
  CHECK(changed.status == 200);
  CHECK(changed.header("etag") != plain.header("etag"));
  CHECK(changed.body != plain.body);
  CHECK(wait_until([&] {
    return backend.stored("fit-in/120x90/photos/storm.jpg").value_or("") == changed.body;
  }));
  // The one held in the server's memory is checked too.
  const test::Reply changed_webp =
      client.request(thimble.url("preset:small/photos/storm.jpg"), {"Accept: image/webp,*/*"});
  CHECK(changed_webp.header("etag") != served.header("etag"));
  // And a warm run re-makes the variants the server was not asked for.
  WarmRun third = run_warm(plan);
  CAPTURE(third.err);
  CHECK(summary_value(third, "made") == 2);  // both presets as JPEG
  CHECK(summary_value(third, "skipped") == 10);

  // Deleted: a 404, and every stored variant of it goes.
  backend.remove("photos/landscape.jpg");
  std::this_thread::sleep_for(1100ms);
  CHECK(client.request(thimble.url("fit-in/120x90/photos/landscape.jpg")).status == 404);
  CHECK(wait_until([&] {
    return !backend.stored("fit-in/200x200/photos/landscape.jpg").has_value() &&
           !backend.stored("fit-in/120x90/photos/landscape.jpg.webp").has_value();
  }));

  // --purge removes exactly the variants of the originals named.
  test::TempDir paths_dir;
  const fs::path paths = paths_dir.path() / "paths";
  WarmRun purged =
      run_warm({"--config", config, "--purge", "photos/rain.jpg", "--cdn-paths", paths.string()});
  CAPTURE(purged.err);
  CHECK(purged.status == 0);
  CHECK(purged.err.find("removed 4 stored variants of 1 original") != std::string::npos);
  // The URL paths a CDN holds them under, for its invalidation: one per variant, whatever the
  // Accept, signed as thimble-sign signs them.
  std::vector<std::string> lines;
  {
    std::istringstream in(test::read_file(paths));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  const signing::UrlSigner signer({test::kKey}, false);
  std::vector<std::string> expected = {
      signer.sign("fit-in/120x90/photos/rain.jpg"), signer.sign("fit-in/200x200/photos/rain.jpg"),
      signer.sign("preset:small/photos/rain.jpg"), signer.sign("preset:tiny/photos/rain.jpg")};
  std::sort(expected.begin(), expected.end());
  CHECK(lines == expected);
  for (const char* key : {"fit-in/200x200/photos/rain.jpg", "fit-in/200x200/photos/rain.jpg.webp",
                          "fit-in/120x90/photos/rain.jpg", "fit-in/120x90/photos/rain.jpg.webp"}) {
    CHECK_FALSE(backend.stored(key).has_value());
  }
  CHECK(backend.stored("fit-in/200x200/photos/storm.jpg.webp").has_value());
  // By prefix.
  WarmRun all = run_warm({"--config", config, "--purge", "--prefix", "photos/"});
  CAPTURE(all.err);
  CHECK(all.status == 0);
  CHECK_FALSE(backend.stored("fit-in/200x200/photos/storm.jpg.webp").has_value());
  CHECK(thimble.stop() == 0);
}

}  // namespace

TEST_CASE("thimble-warm: file source and directory store") {
  test::TempDir originals_dir;
  const fs::path originals = originals_dir.path();
  Backend backend;
  backend.source_yaml = "{type: file, file: {root: " + originals.string() + "}}";
  test::TempDir results_dir;
  const fs::path results = results_dir.path();
  backend.storage_yaml =
      "result_storage: {type: directory, directory: " + results.string() + ", revalidate_s: 1}\n";
  backend.put = [&](const std::string& key, const std::string& bytes) {
    fs::create_directories((originals / key).parent_path());
    // A new file, as an upload replaces one: a new inode and size.
    const fs::path temporary = originals / (key + ".upload");
    test::write_file(temporary, bytes);
    fs::rename(temporary, originals / key);
  };
  backend.remove = [&](const std::string& key) { fs::remove(originals / key); };
  backend.stored = [&](const std::string& key) -> std::optional<std::string> {
    if (!fs::is_regular_file(results / key)) return std::nullopt;
    // The server may remove it between the two looks (its original gone): absent then too.
    std::ifstream in(results / key, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  };
  warm_scenario(backend);
}

TEST_CASE("thimble-warm: S3 source and S3 result storage, on an S3 server") {
  test::S3Server server;
  server.create_bucket("originals");
  server.create_bucket("results");
  const std::string s3 = "endpoint: " + server.endpoint() +
                         ", addressing: path, access_key_id: " + server.access_key_id() +
                         ", secret_access_key: " + server.secret_access_key();
  Backend backend;
  backend.source_yaml = "{type: s3, s3: {" + s3 + ", bucket: originals}}";
  backend.storage_yaml = "result_storage: {type: s3, revalidate_s: 1, s3: {" + s3 +
                         ", bucket: results, prefix: t/}}\n";
  backend.put = [&](const std::string& key, const std::string& bytes) {
    server.put("originals", key, bytes);
  };
  backend.remove = [&](const std::string& key) {
    CHECK(server.call("DELETE", "/originals/" + key).status == 204);
  };
  backend.stored = [&](const std::string& key) -> std::optional<std::string> {
    std::string encoded;
    for (char c : key) {
      if (c == ':')
        encoded += "%3A";
      else if (c == '(')
        encoded += "%28";
      else if (c == ')')
        encoded += "%29";
      else
        encoded += c;
    }
    const test::HttpReply reply = server.call("GET", "/results/t/" + encoded);
    if (reply.status != 200) return std::nullopt;
    return reply.body;
  };
  warm_scenario(backend);
}

TEST_CASE("thimble-warm: an interrupted run stops after the originals in flight and resumes") {
  test::TempDir dir;
  const fs::path originals = dir.path() / "originals";
  fs::create_directories(originals);
  const std::string photo = test::read_file(test::corpus("large/Kleiber_by_Lukas_Baubkus.jpg"));
  for (int i = 0; i < 40; ++i)
    test::write_file(originals / ("p" + std::to_string(i) + ".jpg"), photo);
  test::write_file(dir.path() / "thimble.yaml",
                   "security: {keys: [warm-key]}\n"
                   "source: {type: file, file: {root: originals}}\n"
                   "result_storage: {type: directory, directory: results}\n");
  const std::string config = (dir.path() / "thimble.yaml").string();
  const std::vector<std::string> plan = {"--config",  config,    "--options", "fit-in/300x200",
                                         "--options", "100x100", "--jobs",    "1"};
  const fs::path index = dir.path() / "results/.thimble/variants";
  WarmRun stopped = run_warm(plan, [&](pid_t pid) {
    // Interrupted once a few originals are made.
    wait_until(
        [&] {
          std::error_code ec;
          std::size_t made = 0;
          for (fs::directory_iterator it(index, ec), end; !ec && it != end; it.increment(ec))
            ++made;
          return made >= 3;
        },
        60000ms);
    ::kill(pid, SIGINT);
  });
  CAPTURE(stopped.err);
  CHECK(stopped.status == 130);
  CHECK(stopped.err.find("interrupted") != std::string::npos);
  const long made = summary_value(stopped, "made");
  CHECK(made >= 6);
  CHECK(made < 80);
  CHECK(made % 2 == 0);  // an original in flight is finished: both of its variants

  WarmRun resumed = run_warm(plan);
  CAPTURE(resumed.err);
  CHECK(resumed.status == 0);
  CHECK(summary_value(resumed, "skipped") == made);
  CHECK(summary_value(resumed, "made") == 80 - made);
}

TEST_CASE("thimble-warm: --server fills a running server's storage, and failures set the status") {
  test::TempDir results_dir;
  test::ThimbleProcess thimble(
      "{host: 127.0.0.1, workers: 2}",
      "result_storage: {type: directory, directory: " + results_dir.path().string() + "}\n");
  // A key that leaves the source folder, and one that does not exist.
  fs::create_symlink(thimble.directory() / "secret.jpg", thimble.originals() / "escape.jpg");
  test::TempDir keys_dir;
  const fs::path keys = keys_dir.path() / "keys.txt";
  test::write_file(keys, "# the library\nphotos/storm.jpg\nlarge.jpg\n\nescape.jpg\nmissing.jpg\n");
  WarmRun run = run_warm({"--config", thimble.config_path().string(), "--server", thimble.base(),
                          "--keys", keys.string(), "--options", "fit-in/64x64", "--jobs", "2"});
  CAPTURE(run.err);
  CHECK(run.status == 1);
  CHECK(summary_value(run, "served") == 2);
  CHECK(summary_value(run, "failed") == 2);
  CHECK(run.err.find("escape.jpg  fit-in/64x64  jpeg  403") != std::string::npos);
  CHECK(run.err.find("missing.jpg  fit-in/64x64  jpeg  404") != std::string::npos);
  for (const char* key : {"fit-in/64x64/photos/storm.jpg", "fit-in/64x64/large.jpg"}) {
    CAPTURE(std::string(key));
    CHECK(wait_until([&] { return fs::exists(results_dir.path() / key); }));
  }
  CHECK(metric(thimble, "thimble_transforms_total") == 2);

  // --dry-run lists the requests and makes nothing; a usage error is status 2.
  WarmRun dry = run_warm({"--config", thimble.config_path().string(), "--options", "10x10",
                          "--prefix", "photos/", "--dry-run"});
  CHECK(dry.status == 0);
  CHECK(dry.out.find("/fit-in/") == std::string::npos);
  CHECK(dry.out.find("/10x10/photos/storm.jpg") != std::string::npos);
  CHECK_FALSE(fs::exists(results_dir.path() / "10x10"));
  CHECK(run_warm({"--config", thimble.config_path().string()}).status == 2);
  CHECK(run_warm(
            {"--config", thimble.config_path().string(), "--options", "10x10", "--formats", "webp"})
            .status == 2);  // output.auto_webp is off
}
