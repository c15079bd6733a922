// The dense evidence heatmap of the BagNet paper for one image and class: every q x q patch centred
// on every `stride`-th model-input pixel of the zero-padded image, computed exactly with each layer
// evaluated once per position. What `bagnet evidence IMAGE --class C --stride N -o OUT.npy` does.
//
//   dense_map model.pt shirt.png shirt-dense.npy 6 1      # model file: its own input spec
#include <bagnet/bagnet.h>
#include <bagnet/image.h>

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: dense_map CHECKPOINT IMAGE OUT.npy CLASS STRIDE\n";
    return 2;
  }
  try {
    bagnet::configure_runtime(2);
    bagnet::LoadedModel model = bagnet::load_model(argv[1]);
    // The model file's resize/crop/normalisation, or the defaults for its channel count.
    const bagnet::ModelInput input = bagnet::load_image(argv[2], bagnet::input_spec_of(model));
    bagnet::DenseOptions options;
    options.classes = {std::atoll(argv[4])};
    options.stride = bagnet::resolve_map_stride(model.arch, argv[5]);  // refuses strides the model cannot give
    options.on_progress = [](const bagnet::Progress& p) { std::cerr << "\rtile " << p.done << "/" << p.total; };
    const bagnet::DenseMap map = bagnet::compute_dense_evidence(model.net, input.tensor.unsqueeze(0), options);
    std::cerr << "\n";
    bagnet::save_npy(argv[3], map.logits[0]);  // [1, ceil(H/stride), ceil(W/stride)] float32
    std::cout << "dense map " << map.logits.size(2) << "x" << map.logits.size(3) << ", q " << map.patch
              << ", stride " << map.stride << ", " << map.tiles << " tile(s)\n";
    return 0;
  } catch (const bagnet::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
