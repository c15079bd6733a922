#include <bagnet/error.h>
#include <bagnet/model_input.h>

namespace bagnet {

InputSpec default_input_spec(int64_t channels) {
  BAGNET_CHECK(channels == 1 || channels == 3, ErrorKind::InvalidArgument,
               "images can only feed models with 1 or 3 input channels, this one has ", channels);
  InputSpec spec;
  if (channels == 1) {
    spec.channels = 1;
    spec.mean = {0.5f};
    spec.std = {0.5f};
  }
  return spec;
}

BoxF ImageTransform::to_original(const Box& b) const {
  BAGNET_CHECK(resized_height > 0 && resized_width > 0, ErrorKind::InvalidArgument,
               "image transform: resized size ", resized_height, "x", resized_width, " is empty");
  const double sy = double(original_height) / double(resized_height);
  const double sx = double(original_width) / double(resized_width);
  return BoxF{(b.top + crop_top) * sy, (b.left + crop_left) * sx, (b.bottom() + crop_top) * sy,
              (b.right() + crop_left) * sx};
}

BoxF ImageTransform::input_region() const { return to_original(Box{0, 0, input_height, input_width}); }

ImageTransform ImageTransform::identity(int64_t height, int64_t width) {
  ImageTransform t;
  t.original_height = t.resized_height = t.input_height = height;
  t.original_width = t.resized_width = t.input_width = width;
  return t;
}

}  // namespace bagnet
