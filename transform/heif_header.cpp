#include "transform/heif_header.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <string_view>
#include <vector>

namespace thimble::transform {
namespace {

using Bytes = std::span<const std::uint8_t>;

Status unsupported(std::string message) {
  return {Code::kUnsupportedMedia, std::move(message)};
}

// A bounds-checked big-endian reader over one box's payload; a read past the end fails once and
// every later read returns 0.
class Reader {
 public:
  explicit Reader(Bytes data) : data_(data) {}
  std::uint64_t read(std::size_t bytes) {
    if (!good_ || bytes > data_.size() - at_) {
      good_ = false;
      return 0;
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) value = value << 8 | data_[at_++];
    return value;
  }
  std::uint32_t u8() { return static_cast<std::uint32_t>(read(1)); }
  std::uint32_t u16() { return static_cast<std::uint32_t>(read(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(read(4)); }
  std::uint32_t id(bool wide) { return wide ? u32() : u16(); }
  Bytes rest() const { return good_ ? data_.subspan(at_) : Bytes(); }
  bool good() const { return good_; }

 private:
  Bytes data_;
  std::size_t at_ = 0;
  bool good_ = true;
};

struct Box {
  std::string_view type;
  Bytes payload;
};

// The boxes directly inside `data`, in order; nullopt when one overruns its parent.
std::optional<std::vector<Box>> boxes(Bytes data) {
  std::vector<Box> found;
  std::size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 8) return std::nullopt;
    Reader header(data.subspan(at, 8));
    std::uint64_t size = header.u32();
    std::size_t header_size = 8;
    if (size == 1) {  // 64-bit size follows the type
      if (data.size() - at < 16) return std::nullopt;
      Reader large(data.subspan(at + 8, 8));
      size = large.read(8);
      header_size = 16;
    } else if (size == 0) {  // to the end of the parent
      size = data.size() - at;
    }
    if (size < header_size || size > data.size() - at) return std::nullopt;
    found.push_back({std::string_view(reinterpret_cast<const char*>(data.data() + at + 4), 4),
                     data.subspan(at + header_size, static_cast<std::size_t>(size) - header_size)});
    at += static_cast<std::size_t>(size);
  }
  return found;
}

const Box* find(const std::vector<Box>& in, std::string_view type) {
  for (const Box& b : in) {
    if (b.type == type) return &b;
  }
  return nullptr;
}

constexpr std::array<std::string_view, 4> kAvifBrands = {"avif", "avis", "avio", "MA1B"};
constexpr std::array<std::string_view, 10> kHeifBrands = {"heic", "heix", "heim", "heis", "hevc",
                                                          "hevx", "mif1", "msf1", "hevs", "mif2"};

bool heif_brand(std::string_view brand) {
  return std::find(kAvifBrands.begin(), kAvifBrands.end(), brand) != kAvifBrands.end() ||
         std::find(kHeifBrands.begin(), kHeifBrands.end(), brand) != kHeifBrands.end();
}

// A 2x2 integer matrix acting on (x, y) with y pointing down: displayed = M * stored.
using Matrix = std::array<int, 4>;

constexpr std::array<Matrix, 9> kOrientations = {{
    {0, 0, 0, 0},    // unused
    {1, 0, 0, 1},    // 1: as stored
    {-1, 0, 0, 1},   // 2: mirrored left-right
    {-1, 0, 0, -1},  // 3: rotated 180
    {1, 0, 0, -1},   // 4: mirrored top-bottom
    {0, 1, 1, 0},    // 5: transposed
    {0, -1, 1, 0},   // 6: rotated 90 clockwise
    {0, -1, -1, 0},  // 7: transversed
    {0, 1, -1, 0},   // 8: rotated 90 anticlockwise
}};

Matrix times(const Matrix& a, const Matrix& b) {
  return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
          a[2] * b[1] + a[3] * b[3]};
}

int orientation_of(const Matrix& m) {
  for (int o = 1; o <= 8; ++o) {
    if (kOrientations[static_cast<std::size_t>(o)] == m) return o;
  }
  return 1;
}

struct Extent {
  std::uint32_t method = 0;  // 0: in the file, 1: in the idat box
  std::uint64_t offset = 0;  // from the start of the file (0) or of idat's payload (1)
  std::uint64_t length = 0;
};

struct Item {
  std::string_view type;
  std::vector<std::uint32_t> properties;  // 1-based indexes into ipco, in association order
  bool located = false;         // iloc says where its data is, and it is there (not empty)
  std::vector<Extent> extents;  // kept for the first few extents only (grid descriptors)
};

struct Meta {
  std::uint32_t primary = 0;
  std::map<std::uint32_t, Item> items;
  std::vector<Box> properties;
  // iref: (type, from) → to
  std::vector<std::tuple<std::string_view, std::uint32_t, std::vector<std::uint32_t>>> refs;

  const Box* property(std::uint32_t item, std::string_view type) const {
    auto found = items.find(item);
    if (found == items.end()) return nullptr;
    for (std::uint32_t index : found->second.properties) {
      if (index >= 1 && index <= properties.size() && properties[index - 1].type == type) {
        return &properties[index - 1];
      }
    }
    return nullptr;
  }
};

bool read_item_infos(Bytes iinf, Meta& meta) {
  Reader r(iinf);
  const std::uint32_t version = r.u8();
  r.read(3);
  r.read(version == 0 ? 2 : 4);  // entry count: the boxes themselves are what counts
  auto entries = boxes(r.rest());
  if (!r.good() || !entries) return false;
  for (const Box& infe : *entries) {
    if (infe.type != "infe") continue;
    Reader e(infe.payload);
    const std::uint32_t v = e.u8();
    e.read(3);
    if (v < 2) continue;  // no item type before version 2
    const std::uint32_t id = e.id(v >= 3);
    e.u16();  // protection index
    Bytes type = e.rest().subspan(0, std::min<std::size_t>(4, e.rest().size()));
    if (!e.good() || type.size() != 4) return false;
    meta.items[id].type = std::string_view(reinterpret_cast<const char*>(type.data()), 4);
  }
  return true;
}

// iloc: where each item's data is. An item is `located` when it has at least one byte of data:
// in the file (construction method 0) within its end, or in idat / another item (1, 2).
bool read_locations(Bytes iloc, std::size_t file_size, Meta& meta) {
  Reader r(iloc);
  const std::uint32_t version = r.u8();
  r.read(3);
  const std::uint32_t sizes = r.u16();
  const std::size_t offset_size = sizes >> 12, length_size = sizes >> 8 & 15,
                    base_size = sizes >> 4 & 15, index_size = version >= 1 ? (sizes & 15) : 0;
  auto valid = [](std::size_t n) { return n == 0 || n == 4 || n == 8; };
  if (version > 2 || !valid(offset_size) || !valid(length_size) || !valid(base_size) ||
      !valid(index_size)) {
    return false;
  }
  const std::uint32_t count = version < 2 ? r.u16() : r.u32();
  for (std::uint32_t i = 0; i < count && r.good(); ++i) {
    const std::uint32_t id = version < 2 ? r.u16() : r.u32();
    const std::uint32_t method = version >= 1 ? (r.u16() & 15) : 0;
    r.u16();  // data reference index
    const std::uint64_t base = r.read(base_size);
    const std::uint32_t extents = r.u16();
    std::uint64_t total = 0;
    bool inside = true;
    for (std::uint32_t e = 0; e < extents && r.good(); ++e) {
      r.read(index_size);
      const std::uint64_t offset = r.read(offset_size);
      std::uint64_t length = r.read(length_size);
      if (meta.items[id].extents.size() < 4) {
        meta.items[id].extents.push_back({method, base + offset, length});
      }
      if (method == 0) {
        const std::uint64_t start = base + offset;
        if (start < base || start >= file_size) {
          inside = false;
          continue;
        }
        // A length of 0 means "to the end of the file" in ISO 14496-12, but libheif 1.15 reads
        // no bytes for it and hands the codec an empty buffer (its dav1d plugin then leaks): such
        // an extent counts as empty. Writers give the length.
        if (length > file_size - start) inside = false;
      }
      total += length;
    }
    if (r.good() && inside && total > 0) meta.items[id].located = true;
  }
  return r.good();
}

bool read_references(Bytes iref, Meta& meta) {
  Reader r(iref);
  const bool wide = r.u8() == 1;
  r.read(3);
  auto refs = boxes(r.rest());
  if (!r.good() || !refs) return false;
  for (const Box& ref : *refs) {
    Reader e(ref.payload);
    const std::uint32_t from = e.id(wide);
    const std::uint32_t count = e.u16();
    std::vector<std::uint32_t> to;
    for (std::uint32_t i = 0; i < count && e.good(); ++i) to.push_back(e.id(wide));
    if (!e.good()) return false;
    meta.refs.emplace_back(ref.type, from, std::move(to));
  }
  return true;
}

bool read_properties(Bytes iprp, Meta& meta) {
  auto inside = boxes(iprp);
  if (!inside) return false;
  const Box* ipco = find(*inside, "ipco");
  if (!ipco) return false;
  auto properties = boxes(ipco->payload);
  if (!properties) return false;
  meta.properties = std::move(*properties);
  for (const Box& ipma : *inside) {
    if (ipma.type != "ipma") continue;
    Reader r(ipma.payload);
    const std::uint32_t version = r.u8();
    const std::uint32_t flags = static_cast<std::uint32_t>(r.read(3));
    const std::uint32_t entries = r.u32();
    for (std::uint32_t i = 0; i < entries && r.good(); ++i) {
      const std::uint32_t id = r.id(version >= 1);
      const std::uint32_t count = r.u8();
      for (std::uint32_t a = 0; a < count && r.good(); ++a) {
        const std::uint32_t index = (flags & 1) ? r.u16() & 0x7fff : r.u8() & 0x7f;
        if (index != 0) meta.items[id].properties.push_back(index);
      }
    }
    if (!r.good()) return false;
  }
  return true;
}

bool coded(std::string_view type) {
  return type == "hvc1" || type == "av01";
}

std::optional<std::pair<int, int>> spatial_extent(const Meta& meta, std::uint32_t item) {
  const Box* ispe = meta.property(item, "ispe");
  if (!ispe) return std::nullopt;
  Reader r(ispe->payload);
  r.read(4);  // version and flags
  const std::uint32_t w = r.u32(), h = r.u32();
  if (!r.good() || w == 0 || h == 0 || w > 0x7fffffff || h > 0x7fffffff) return std::nullopt;
  return std::pair{static_cast<int>(w), static_cast<int>(h)};
}

// The data of a small item (a grid descriptor), its extents joined; nullopt when an extent lies
// outside the file or idat, or the data is longer than `limit`.
std::optional<std::vector<std::uint8_t>> small_item_data(const Item& item, Bytes file, Bytes idat,
                                                         std::size_t limit) {
  std::vector<std::uint8_t> out;
  for (const Extent& e : item.extents) {
    const Bytes from = e.method == 0 ? file : e.method == 1 ? idat : Bytes();
    if (e.offset > from.size() || e.length > from.size() - e.offset ||
        e.length > limit - out.size()) {
      return std::nullopt;
    }
    const Bytes part =
        from.subspan(static_cast<std::size_t>(e.offset), static_cast<std::size_t>(e.length));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// A grid's tiles are all the same size, and just cover its output (ISO/IEC 23008-12 6.6.2.3):
// the canvas they make is larger than the image by less than one tile on each axis (phones write
// 512 px tiles over 4032x3024; heif-enc writes an odd-sized image as one tile a pixel larger).
// On success the canvas is in `header.coded_width`/`coded_height`.
Status check_grid(const Meta& meta, const Item& grid, const std::vector<std::uint32_t>& tiles,
                  Bytes file, Bytes idat, HeifHeader& header) {
  auto descriptor = small_item_data(grid, file, idat, 12);
  if (!descriptor) return unsupported("the HEIF grid description is missing");
  Reader r(*descriptor);
  r.u8();  // version
  const bool wide = (r.u8() & 1) != 0;
  const std::uint32_t rows = r.u8() + 1, columns = r.u8() + 1;
  const std::uint32_t width = wide ? r.u32() : r.u16(), height = wide ? r.u32() : r.u16();
  if (!r.good()) return unsupported("the HEIF grid description is truncated");
  if (width != static_cast<std::uint32_t>(header.width) ||
      height != static_cast<std::uint32_t>(header.height)) {
    return unsupported("the HEIF grid's size disagrees with the image's");
  }
  if (rows * columns != tiles.size()) {
    return unsupported("the HEIF grid does not have rows x columns tiles");
  }
  auto tile = spatial_extent(meta, tiles.front());
  for (std::uint32_t id : tiles) {
    if (!tile || spatial_extent(meta, id) != tile) {
      return unsupported("the HEIF grid's tiles are not all the same size");
    }
  }
  const std::uint64_t tile_width = static_cast<std::uint64_t>(tile->first),
                      tile_height = static_cast<std::uint64_t>(tile->second);
  if ((columns - 1) * tile_width >= width || columns * tile_width < width ||
      (rows - 1) * tile_height >= height || rows * tile_height < height ||
      columns * tile_width > 0x7fffffff || rows * tile_height > 0x7fffffff) {
    return unsupported("the HEIF grid's tiles do not fit its size");
  }
  header.coded_width = static_cast<int>(columns * tile_width);
  header.coded_height = static_cast<int>(rows * tile_height);
  return Status::Ok();
}

void read_colour(const Meta& meta, std::uint32_t item, HeifHeader& header) {
  auto found = meta.items.find(item);
  if (found == meta.items.end()) return;
  for (std::uint32_t index : found->second.properties) {
    if (index < 1 || index > meta.properties.size()) continue;
    const Box& colr = meta.properties[index - 1];
    if (colr.type != "colr" || colr.payload.size() < 4) continue;
    const std::string_view kind(reinterpret_cast<const char*>(colr.payload.data()), 4);
    if ((kind == "prof" || kind == "rICC") && header.icc.empty()) {
      header.icc = colr.payload.subspan(4);
    } else if (kind == "nclx" && !header.nclx) {
      Reader r(colr.payload.subspan(4));
      NclxColour nclx;
      nclx.primaries = static_cast<int>(r.u16());
      nclx.transfer = static_cast<int>(r.u16());
      nclx.matrix = static_cast<int>(r.u16());
      nclx.full_range = (r.u8() & 0x80) != 0;
      if (r.good()) header.nclx = nclx;
    }
  }
}

}  // namespace

bool looks_like_heif(Bytes data) {
  if (data.size() < 12 || std::memcmp(data.data() + 4, "ftyp", 4) != 0) return false;
  Reader r(data);
  const std::uint32_t size = r.u32();
  if (size < 16 || size > data.size()) return false;
  const std::string_view major(reinterpret_cast<const char*>(data.data() + 8), 4);
  if (heif_brand(major)) return true;
  for (std::size_t at = 16; at + 4 <= size; at += 4) {
    if (heif_brand(std::string_view(reinterpret_cast<const char*>(data.data() + at), 4))) {
      return true;
    }
  }
  return false;
}

Result<HeifHeader> read_heif_header(Bytes data) {
  if (!looks_like_heif(data)) return unsupported("not a HEIF file");
  auto top = boxes(data);
  if (!top) return unsupported("truncated or corrupt HEIF file");
  const std::string_view major(reinterpret_cast<const char*>(data.data() + 8), 4);
  if (major == "avis" || major == "msf1" || major == "hevs") {
    return unsupported("animated AVIF and HEIF sequences are not supported");
  }
  const Box* meta_box = find(*top, "meta");
  if (!meta_box || meta_box->payload.size() < 4) return unsupported("HEIF file without metadata");
  auto inside = boxes(meta_box->payload.subspan(4));
  if (!inside) return unsupported("corrupt HEIF metadata");

  Meta meta;
  const Box* pitm = find(*inside, "pitm");
  const Box* iinf = find(*inside, "iinf");
  const Box* iprp = find(*inside, "iprp");
  if (!pitm || !iinf || !iprp) return unsupported("HEIF file without a primary image");
  Reader p(pitm->payload);
  const std::uint32_t pitm_version = p.u8();
  p.read(3);
  meta.primary = p.id(pitm_version >= 1);
  if (!p.good() || !read_item_infos(iinf->payload, meta) || !read_properties(iprp->payload, meta)) {
    return unsupported("corrupt HEIF metadata");
  }
  if (const Box* iref = find(*inside, "iref"); iref && !read_references(iref->payload, meta)) {
    return unsupported("corrupt HEIF item references");
  }
  const Box* iloc = find(*inside, "iloc");
  if (!iloc || !read_locations(iloc->payload, data.size(), meta)) {
    return unsupported("corrupt HEIF item locations");
  }
  auto primary = meta.items.find(meta.primary);
  if (primary == meta.items.end() || primary->second.type.empty()) {
    return unsupported("the HEIF primary image is missing");
  }

  HeifHeader header;
  std::string_view coding = primary->second.type;
  std::vector<std::uint32_t> tiles;
  if (coding == "grid") {
    header.grid = true;
    coding = {};
    for (const auto& [type, from, to] : meta.refs) {
      if (type != "dimg" || from != meta.primary) continue;
      for (std::uint32_t tile : to) {
        tiles.push_back(tile);
        auto found = meta.items.find(tile);
        if (tile == meta.primary || found == meta.items.end() || !coded(found->second.type) ||
            !found->second.located || (!coding.empty() && coding != found->second.type)) {
          return unsupported("a HEIF grid tile is missing or not an image");
        }
        coding = found->second.type;
        ++header.tiles;
      }
    }
    if (header.tiles == 0) return unsupported("a HEIF grid without tiles");
  } else if (!coded(coding)) {
    return unsupported("HEIF primary image of type '" + std::string(coding) + "' not supported");
  } else if (!primary->second.located) {
    return unsupported("the HEIF primary image has no data");
  }
  header.format = coding == "av01" ? ImageFormat::kAvif : ImageFormat::kHeic;

  auto extent = spatial_extent(meta, meta.primary);
  if (!extent) return unsupported("the HEIF primary image has no size");
  header.width = extent->first;
  header.height = extent->second;
  header.coded_width = header.width;
  header.coded_height = header.height;
  if (header.grid) {
    const Box* idat = find(*inside, "idat");
    Status grid =
        check_grid(meta, primary->second, tiles, data, idat ? idat->payload : Bytes(), header);
    if (!grid.ok()) return grid;
  }

  Matrix shown = kOrientations[1];
  for (std::uint32_t index : primary->second.properties) {
    if (index < 1 || index > meta.properties.size()) continue;
    const Box& property = meta.properties[index - 1];
    if (property.type == "irot" && !property.payload.empty()) {
      // Anticlockwise by 90 degrees times the angle.
      constexpr std::array<int, 4> kRotations = {1, 8, 3, 6};
      shown = times(kOrientations[static_cast<std::size_t>(kRotations[property.payload[0] & 3])],
                    shown);
    } else if (property.type == "imir" && !property.payload.empty()) {
      // Mode 0 exchanges top and bottom, mode 1 left and right.
      shown = times(kOrientations[(property.payload[0] & 1) ? 2 : 4], shown);
    }
  }
  header.orientation = orientation_of(shown);

  if (const Box* pixi = meta.property(meta.primary, "pixi"); pixi && pixi->payload.size() >= 6) {
    header.bit_depth = pixi->payload[5];
  }
  read_colour(meta, meta.primary, header);
  const double aspect = static_cast<double>(header.width) / header.height;
  for (const auto& [type, from, to] : meta.refs) {
    if (std::find(to.begin(), to.end(), meta.primary) == to.end()) continue;
    auto item = meta.items.find(from);
    if (item == meta.items.end() || from == meta.primary) continue;
    if (type == "auxl") {
      const Box* auxc = meta.property(from, "auxC");
      if (auxc && auxc->payload.size() > 4) {
        const std::string_view urn(reinterpret_cast<const char*>(auxc->payload.data() + 4),
                                   auxc->payload.size() - 4);
        if (urn.find("auxid:1") != std::string_view::npos ||
            urn.find("auxiliary:alpha") != std::string_view::npos) {
          header.has_alpha = true;
        }
      }
    } else if (type == "thmb" && item->second.type == coding && item->second.located) {
      auto size = spatial_extent(meta, from);
      if (!size || size->first >= header.width || size->first <= header.thumbnail_width) continue;
      const double thumb_aspect = static_cast<double>(size->first) / size->second;
      if (std::abs(thumb_aspect - aspect) > 0.02 * aspect) continue;
      header.thumbnail_width = size->first;
      header.thumbnail_height = size->second;
    }
  }
  return header;
}

}  // namespace thimble::transform
