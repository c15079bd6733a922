#pragma once
// Tiny image files whose headers claim any size (a few dozen bytes claiming 30000 x 30000), for the
// image size limit: each is a well-formed header followed by no pixel data.
#include <cstdint>
#include <string>

namespace bagnet::test {

inline void put_be(std::string& out, uint32_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

inline void put_le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// CRC-32 of PNG chunks (ISO 3309), bit by bit: a handful of bytes here.
inline uint32_t png_crc(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

inline void put_png_chunk(std::string& out, const std::string& type, const std::string& data) {
  put_be(out, static_cast<uint32_t>(data.size()), 4);
  out += type + data;
  put_be(out, png_crc(type + data), 4);
}

// Signature, IHDR (8-bit RGB) with a valid CRC, IEND.
inline std::string crafted_png(uint32_t width, uint32_t height) {
  std::string out("\x89PNG\r\n\x1a\n", 8), ihdr;
  put_be(ihdr, width, 4);
  put_be(ihdr, height, 4);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  put_png_chunk(out, "IHDR", ihdr);
  put_png_chunk(out, "IEND", "");
  return out;
}

// SOI, `app1_segments` APP1 segments of `app1_bytes` payload each (EXIF first), then a baseline SOF0
// with three components, EOI.
inline std::string crafted_jpeg(uint16_t width, uint16_t height, int app1_segments = 1, uint16_t app1_bytes = 64) {
  std::string out("\xFF\xD8", 2);
  for (int s = 0; s < app1_segments; ++s) {
    out += "\xFF\xE1";
    put_be(out, app1_bytes + 2u, 2);
    out += std::string("Exif\0\0", 6) + std::string(app1_bytes - 6, '\x2A');
  }
  out += "\xFF\xC0";
  put_be(out, 17, 2);
  out.push_back('\x08');
  put_be(out, height, 2);
  put_be(out, width, 2);
  out.push_back('\x03');
  for (int c = 1; c <= 3; ++c) out += std::string{char(c), '\x11', '\x00'};
  return out + "\xFF\xD9";
}

// File header and BITMAPINFOHEADER, 24-bit; a negative height is a top-down bitmap.
inline std::string crafted_bmp(int32_t width, int32_t height) {
  std::string out("BM");
  put_le(out, 54, 4);  // file size: the headers only
  put_le(out, 0, 4);
  put_le(out, 54, 4);  // pixel data offset
  put_le(out, 40, 4);
  put_le(out, static_cast<uint32_t>(width), 4);
  put_le(out, static_cast<uint32_t>(height), 4);
  put_le(out, 1, 2);   // planes
  put_le(out, 24, 2);  // bits per pixel
  for (int i = 0; i < 6; ++i) put_le(out, 0, 4);
  return out;
}

// RIFF/WEBP with a VP8X chunk: canvas width - 1 and height - 1 in 24 bits.
inline std::string crafted_webp(uint32_t width, uint32_t height) {
  std::string chunk("VP8X");
  put_le(chunk, 10, 4);
  put_le(chunk, 0, 4);  // flags and reserved
  put_le(chunk, width - 1, 3);
  put_le(chunk, height - 1, 3);
  std::string out("RIFF");
  put_le(out, static_cast<uint32_t>(4 + chunk.size()), 4);
  return out + "WEBP" + chunk;
}

// TIFF header and a first directory at `directory` (zero-padded up to it) with ImageWidth (LONG)
// and ImageLength (SHORT, left-justified in its value field).
inline std::string crafted_tiff(uint32_t width, uint16_t height, bool big_endian, uint32_t directory = 8) {
  auto put = [&](std::string& out, uint32_t v, int n) { big_endian ? put_be(out, v, n) : put_le(out, v, n); };
  std::string out(big_endian ? std::string("MM\0*", 4) : std::string("II*\0", 4));
  put(out, directory, 4);
  out.resize(directory, '\0');
  put(out, 2, 2);  // entries
  put(out, 256, 2), put(out, 4, 2), put(out, 1, 4), put(out, width, 4);
  put(out, 257, 2), put(out, 3, 2), put(out, 1, 4), put(out, height, 2), put(out, 0, 2);
  put(out, 0, 4);  // no next directory
  return out;
}

}  // namespace bagnet::test
