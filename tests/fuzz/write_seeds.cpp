// thimble-fuzz-seeds DIR SAMPLES: writes each fuzz target's seeds to DIR/<target>/.
#include <cstdio>
#include <fstream>

#include "seeds.h"
#include "targets.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: thimble-fuzz-seeds DIR SAMPLES_DIR\n");
    return 2;
  }
  for (const thimble::fuzz::Target& target : thimble::fuzz::kTargets) {
    const std::filesystem::path dir = std::filesystem::path(argv[1]) / target.name;
    std::filesystem::create_directories(dir);
    int n = 0;
    for (const std::string& seed : thimble::fuzz::seeds_for(target.name, argv[2])) {
      std::ofstream(dir / ("seed-" + std::to_string(n++)), std::ios::binary) << seed;
    }
    std::printf("%s: %d seeds\n", std::string(target.name).c_str(), n);
  }
  return 0;
}
