// thimble-warm: renders the variants of a library of originals ahead of time, with the server's
// own configuration and code (proxy/warm/warmer.h), and removes stored variants (--purge).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/result_cache.h"
#include "conf/base/clock.h"
#include "conf/config.h"
#include "proxy/service/origin_service.h"
#include "proxy/sources/source_factory.h"
#include "proxy/warm/warmer.h"
#include "signing/signer.h"
#include "transform/pipeline.h"
#include "transform/spec.h"

namespace {

using namespace thimble;

constexpr const char* kUsage =
    "usage: thimble-warm [--config FILE] (--preset NAME | --all-presets | --options OPTIONS)...\n"
    "                    [--formats LIST] [--prefix P | --keys FILE] [--server URL]\n"
    "                    [--jobs N] [--dry-run] [--quiet]\n"
    "       thimble-warm [--config FILE] --purge (KEY... | --prefix P) [--cdn-paths FILE]\n"
    "\n"
    "Makes the thumbnails of every original ahead of time, with the server's configuration and\n"
    "code: the same bytes, ETags and result-storage keys as the requests that will ask for them.\n"
    "\n"
    "What to make (each is one variant; every original gets every variant in every format):\n"
    "  --preset NAME      a configured preset (repeatable)\n"
    "  --all-presets      every configured preset\n"
    "  --options OPTIONS  Thumbor options before the image, e.g. 'fit-in/300x200' (repeatable)\n"
    "  --formats LIST     comma-separated: jpeg (the answer without negotiation: the original's\n"
    "                     own format, or what format() asks), webp, avif; default: jpeg, plus\n"
    "                     webp and avif when output.auto_webp / output.auto_avif negotiate them\n"
    "Which originals:\n"
    "  --prefix P         every key of the configured source starting with P (file: a walk of\n"
    "                     the folder; s3: a listing of the bucket, or of each named bucket)\n"
    "  --keys FILE        the keys in FILE, one per line as in a URL ('-': standard input);\n"
    "                     needed for the http source, which cannot be listed\n"
    "Where:\n"
    "  (default)          into the configured result storage (result_storage.type)\n"
    "  --server URL       send signed requests to a running Thimble (or its CDN), which stores\n"
    "                     what it makes itself\n"
    "Behaviour:\n"
    "  --jobs N           originals made at once (default: the number of cores)\n"
    "  --dry-run          print the requests it would make, make nothing\n"
    "  --quiet            no progress, only the summary\n"
    "  --purge KEY...     remove every stored variant of these originals (keys as in a URL);\n"
    "                     with --prefix P, of every original whose key starts with P\n"
    "  --cdn-paths FILE   with --purge: write the URL paths of what was removed, one per line\n"
    "                     (signed, and unsigned when security.signature_header is set), for a\n"
    "                     CDN invalidation\n"
    "\n"
    "A variant already in storage is checked against its original (a stat(), a conditional GET)\n"
    "and skipped when it was made from the same version with the same settings: a run that was\n"
    "interrupted resumes. SIGINT stops after the originals in flight.\n"
    "Exit status: 0 done, 1 something failed (each failure is listed), 2 usage or\n"
    "configuration error, 130 interrupted.\n";

const char* environment(const char* name) {
  return std::getenv(name);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string human_bytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (bytes >= (1ull << 30)) {
    out << static_cast<double>(bytes) / (1ull << 30) << " GiB";
  } else if (bytes >= (1ull << 20)) {
    out << static_cast<double>(bytes) / (1ull << 20) << " MiB";
  } else if (bytes >= 1024) {
    out << static_cast<double>(bytes) / 1024 << " KiB";
  } else {
    out << bytes << " B";
  }
  return out.str();
}

int usage_error(const std::string& message) {
  std::cerr << "thimble-warm: " << message << "\n\n" << kUsage;
  return 2;
}

int config_error(const std::string& message) {
  std::cerr << "thimble-warm: " << message << "\n";
  return 2;
}

struct Arguments {
  std::string config_path = "conf/thimble.yaml";
  std::vector<std::string> presets, options;
  bool all_presets = false;
  std::string formats;
  std::string prefix;
  bool has_prefix = false;
  std::string keys_file;
  std::string server;
  int jobs = 0;
  bool dry_run = false, quiet = false, purge = false;
  std::vector<std::string> purge_keys;
  std::string cdn_paths;
};

// The request path a stored variant answers: its key without the suffix a negotiated format
// added (one path answers every Accept).
std::string url_path_of(const std::string& key, const std::string& image) {
  for (const char* suffix : {".webp", ".avif"}) {
    const std::string negotiated = image + suffix;
    if (key.ends_with("/" + negotiated) || key == negotiated) {
      return key.substr(0, key.size() - std::string(suffix).size());
    }
  }
  return key;
}

// Reads the keys of a --keys file (or stdin) one line at a time.
Status feed_lines(std::istream& in, const std::function<bool(const std::string&)>& each) {
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start, line.find_last_not_of(" \t") - start + 1);
    if (line.front() == '/') line.erase(0, 1);
    if (!each(line)) break;
  }
  return Status::Ok();
}

void print_summary(const proxy::WarmSummary& s, const proxy::Warmer::Plan& plan, bool server) {
  const std::uint64_t total = s.made + s.skipped + s.failed;
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  out << "\nthimble-warm: " << (s.interrupted ? "interrupted" : "done") << " after " << s.seconds
      << " s\n";
  out << "  originals     " << s.originals << "\n";
  out << "  variants      " << total << " (" << plan.variants.size() << " variant"
      << (plan.variants.size() == 1 ? "" : "s") << " x " << plan.formats.size() << " format"
      << (plan.formats.size() == 1 ? "" : "s") << " each)\n";
  out << "  " << (server ? "served        " : "made          ") << s.made << " ("
      << human_bytes(s.bytes) << (server ? " received" : " written") << ")\n";
  if (!server) out << "  skipped       " << s.skipped << " (up to date)\n";
  out << "  failed        " << s.failed << "\n";
  for (const auto& [reason, count] : s.failed_by_reason) {
    out << "    " << count << "  " << reason << "\n";
  }
  if (s.seconds > 0) {
    out << "  images/s      " << static_cast<double>(s.made) / s.seconds << " made, "
        << static_cast<double>(total) / s.seconds << " done\n";
  }
  if (!s.feed_status.ok()) out << "  listing       stopped: " << s.feed_status.message() << "\n";
  if (s.interrupted) {
    out << "  not finished: run the same command again to make the rest (what is up to date is "
           "skipped)\n";
  }
  if (!s.failures.empty()) {
    out << "failures:\n";
    for (const proxy::WarmFailure& f : s.failures) {
      out << "  " << f.key << "  " << f.variant << "  " << f.format << "  "
          << (f.status ? std::to_string(f.status) + " " : std::string()) << f.reason << "\n";
    }
    if (s.unlisted_failures > 0) out << "  ... and " << s.unlisted_failures << " more\n";
  }
  std::cerr << out.str();
}

// The progress of a run: a bar redrawn in place on a terminal (a count while the listing still
// streams, a bar once its total is known), a line every 10 s otherwise.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool quiet) : quiet_(quiet), terminal_(::isatty(2) == 1) {}

  void update(const proxy::WarmSummary& s) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (terminal_ ? std::chrono::milliseconds(100) : std::chrono::seconds(10))) {
      return;
    }
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    std::ostringstream line;
    line << std::fixed << std::setprecision(1);
    line << s.originals << " originals, " << s.made << " made, " << s.skipped << " skipped, "
         << s.failed << " failed, " << (seconds > 0 ? static_cast<double>(s.made) / seconds : 0)
         << " images/s";
    if (terminal_) {
      static const char* const kSpin = "|/-\\";
      std::string bar;
      if (!s.listing && s.listed > 0) {
        const double done = static_cast<double>(s.originals) / static_cast<double>(s.listed);
        const int filled = static_cast<int>(done * 30);
        bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
              std::string(static_cast<std::size_t>(30 - filled), '.') + "] " +
              std::to_string(static_cast<int>(done * 100)) + "% of " + std::to_string(s.listed) +
              ", ";
      } else {
        bar = std::string(1, kSpin[spin_++ % 4]) + " listing (" + std::to_string(s.listed) +
              " so far), ";
      }
      std::cerr << "\r\033[K" << bar << line.str() << std::flush;
    } else {
      std::cerr << "thimble-warm: " << line.str() << "\n";
    }
  }
  void finish() {
    if (!quiet_ && terminal_) std::cerr << "\r\033[K";
  }

 private:
  bool quiet_, terminal_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = started_;
  unsigned spin_ = 0;
};

int purge(const Arguments& args, const conf::Config& config) {
  SystemClock clock;
  std::unique_ptr<cache::ResultStore> store = proxy::make_result_store(config, clock);
  if (!store) return config_error("result_storage.type is none: there is nothing to purge");
  std::ofstream paths;
  if (!args.cdn_paths.empty()) {
    paths.open(args.cdn_paths, std::ios::trunc);
    if (!paths) return config_error("cannot write " + args.cdn_paths);
  }
  signing::UrlSigner signer(config.security.keys, false);
  // Presets are cached by a CDN under their own paths: each preset's canonical options, so a
  // removed variant made with them names the preset path too.
  struct PresetPath {
    std::string options;  // canonical, with the trailing '/'
    std::string name;
    bool is_public;
  };
  std::vector<PresetPath> presets;
  for (const auto& [name, preset] : config.presets) {
    Result<transform::ThumbnailSpec> spec = transform::parse_spec(preset.options + "/x.jpg");
    if (!spec.ok()) continue;
    const std::string path = spec->path();
    presets.push_back({path.substr(0, path.size() - 5), name, preset.is_public});
  }
  std::set<std::string> written;
  const auto write_path = [&](const std::string& path, bool is_public) {
    if (!written.insert(path).second) return;
    if (signer.has_keys()) paths << signer.sign(path) << "\n";
    // Unsigned: with the signature in a header (the CloudFront recipe), and public presets.
    if (!config.security.signature_header.empty() || !signer.has_keys() || is_public) {
      paths << "/" << path << "\n";
    }
  };
  const cache::ResultStore::Removed removed = [&](const std::string& key,
                                                  const std::string& image) {
    if (!paths.is_open()) return;
    const std::string path = url_path_of(key, image);
    write_path(path, false);
    const std::string options = path.substr(0, path.size() - image.size());
    for (const PresetPath& preset : presets) {
      if (preset.options == options) {
        write_path("preset:" + preset.name + "/" + image, preset.is_public);
      }
    }
  };
  cache::PurgeCounts counts;
  const auto add = [&](const cache::PurgeCounts& more) {
    counts.originals += more.originals;
    counts.variants += more.variants;
    counts.failed += more.failed;
  };
  if (args.has_prefix) {
    add(store->purge(args.prefix, true, removed));
  } else {
    for (const std::string& key : args.purge_keys) {
      add(store->purge(key, false, removed));
      // A key written decoded is also purged in the form URLs carry it.
      if (const std::string encoded = proxy::url_encode_key(key); encoded != key) {
        add(store->purge(encoded, false, removed));
      }
    }
  }
  std::cerr << "thimble-warm: removed " << counts.variants << " stored variant"
            << (counts.variants == 1 ? "" : "s") << " of " << counts.originals << " original"
            << (counts.originals == 1 ? "" : "s");
  if (counts.failed > 0) std::cerr << "; " << counts.failed << " could not be removed";
  std::cerr << "\n";
  return counts.failed > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](const char* name) -> std::optional<std::string> {
      const std::string with_equals = std::string(name) + "=";
      if (arg.starts_with(with_equals)) return arg.substr(with_equals.size());
      if (arg == name && i + 1 < argc) return std::string(argv[++i]);
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (auto v = value("--config")) {
      args.config_path = *v;
    } else if (auto p = value("--preset")) {
      args.presets.push_back(*p);
    } else if (arg == "--all-presets") {
      args.all_presets = true;
    } else if (auto o = value("--options")) {
      std::string options = *o;
      while (!options.empty() && options.back() == '/') options.pop_back();
      while (!options.empty() && options.front() == '/') options.erase(0, 1);
      args.options.push_back(options);
    } else if (auto f = value("--formats")) {
      args.formats = *f;
    } else if (auto x = value("--prefix")) {
      args.prefix = *x;
      args.has_prefix = true;
    } else if (auto k = value("--keys")) {
      args.keys_file = *k;
    } else if (auto c = value("--cdn-paths")) {
      args.cdn_paths = *c;
    } else if (auto s = value("--server")) {
      args.server = *s;
      while (!args.server.empty() && args.server.back() == '/') args.server.pop_back();
    } else if (auto j = value("--jobs")) {
      args.jobs = std::atoi(j->c_str());
      if (args.jobs < 1 || args.jobs > 1024) return usage_error("--jobs must be 1 to 1024");
    } else if (arg == "--dry-run") {
      args.dry_run = true;
    } else if (arg == "--quiet") {
      args.quiet = true;
    } else if (arg == "--purge") {
      args.purge = true;
    } else if (args.purge && !arg.starts_with("--")) {
      args.purge_keys.push_back(arg.front() == '/' ? arg.substr(1) : arg);
    } else {
      return usage_error("unknown or incomplete argument '" + arg + "'");
    }
  }

  Result<conf::Config> loaded = conf::load_config_file(args.config_path, environment);
  if (!loaded.ok()) return config_error("configuration error: " + loaded.status().message());
  const conf::Config& config = *loaded;

  if (args.purge) {
    if (args.has_prefix == !args.purge_keys.empty()) {
      return usage_error("--purge takes keys or --prefix P, not both and not neither");
    }
    return purge(args, config);
  }

  // The plan: variants x formats.
  proxy::Warmer::Plan plan;
  std::vector<std::string> preset_names = args.presets;
  if (args.all_presets) {
    for (const auto& [name, preset] : config.presets) preset_names.push_back(name);
  }
  for (const std::string& name : preset_names) {
    if (!config.presets.contains(name)) {
      return config_error("no preset '" + name + "' in " + args.config_path);
    }
    plan.variants.push_back({"preset:" + name, "preset:" + name});
  }
  if (!args.options.empty() && config.security.only_presets) {
    return config_error(
        "security.only_presets is on: the server answers presets only, so "
        "--options variants would never be asked for");
  }
  for (const std::string& options : args.options) {
    if (options.empty()) return usage_error("--options needs Thumbor options, e.g. fit-in/300x200");
    plan.variants.push_back({options, options});
  }
  if (plan.variants.empty()) {
    return usage_error(args.all_presets ? "the configuration has no presets"
                                        : "say what to make: --preset, --all-presets or --options");
  }
  std::vector<std::string> formats = split_list(args.formats);
  if (formats.empty()) {
    formats.push_back("jpeg");
    if (config.output.auto_webp) formats.push_back("webp");
    if (config.output.auto_avif) formats.push_back("avif");
  }
  for (const std::string& format : formats) {
    if (format == "jpeg" || format == "default") {
      plan.formats.push_back({"jpeg", ""});
    } else if (format == "webp" || format == "avif") {
      const bool negotiated = format == "webp" ? config.output.auto_webp : config.output.auto_avif;
      if (!negotiated) {
        return config_error("output.auto_" + format + " is off: the server never answers " +
                            format + " from Accept; put filters:format(" + format +
                            ") in --options instead");
      }
      plan.formats.push_back({format, "image/" + format});
    } else {
      return usage_error("unknown format '" + format + "' (jpeg, webp or avif)");
    }
  }
  plan.jobs = args.jobs > 0 ? args.jobs
                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  plan.dry_run = args.dry_run;

  signing::UrlSigner signer(config.security.keys, config.security.allow_unsafe);
  if (!signer.has_keys() && !config.security.allow_unsafe) {
    return config_error("security.keys is empty: there is no key to sign the requests with");
  }

  // Which originals.
  Result<std::unique_ptr<proxy::Source>> source = proxy::make_source(config);
  if (!source.ok()) return config_error("configuration error: " + source.status().message());
  std::ifstream keys_file;
  if (!args.keys_file.empty() && args.keys_file != "-") {
    keys_file.open(args.keys_file);
    if (!keys_file) return config_error("cannot read " + args.keys_file);
  }
  if (args.keys_file.empty() && config.source.type == "http") {
    return usage_error("the http source cannot be listed: give the keys with --keys FILE");
  }
  proxy::Warmer::Feed feed = [&](const std::function<bool(const std::string&)>& each) -> Status {
    if (!args.keys_file.empty()) {
      std::istream& in = args.keys_file == "-" ? std::cin : keys_file;
      return feed_lines(
          in, [&](const std::string& key) { return !key.starts_with(args.prefix) || each(key); });
    }
    return (*source)->list_keys(args.prefix,
                                [&](const proxy::ListedKey& listed) { return each(listed.key); });
  };

  // Where: this process's service and storage, or a running server.
  SystemClock clock;
  std::unique_ptr<cache::ResultStore> store;
  std::unique_ptr<cache::ResultCache> results;
  std::unique_ptr<proxy::OriginService> service;
  std::unique_ptr<proxy::WarmTarget> target;
  if (!args.server.empty()) {
    if (!args.server.starts_with("http://") && !args.server.starts_with("https://")) {
      return usage_error("--server needs an http:// or https:// URL");
    }
    target = std::make_unique<proxy::ServerTarget>(
        args.server, std::chrono::milliseconds(config.server.request_timeout_ms + 5000));
  } else {
    store = proxy::make_result_store(config, clock);
    if (!store && !args.dry_run) {
      return config_error(
          "result_storage.type is none: nothing would keep what is made; "
          "configure result storage, or warm a running server with --server URL");
    }
    Result<proxy::OriginOptions> options = proxy::OriginOptions::from(config);
    if (!options.ok()) return config_error("configuration error: " + options.status().message());
    // Every stored variant is checked against its original: up to date ones are skipped.
    options->revalidate = std::chrono::seconds(0);
    results = std::make_unique<cache::ResultCache>(0, 1, clock);  // nothing is asked twice
    transform::use_one_thread_per_render();
    proxy::ServiceDependencies with(**source, *results, clock);
    with.store = store.get();
    with.store_unsafe = config.result_storage.store_unsafe || !signer.has_keys();
    service =
        std::make_unique<proxy::OriginService>(std::move(options).value(), signer, std::move(with));
    target = std::make_unique<proxy::ServiceTarget>(*service);
  }

  proxy::Warmer warmer(plan, signer, *target);
  // SIGINT/SIGTERM: stop taking originals, finish those in flight, print the summary. A second
  // one ends the process at once.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::thread([&warmer, signals] {
    int received = 0;
    if (sigwait(&signals, &received) != 0) return;
    std::cerr << "\nthimble-warm: stopping after the originals in flight (again to quit now)\n";
    warmer.stop();
    sigwait(&signals, &received);
    std::_Exit(130);
  }).detach();

  ProgressDisplay display(args.quiet || args.dry_run);
  const proxy::WarmSummary summary = warmer.run(
      feed, [&display](const proxy::WarmSummary& s) { display.update(s); },
      [](const std::string& line) { std::cout << line << "\n"; });
  display.finish();
  if (args.dry_run) {
    std::cerr << "thimble-warm: dry run: " << summary.originals << " originals x "
              << plan.variants.size() * plan.formats.size() << " variants; nothing was made\n";
    return summary.feed_status.ok() ? 0 : 1;
  }
  print_summary(summary, plan, !args.server.empty());
  if (summary.interrupted) return 130;
  return summary.failed > 0 || !summary.feed_status.ok() ? 1 : 0;
}
