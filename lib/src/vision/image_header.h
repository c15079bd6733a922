#pragma once
// The image size limit's check, shared by read_image (which has the file's bytes at hand) and
// check_image_size (which reads the header from the file).
#include <bagnet/image.h>

#include <optional>
#include <string>

namespace bagnet::detail {

// Throws Error(BadInput) naming `path` when `size` has more than max_image_pixels(); an unknown
// size passes (decoding decides).
void check_header_size(const std::string& path, const std::optional<ImageSize>& size);

// Whether the bytes start like one of the formats bagnet-lens reads (PNG, JPEG, BMP, TIFF, WebP).
// OpenCV decodes more (PPM/PGM, HDR, PFM, Sun raster, ...), without the header size check and
// with temporary files of its own; those are refused before decoding.
bool is_listed_image_format(const uint8_t* bytes, size_t size);

}  // namespace bagnet::detail
