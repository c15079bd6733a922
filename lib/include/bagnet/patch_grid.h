#pragma once
// Grids of patch crops (OpenCV part): the "most predictive patches per class" figure of the BagNet
// paper. Each tile is a crop of an original image, scaled up, with a caption under it.
//
//   std::vector<bagnet::GridTile> tiles{{bagnet::crop_box(original, box), {"logit 4.12", "img_7.png"}}};
//   bagnet::save_image("class_3.png", bagnet::render_patch_grid(tiles, {}));   (image.h)
#include <bagnet/image.h>

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace bagnet {

struct GridTile {
  cv::Mat crop;                       // CV_32FC3 RGB or CV_32FC1 grey in [0, 1], any size
  std::vector<std::string> caption;   // lines under the crop (a line too long wraps, at most 3 lines; only
                                      // then is its middle left out)
};

struct GridOptions {
  int tile = 112;                     // side of each scaled crop in pixels
  int columns = 8;
  std::string title;                  // above the grid, wrapped to its width (empty: none)
};

// The pixels of `image` (as read_image returns it) covered by `box` in original pixels, the box
// rounded outwards and clipped to the image. Throws Error(InvalidArgument) for an empty overlap.
cv::Mat crop_box(const cv::Mat& image, const BoxF& box);

// One 8-bit BGR image (ready for imwrite) with the tiles in rows of `columns`. Crops are scaled
// to the tile side keeping their aspect ratio, with nearest-neighbour interpolation so that the
// pixels the model saw stay visible. Throws Error(InvalidArgument) for no tiles or bad options.
cv::Mat render_patch_grid(const std::vector<GridTile>& tiles, const GridOptions& options = {});

// Writes a PNG atomically. Throws Error(BadInput) when it cannot be written.

}  // namespace bagnet
