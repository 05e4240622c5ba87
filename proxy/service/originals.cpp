#include "proxy/service/originals.h"

#include <algorithm>
#include <span>

namespace thimble::proxy {

FetchedOriginal FetchedOriginal::from(Result<SourceObject> fetched) {
  FetchedOriginal original{std::move(fetched), std::nullopt};
  if (original.object.ok() && !original.object->not_modified) {
    const std::string& bytes = original.object->bytes;
    Result<transform::ImageInfo> header = transform::sniff(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    if (header.ok()) original.header = *header;
  }
  return original;
}

Originals::Originals(Source& source, const Clock& clock, Metrics* metrics,
                     const conf::OriginalCacheConfig& kept)
    : source_(source),
      clock_(clock),
      metrics_(metrics),
      // One shard: an entry may take the whole budget (a 20 MB photo with the default 64 MB;
      // with eight shards nothing over 8 MB was ever kept), and the lock is taken once per render.
      kept_(kept.memory_bytes, 1, clock),
      not_found_(kRememberedNotFound) {}

Result<SourceObject> Originals::fetch(const std::string& key, const FetchConditions& conditions,
                                      WorkTimes* times) const {
  ++fetches_;
  const auto started = clock_.steady_now();
  Result<SourceObject> fetched = source_.fetch(key, conditions);
  const std::chrono::duration<double> took = clock_.steady_now() - started;
  if (times) times->fetch_ms += took.count() * 1000;
  if (metrics_) {
    metrics_->observe_stage(Stage::kFetch, took.count());
    if (!fetched.ok()) metrics_->source_error(fetched.status().code());
  }
  return fetched;
}

std::shared_ptr<const FetchedOriginal> Originals::get(const std::string& key,
                                                      const Deadline& deadline,
                                                      const Lifetimes& lifetimes,
                                                      WorkTimes& times) const {
  const auto now = clock_.steady_now();
  if (std::optional<std::chrono::steady_clock::time_point> until = not_found_.get(key);
      until && *until > now) {
    ++not_found_hits_;
    return std::make_shared<const FetchedOriginal>(
        FetchedOriginal{Status(Code::kNotFound, "source not found"), std::nullopt});
  }
  // Kept from a recent fetch: the other sizes of a photo do not fetch it again.
  if (std::shared_ptr<const FetchedOriginal> kept = kept_.get(key)) {
    ++kept_hits_;
    return kept;
  }
  // Several sizes of one new photo requested at once share one download.
  FetchConditions conditions;
  conditions.deadline = deadline;
  return shared_fetch(key, conditions, lifetimes, times);
}

std::shared_ptr<const FetchedOriginal> Originals::shared_fetch(const std::string& key,
                                                               const FetchConditions& conditions,
                                                               const Lifetimes& lifetimes,
                                                               WorkTimes& times) const {
  const auto now = clock_.steady_now();
  // A check and a download of one key are different flights: a 304 answers no download.
  std::string flight_key = key;
  for (const std::string& token : conditions.if_token_in) flight_key += '\n' + token;
  auto flight = downloads_.run(flight_key, conditions.deadline, [&] {
    return FetchedOriginal::from(fetch(key, conditions, &times));
  });
  if (!flight.value) {
    return std::make_shared<const FetchedOriginal>(FetchedOriginal{
        Status(Code::kOverloaded, "the request waited too long for the original"), std::nullopt});
  }
  const Result<SourceObject>& fetched = flight.value->object;
  if (flight.leader && fetched.ok() && !fetched->not_modified) {
    kept_.put(key, flight.value, lifetimes.kept);
  }
  if (!fetched.ok() && fetched.status().code() == Code::kNotFound &&
      lifetimes.not_found.count() > 0) {
    not_found_.put(key, now + lifetimes.not_found);
  }
  return flight.value;
}

std::shared_ptr<const FetchedOriginal> Originals::check(const std::string& key,
                                                        const std::vector<std::string>& tokens,
                                                        const Deadline& deadline,
                                                        const Lifetimes& lifetimes,
                                                        WorkTimes& times) const {
  if (tokens.empty()) return get(key, deadline, lifetimes, times);
  // A recent 404 or a kept original is as recent an answer as the source would give.
  if (std::optional<std::chrono::steady_clock::time_point> until = not_found_.get(key);
      until && *until > clock_.steady_now()) {
    ++not_found_hits_;
    return std::make_shared<const FetchedOriginal>(
        FetchedOriginal{Status(Code::kNotFound, "source not found"), std::nullopt});
  }
  if (std::shared_ptr<const FetchedOriginal> kept = kept_.get(key)) {
    ++kept_hits_;
    const SourceValidators& now = kept->object->validators;
    if (std::find(tokens.begin(), tokens.end(), now.token) == tokens.end()) return kept;
    SourceObject same;
    same.not_modified = true;
    same.validators = now;
    return std::make_shared<const FetchedOriginal>(FetchedOriginal{std::move(same), std::nullopt});
  }
  FetchConditions conditions;
  conditions.deadline = deadline;
  conditions.if_token_in = tokens;
  return shared_fetch(key, conditions, lifetimes, times);
}

Result<Marks> Originals::watermarks(const std::vector<std::string>& keys,
                                    const Deadline& deadline) const {
  Marks marks;
  std::string versions;
  for (const std::string& key : keys) {
    std::optional<Mark> known = marks_.get(key);
    FetchConditions conditions;
    conditions.deadline = deadline;
    if (known) conditions.if_token_in = {known->token};
    Result<SourceObject> fetched = fetch(key, conditions, nullptr);
    if (!fetched.ok()) {
      // A mark that does not exist or may not be read is the URL's fault (400, as in Thumbor); a
      // failing or slow source keeps its own status, so the answer is not cached.
      const Code code = fetched.status().code();
      const bool url_fault =
          code == Code::kNotFound || code == Code::kSourceForbidden || code == Code::kBadRequest;
      return Status(url_fault ? Code::kBadRequest : code,
                    "watermark image '" + key + "': " + fetched.status().message());
    }
    Mark mark;
    if (fetched->not_modified && known) {
      mark = *known;
    } else {
      mark = {std::make_shared<const std::string>(std::move(fetched->bytes)),
              fetched->validators.token};
      marks_.put(key, mark);
    }
    marks.sources.emplace(key, *mark.bytes);
    marks.held.push_back(mark.bytes);
    versions += key + "=" + mark.token + ";";
  }
  marks.versions = std::move(versions);
  return marks;
}

Originals::Counters Originals::counters() const {
  return {fetches_.load(), not_found_hits_.load(), kept_hits_.load()};
}

}  // namespace thimble::proxy
