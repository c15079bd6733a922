// A heatmap picture in the BagNet paper's style: the evidence map of the image's top class over the
// photo's edges, colour bar in logits. What `bagnet heatmap IMAGE -o DIR` draws, through the library.
//
//   render_heatmap model.pt dress.png dress.heatmap.png
#include <bagnet/bagnet.h>
#include <bagnet/image.h>
#include <bagnet/render.h>

#include <opencv2/imgcodecs.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: render_heatmap CHECKPOINT IMAGE OUT.png\n";
    return 2;
  }
  try {
    bagnet::configure_runtime(2);
    bagnet::LoadedModel model = bagnet::load_model(argv[1]);
    const bagnet::ModelInput input = bagnet::load_image(argv[2], bagnet::input_spec_of(model));
    const bagnet::EvidenceMap map = bagnet::compute_evidence(model.net, input.tensor.unsqueeze(0));  // all classes
    const int64_t top = map.image_logits()[0].argmax().item<int64_t>();
    bagnet::RenderOptions options;  // paper style, RdBu_r, clip at the 99th percentile of |map|
    const bagnet::Figure figure =
        bagnet::render_figure(input.original, input.transform, {{map.logits[0][top], "class " + std::to_string(top)}},
                              bagnet::layout_of(map.geometry), options);
    if (!cv::imwrite(argv[3], figure.bgr())) throw bagnet::Error(bagnet::ErrorKind::BadInput, std::string(argv[3]) + ": cannot write");
    std::cout << "class " << top << ", colours clipped at +-" << figure.scale.clip << " (logit)\n";
    return 0;
  } catch (const bagnet::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
