// Drives OriginService::submit(), the one entry the HTTP adapter uses, and waits for its answer.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <utility>

#include "proxy/service/origin_service.h"

namespace thimble::test {

// `request` answered by `service`, on whichever thread the service completes it.
inline proxy::OriginResponse serve(const proxy::OriginService& service,
                                   const proxy::OriginRequest& request) {
  auto answered = std::make_shared<std::promise<proxy::OriginResponse>>();
  std::future<proxy::OriginResponse> answer = answered->get_future();
  service.submit(request, [answered](proxy::OriginResponse response) {
    answered->set_value(std::move(response));
  });
  return answer.get();
}

// A request with the header fields given as (lower-case name, value) pairs; empty values are
// left out, as absent headers.
inline proxy::OriginRequest request(std::string method, std::string path,
                                    proxy::HeaderList headers = {}) {
  proxy::OriginRequest out;
  out.method = std::move(method);
  out.path = std::move(path);
  for (auto& [name, value] : headers) {
    if (!value.empty()) out.headers.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

}  // namespace thimble::test
