#include "proxy/service/origin_service.h"

namespace thimble::proxy {

OriginService::OriginService(OriginOptions options, signing::UrlSigner signer,
                             ServiceDependencies with)
    : clock_(*with.clock),
      workers_(with.workers),
      resolver_(with.metrics),
      originals_(*with.source, *with.clock, with.metrics, options.original_cache),
      thumbnails_(
          {.originals = &originals_,
           .results = with.results,
           .clock = with.clock,
           .store = with.store,
           .defer = std::move(with.defer),
           .store_unsafe = with.store_unsafe,
           .metrics = with.metrics,
           .remembered_originals = static_cast<std::size_t>(options.smart.remembered_originals)}) {
  settings_.store(ServiceSettings::make(std::move(options), std::move(signer)));
}

void OriginService::reload(OriginOptions options, signing::UrlSigner signer) {
  settings_.store(ServiceSettings::make(std::move(options), std::move(signer)));
}

OriginResponse OriginService::error(const Status& status, Route route) const {
  return error_answer(status, route, settings()->options.cache_control);
}

void OriginService::submit(const OriginRequest& request, Completion done) const {
  // One snapshot of the settings for the whole request, even across a reload.
  auto resolved = resolver_.resolve(request, settings(), draining());
  if (auto* early = std::get_if<OriginResponse>(&resolved)) {
    done(std::move(*early));
    return;
  }
  Job job = std::get<Job>(std::move(resolved));
  if (std::optional<OriginResponse> hit = thumbnails_.cached(job)) {
    hit->route = job.route;
    hit->source_key = job.spec.image;
    done(std::move(*hit));
    return;
  }
  if (draining()) {
    done(error_answer({Code::kOverloaded, "the server is shutting down"}, job.route,
                      job.settings->options.cache_control));
    return;
  }
  job.deadline = Deadline::after(
      clock_, std::chrono::milliseconds(job.settings->options.server.request_timeout_ms));
  // A storm of identical requests parks on the first: no worker, no place in the queue.
  auto label = [route = job.route, key = job.spec.image](OriginResponse response) {
    response.route = route;
    response.source_key = key;
    return response;
  };
  Thumbnails::Parking parking = thumbnails_.park(
      job, [done, label](OriginResponse response) { done(label(std::move(response))); });
  if (parking.parked) return;
  if (!workers_) {
    done(label(run(job, parking.lead)));
    return;
  }
  const Route route = job.route;
  const auto cache_control = job.settings->options.cache_control;
  // When the queue is full the job is dropped, and the requests parked on it get 503 too.
  const bool queued =
      workers_->try_submit([this, done, label, job = std::move(job),
                            lead = std::move(parking.lead)] { done(label(run(job, lead))); });
  if (!queued) {
    done(error_answer({Code::kOverloaded, "too many requests in progress"}, route, cache_control));
  }
}

OriginResponse OriginService::run(const Job& job, const Thumbnails::Lead& lead) const {
  WorkTimes times;
  OriginResponse response = thumbnails_.make(job, lead, times);
  response.times = times;
  return response;
}

OriginService::Counters OriginService::counters() const {
  const Originals::Counters o = originals_.counters();
  const Thumbnails::Counters t = thumbnails_.counters();
  return {o.fetches, t.renders, t.coalesced, o.not_found_hits, t.store_hits, o.kept_hits, t.checks};
}

}  // namespace thimble::proxy
