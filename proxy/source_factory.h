// make_source(): the Source the configuration asks for (source.type), or why it cannot be built,
// naming the configuration key.
#pragma once

#include <memory>

#include "conf/config.h"
#include "proxy/source.h"

namespace thimble::proxy {

Result<std::unique_ptr<Source>> make_source(const conf::Config& config);

}  // namespace thimble::proxy
