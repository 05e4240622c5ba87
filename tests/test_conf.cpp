// conf/: strict YAML loading, environment overrides, and the error-code table.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>

#include "conf/config.h"
#include "support.h"

using namespace thimble;
using thimble::conf::load_config_text;

namespace {
std::map<std::string, std::string> fake_env;
const char* lookup(const char* name) {
  auto it = fake_env.find(name);
  return it == fake_env.end() ? nullptr : it->second.c_str();
}
const std::string kMinimal = "security: {keys: [k1]}\nsource: {file: {root: .}}\n";
}  // namespace

TEST_CASE("a minimal configuration gets the documented defaults") {
  test::TempDir dir;
  auto config = load_config_text(kMinimal, dir.path().string(), nullptr);
  REQUIRE(config.ok());
  CHECK(config->server.host == "127.0.0.1");
  CHECK(config->server.port == 8888);
  CHECK(config->server.queue_length == 64);
  CHECK(config->server.listen_backlog == 1024);
  CHECK(config->server.max_request_bytes == 16384);
  CHECK_FALSE(config->security.allow_unsafe);
  CHECK(config->limits.max_source_bytes == 64ull << 20);
  CHECK(config->output.jpeg_quality == 80);
  CHECK(config->output.jpeg_progressive);
  CHECK(config->output.respect_orientation);
  CHECK_FALSE(config->output.auto_webp);
  CHECK(config->cache_control.max_age == 86400);
  CHECK(config->cache_control.error_max_age == 60);
  CHECK(config->source.file.root == dir.path().string());
}

TEST_CASE("the embedded development configuration is valid") {
  auto config = conf::load_config_file(THIMBLE_SOURCE_DIR "/conf/thimble.yaml", nullptr);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->security.keys == std::vector<std::string>{"thimble-development-key"});
  CHECK(std::filesystem::exists(std::filesystem::path(config->source.file.root) / "bridge.jpg"));
}

TEST_CASE("configuration errors name the YAML key path and the reason") {
  test::TempDir dir;
  struct Row {
    std::string yaml;
    std::string expected;
  };
  const Row rows[] = {
      {kMinimal + "server: {port: 70000}", "server.port: must be between 1 and 65535, got 70000"},
      {kMinimal + "server: {prot: 80}", "server.prot: unknown key"},
      {kMinimal + "colour: blue", "colour: unknown key"},
      {kMinimal + "server: 8080", "server: expected a mapping of keys"},
      {kMinimal + "output: {auto_webp: maybe}", "output.auto_webp: expected true or false"},
      {kMinimal + "output: {jpeg_quality: high}",
       "output.jpeg_quality: expected a whole number, got 'high'"},
      {kMinimal + "limits: {max_source_bytes: 12XB}",
       "limits.max_source_bytes: expected a byte count"},
      {"security: {keys: [k1]}\nsource: {type: ftp, file: {root: .}}",
       "source.type: expected one of: file"},
      {kMinimal + "source: {type: file}", "source: appears twice"},
      {kMinimal + "server: {port: 80, port: 81}", "server.port: appears twice"},
      {"source: {file: {root: .}}", "security.keys: at least one key is required"},
      {"security: {keys: [k]}\nsource: {file: {root: nowhere}}",
       "source.file.root: not a directory"},
      {"security: {keys: [k]\n", "not valid YAML"},
      {"security: {keys: [k]}\nsource: {type: http}", "source.http: set base_url or allowed_hosts"},
      {"security: {keys: [k]}\nsource: {type: s3}", "source.s3: set either bucket, or buckets"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {bucket: b, allowed_buckets: [c]}}",
       "source.s3: set either bucket, or buckets / allowed_buckets"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: [a, b]}}",
       "source.s3.buckets: expected a mapping of names to buckets"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: {Photos: p}}}",
       "source.s3.buckets: bucket name 'Photos' must be 1-63 characters"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: {p: {prefix: x/}}}}",
       "source.s3.buckets: bucket 'p': expected bucket, key_prefix and region strings, got "
       "'prefix'"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: {p: [x]}}}",
       "bucket 'p': expected a bucket name or {bucket, key_prefix, region}"},
      {kMinimal + "presets: {a: fit-in/1x1, a: fit-in/2x2}", "presets: preset 'a' appears twice"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: {a: x, a: y}}}",
       "source.s3.buckets: bucket 'a' appears twice"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {buckets: {p: q}, allowed_buckets: [p]}}",
       "source.s3.buckets: 'p' is also in allowed_buckets; name it once"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {bucket: b, endpoint: 'http://h:9/x'}}",
       "source.s3.endpoint: must be http(s)://host[:port] without a path"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {bucket: b, access_key_id: a}}",
       "source.s3: access_key_id and secret_access_key go together"},
      {"security: {keys: [k]}\nsource: {type: s3, s3: {bucket: b, access_denied_as: '500'}}",
       "source.s3.access_denied_as: expected one of: 404 403"},
      {"security: {keys: [k]}\nsource: {type: http, http: {base_url: 'https://a.example'}}",
       "source.http.base_url: must be an http(s) URL ending with '/'"},
      {"security: {keys: [k]}\nsource: {type: http, http: {base_url: 'ftp://a.example/'}}",
       "source.http.base_url: must be an http(s) URL"},
      {"security: {keys: [k]}\nsource: {type: http, http: {allowed_hosts: [a.example], "
       "default_scheme: gopher}}",
       "source.http.default_scheme: expected one of: https http"},
      {kMinimal + "presets: [small]", "presets: expected a mapping of preset names to options"},
      {kMinimal + "presets: {Small: fit-in/10x10}",
       "presets: preset name 'Small' must be 1-64 characters of a-z, 0-9, _ and -"},
      {kMinimal + "presets: {small: ''}", "presets: preset 'small': options must be a non-empty"},
      {kMinimal + "presets: {small: /fit-in/10x10}", "without leading or trailing '/'"},
      {kMinimal + "presets: {small: {options: fit-in/10x10, public: yes}}",
       "presets: preset 'small': expected options: <string> and public: true|false, got 'public'"},
      {kMinimal + "presets: {small: [fit-in]}",
       "presets: preset 'small': expected an option string or {options, public}"},
      {kMinimal + "security: {only_presets: true}", "security: appears twice"},
      {"security: {keys: [k], only_presets: true}\nsource: {file: {root: .}}",
       "security.only_presets: no presets are configured"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.yaml);
    CAPTURE(row.expected);
    auto config = load_config_text(row.yaml, dir.path().string(), nullptr);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find(row.expected) != std::string::npos);
  }
}

TEST_CASE("presets: a plain option string, or options with public") {
  test::TempDir dir;
  auto config = load_config_text(kMinimal +
                                     "presets:\n"
                                     "  small: fit-in/200x200/filters:quality(75)\n"
                                     "  avatar: {options: 100x100/smart, public: true}\n",
                                 dir.path().string(), nullptr);
  REQUIRE(config.ok());
  REQUIRE(config->presets.size() == 2);
  CHECK(config->presets.at("small").options == "fit-in/200x200/filters:quality(75)");
  CHECK_FALSE(config->presets.at("small").is_public);
  CHECK(config->presets.at("avatar").options == "100x100/smart");
  CHECK(config->presets.at("avatar").is_public);
  CHECK_FALSE(config->security.only_presets);
}

TEST_CASE("a reload names the changes that need a restart, and only those") {
  test::TempDir dir;
  auto running = load_config_text(kMinimal, dir.path().string(), nullptr);
  REQUIRE(running.ok());
  conf::Config fresh = *running;
  fresh.security.keys = {"new", "k1"};
  fresh.presets["small"] = {"fit-in/100x100", true};
  fresh.cache_control.max_age = 60;
  fresh.output.jpeg_quality = 70;
  fresh.limits.max_source_pixels = 1000;
  fresh.result_cache.not_found_ttl_s = 1;
  CHECK(conf::restart_required_changes(*running, fresh).empty());
  fresh.server.port = 9999;
  fresh.source.file.root = "/elsewhere";
  fresh.result_cache.memory_bytes = 1;
  fresh.smart.remembered_originals = 5;
  CHECK(conf::restart_required_changes(*running, fresh) ==
        std::vector<std::string>{"server", "source", "result_cache.memory_bytes",
                                 "smart.remembered_originals"});
}

TEST_CASE("byte counts accept binary suffixes") {
  test::TempDir dir;
  auto config = load_config_text(kMinimal +
                                     "limits: {max_source_bytes: 8MiB}\n"
                                     "result_cache: {memory_bytes: 1GiB}",
                                 dir.path().string(), nullptr);
  REQUIRE(config.ok());
  CHECK(config->limits.max_source_bytes == 8ull << 20);
  CHECK(config->result_cache.memory_bytes == 1ull << 30);
}

TEST_CASE("THIMBLE_* environment variables override the file, lists comma-separated") {
  test::TempDir dir;
  fake_env = {{"THIMBLE_SERVER_PORT", "9100"},
              {"THIMBLE_SECURITY_KEYS", "new-key,old-key"},
              {"THIMBLE_OUTPUT_AUTO_WEBP", "true"}};
  auto config = load_config_text(kMinimal, dir.path().string(), &lookup);
  REQUIRE(config.ok());
  CHECK(config->server.port == 9100);
  CHECK(config->security.keys == std::vector<std::string>{"new-key", "old-key"});
  CHECK(config->output.auto_webp);

  fake_env = {{"THIMBLE_SERVER_PORT", "http"}};
  auto bad = load_config_text(kMinimal, dir.path().string(), &lookup);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("server.port (from THIMBLE_SERVER_PORT)") == 0);
  fake_env.clear();
}

TEST_CASE("every key maps to an environment variable name") {
  CHECK(conf::env_name_for("source.file.root") == "THIMBLE_SOURCE_FILE_ROOT");
  auto keys = conf::known_keys();
  CHECK(std::find(keys.begin(), keys.end(), "security.keys") != keys.end());
  CHECK(keys.size() >= 25);
}

TEST_CASE("README.md documents every configuration key") {
  const std::string readme = test::read_file(THIMBLE_SOURCE_DIR "/README.md");
  for (const auto& key : conf::known_keys()) {
    CAPTURE(key);
    CHECK(readme.find("| `" + key + "` |") != std::string::npos);
  }
}

TEST_CASE("S3 credentials come from the configuration, else from the standard AWS variables") {
  test::TempDir dir;
  const std::string yaml = "security: {keys: [k]}\nsource: {type: s3, s3: {bucket: photos}}";
  fake_env = {{"AWS_ACCESS_KEY_ID", "AKIDENV"},
              {"AWS_SECRET_ACCESS_KEY", "secretenv"},
              {"AWS_SESSION_TOKEN", "tokenenv"}};
  auto from_env = load_config_text(yaml, dir.path().string(), &lookup);
  REQUIRE(from_env.ok());
  CHECK(from_env->source.s3.access_key_id == "AKIDENV");
  CHECK(from_env->source.s3.secret_access_key == "secretenv");
  CHECK(from_env->source.s3.session_token == "tokenenv");
  auto own = load_config_text(
      "security: {keys: [k]}\nsource: {type: s3, s3: {bucket: photos, access_key_id: AKIDFILE, "
      "secret_access_key: s}}",
      dir.path().string(), &lookup);
  REQUIRE(own.ok());
  CHECK(own->source.s3.access_key_id == "AKIDFILE");
  CHECK(own->source.s3.session_token.empty());
  fake_env.clear();
}
