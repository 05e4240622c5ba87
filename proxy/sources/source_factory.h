// make_source(): the Source the configuration asks for (source.type), or why it cannot be built,
// naming the configuration key.
#pragma once

#include <memory>

#include "cache/result_store.h"
#include "conf/base/clock.h"
#include "conf/config.h"
#include "proxy/sources/source.h"

namespace thimble::proxy {

Result<std::unique_ptr<Source>> make_source(const conf::Config& config);

// The result storage the configuration asks for (result_storage.type); null for none.
std::unique_ptr<cache::ResultStore> make_result_store(const conf::Config& config,
                                                      const Clock& clock);

}  // namespace thimble::proxy
