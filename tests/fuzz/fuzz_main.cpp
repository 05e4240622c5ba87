// libFuzzer entry point; THIMBLE_FUZZ_TARGET names the target (targets.h) this binary runs.
#include <cstddef>
#include <cstdint>

#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  thimble::fuzz::THIMBLE_FUZZ_TARGET({data, size});
  return 0;
}
