// Image sizes from file headers, so that a small file claiming a huge image is refused before
// decoding allocates it (issue 13: a PNG of a few MB claimed 30000 x 30000 and took 14 GB). The
// bytes are untrusted: every read goes through View, which bounds-checks it and throws Truncated,
// and a truncated or unparseable header is "unknown", never an error.
#include "image_header.h"

#include <bagnet/error.h>
#include <bagnet/image.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

namespace bagnet {

namespace {

struct Truncated {};  // a read past the bytes at hand

// Bounds-checked big- and little-endian reads of n <= 4 bytes.
class View {
 public:
  View(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool starts(uint64_t offset, std::string_view magic) const {
    return offset <= size_ && magic.size() <= size_ - offset && std::memcmp(data_ + offset, magic.data(), magic.size()) == 0;
  }
  View from(uint64_t offset) const { return View(at(offset, 0), size_t(size_ - offset)); }
  uint32_t be(uint64_t offset, int n) const {
    const uint8_t* p = at(offset, n);
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
  }
  uint32_t le(uint64_t offset, int n) const {
    const uint8_t* p = at(offset, n);
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
  }
  uint32_t read(uint64_t offset, int n, bool big_endian) const { return big_endian ? be(offset, n) : le(offset, n); }

 private:
  const uint8_t* at(uint64_t offset, uint64_t n) const {
    if (offset > size_ || n > size_ - offset) throw Truncated{};
    return data_ + offset;
  }
  const uint8_t* data_;
  size_t size_;
};

// The signature, then the IHDR chunk first: length, "IHDR", width, height (big-endian).
std::optional<ImageSize> png_size(const View& v) {
  if (!v.starts(12, "IHDR")) return std::nullopt;
  return ImageSize{v.be(16, 4), v.be(20, 4)};
}

// Start-of-frame markers C0..CF; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
bool is_start_of_frame(uint32_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Walks the segments after SOI (EXIF and other APPn first) to the first frame header, which holds
// precision, height, width. Every step advances, so hostile lengths cannot loop.
std::optional<ImageSize> jpeg_size(const View& v) {
  uint64_t p = 2;
  for (;;) {
    if (v.be(p, 1) != 0xFF) return std::nullopt;  // not at a marker: corrupt
    while (v.be(p + 1, 1) == 0xFF) ++p;          // fill bytes before a marker
    const uint32_t marker = v.be(p + 1, 1);
    p += 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // TEM, RSTn, SOI: no length
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;           // EOI or scan before any frame
    const uint32_t length = v.be(p, 2);                                  // counts its own two bytes
    if (length < 2) return std::nullopt;
    if (is_start_of_frame(marker)) {
      const uint32_t height = v.be(p + 3, 2), width = v.be(p + 5, 2);
      if (height == 0) return std::nullopt;  // the height comes later, in a DNL segment
      return ImageSize{width, height};
    }
    p += length;
  }
}

// The file header (14 bytes), then the DIB header: BITMAPCOREHEADER (12 bytes, 16-bit sizes) or
// BITMAPINFOHEADER and later (40+, signed 32-bit sizes; a negative height is a top-down bitmap).
std::optional<ImageSize> bmp_size(const View& v) {
  const uint32_t header = v.le(14, 4);
  if (header == 12) return ImageSize{v.le(18, 2), v.le(20, 2)};
  if (header < 40) return std::nullopt;
  const int64_t width = static_cast<int32_t>(v.le(18, 4)), height = static_cast<int32_t>(v.le(22, 4));
  if (width < 0) return std::nullopt;
  return ImageSize{width, height < 0 ? -height : height};
}

// RIFF, size, WEBP, then the first chunk (type, size, payload from byte 20).
std::optional<ImageSize> webp_size(const View& v) {
  if (!v.starts(8, "WEBP")) return std::nullopt;
  if (v.starts(12, "VP8 ")) {  // lossy: 3-byte frame tag, start code 9d 01 2a, 14-bit sizes
    if (v.be(23, 3) != 0x9D012A) return std::nullopt;
    return ImageSize{v.le(26, 2) & 0x3FFF, v.le(28, 2) & 0x3FFF};
  }
  if (v.starts(12, "VP8L")) {  // lossless: signature 2f, then width - 1 and height - 1 in 14 bits each
    if (v.be(20, 1) != 0x2F) return std::nullopt;
    const uint32_t bits = v.le(21, 4);
    return ImageSize{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (v.starts(12, "VP8X"))  // extended: flags, 3 reserved bytes, canvas width - 1, height - 1 (24 bits)
    return ImageSize{int64_t(v.le(24, 3)) + 1, int64_t(v.le(27, 3)) + 1};
  return std::nullopt;
}

struct TiffHeader {
  bool big_endian = false;
  uint64_t directory = 0;  // offset of the first image file directory
};

// Classic TIFF ("II*\0" or "MM\0*"); BigTIFF (43) is left to the decoder.
std::optional<TiffHeader> tiff_header(const View& v) {
  const bool little = v.starts(0, std::string_view("II*\0", 4)), big = v.starts(0, std::string_view("MM\0*", 4));
  if (!little && !big) return std::nullopt;
  return TiffHeader{big, v.read(4, 4, big)};
}

// A directory: entry count, then 12-byte entries (tag, type, count, value). ImageWidth (256) and
// ImageLength (257) are SHORT (3) or LONG (4) values stored in the entry itself.
std::optional<ImageSize> tiff_directory_size(const View& dir, bool big_endian) {
  const uint32_t entries = dir.read(0, 2, big_endian);
  int64_t width = -1, height = -1;
  for (uint32_t i = 0; i < entries && (width < 0 || height < 0); ++i) {
    const uint64_t e = 2 + 12 * uint64_t(i);
    const uint32_t tag = dir.read(e, 2, big_endian), type = dir.read(e + 2, 2, big_endian);
    if (tag != 256 && tag != 257) continue;
    if (dir.read(e + 4, 4, big_endian) != 1 || (type != 3 && type != 4)) return std::nullopt;
    (tag == 256 ? width : height) = dir.read(e + 8, type == 3 ? 2 : 4, big_endian);
  }
  if (width < 0 || height < 0) return std::nullopt;
  return ImageSize{width, height};
}

template <typename Parse>
std::optional<ImageSize> unless_truncated(Parse parse) {
  try {
    return parse();
  } catch (const Truncated&) {
    return std::nullopt;
  }
}

// Up to n bytes of `in` from `offset` (fewer at the end of the file).
std::vector<uint8_t> read_at(std::ifstream& in, uint64_t offset, size_t n) {
  std::vector<uint8_t> bytes(n);
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
  bytes.resize(in ? n : static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return bytes;
}

// A JPEG frame header can follow a large EXIF block (thumbnails); a MiB covers it in practice, and a
// header not found there is unknown (read_image then looks at the whole file it has read anyway).
constexpr size_t kHeaderBytes = size_t(1) << 20;
// A TIFF directory of 5000 entries; ImageWidth and ImageLength are among the first (tags ascend).
constexpr size_t kTiffDirectoryBytes = 2 + 12 * 5000;

std::atomic<int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

std::string megapixels(double pixels) {
  std::ostringstream out;
  out << pixels / 1e6;
  return out.str();
}

}  // namespace

std::optional<ImageSize> image_header_size(const uint8_t* bytes, size_t size) {
  const View v(bytes, size);
  return unless_truncated([&]() -> std::optional<ImageSize> {
    if (v.starts(0, "\x89PNG\r\n\x1a\n")) return png_size(v);
    if (v.starts(0, "\xFF\xD8")) return jpeg_size(v);
    if (v.starts(0, "BM")) return bmp_size(v);
    if (v.starts(0, "RIFF")) return webp_size(v);
    if (const auto tiff = tiff_header(v)) return tiff_directory_size(v.from(tiff->directory), tiff->big_endian);
    return std::nullopt;
  });
}

namespace detail {

bool is_listed_image_format(const uint8_t* bytes, size_t size) {
  const View v(bytes, size);
  if (v.starts(0, "\x89PNG\r\n\x1a\n") || v.starts(0, "\xFF\xD8\xFF") || v.starts(0, "BM")) return true;
  if (v.starts(0, "RIFF") && v.starts(8, "WEBP")) return true;
  return v.starts(0, std::string_view("II*\0", 4)) || v.starts(0, std::string_view("MM\0*", 4)) ||
         v.starts(0, std::string_view("II+\0", 4)) || v.starts(0, std::string_view("MM\0+", 4));
}

}  // namespace detail

std::optional<ImageSize> read_image_header_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::BadInput, path, ": cannot open (", std::strerror(errno), ")");
  const std::vector<uint8_t> head = read_at(in, 0, kHeaderBytes);
  if (auto size = image_header_size(head.data(), head.size())) return size;
  // libtiff often writes the first directory after the pixels, beyond the head: read it there.
  return unless_truncated([&]() -> std::optional<ImageSize> {
    const auto tiff = tiff_header(View(head.data(), head.size()));
    if (!tiff) return std::nullopt;
    const std::vector<uint8_t> dir = read_at(in, tiff->directory, kTiffDirectoryBytes);
    return tiff_directory_size(View(dir.data(), dir.size()), tiff->big_endian);
  });
}

void set_max_image_pixels(int64_t pixels) {
  BAGNET_CHECK(pixels > 0, ErrorKind::InvalidArgument, "set_max_image_pixels: expected a positive pixel count, got ",
               pixels);
  g_max_image_pixels.store(pixels);
}

int64_t max_image_pixels() { return g_max_image_pixels.load(); }

void check_image_size(const std::string& path) { detail::check_header_size(path, read_image_header_size(path)); }

namespace detail {

void check_header_size(const std::string& path, const std::optional<ImageSize>& size) {
  const int64_t limit = max_image_pixels();
  // width * height > limit, without the product (two 32-bit sizes can overflow int64).
  if (!size || size->height <= 0 || size->width <= limit / size->height) return;
  fail(ErrorKind::BadInput, path, ": ", size->width, " x ", size->height, " pixels (",
       megapixels(double(size->width) * double(size->height)), " megapixels) is more than the limit of ",
       megapixels(double(limit)), " megapixels (raise it with set_max_image_pixels)");
}

}  // namespace detail

}  // namespace bagnet
