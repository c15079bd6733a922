// The stride-8 evidence map of one image for the classes asked, written as .npy: what
// `bagnet evidence IMAGE --weights CHECKPOINT --class C,... -o OUT.npy` does, through the library.
//
//   evidence_map bagnet32-2ddd53ed.pth.tar cat.jpg cat.npy 281 282
#include <bagnet/bagnet.h>  // core: LibTorch only
#include <bagnet/image.h>   // vision: decoding and preprocessing (OpenCV)

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: evidence_map CHECKPOINT IMAGE OUT.npy [CLASS...]\n";
    return 2;
  }
  try {
    bagnet::configure_runtime(2);  // threads; TF32 off
    bagnet::LoadedModel model = bagnet::load_model(argv[1]);
    bagnet::InputSpec preprocess;  // resize 256, centre crop 224, ImageNet mean/std (RGB checkpoints)
    const bagnet::ModelInput input = bagnet::load_image(argv[2], preprocess);  // [3, 224, 224] float32
    bagnet::EvidenceOptions options;
    for (int i = 4; i < argc; ++i) options.classes.push_back(std::atoll(argv[i]));  // empty: all classes
    const bagnet::EvidenceMap map = bagnet::compute_evidence(model.net, input.tensor.unsqueeze(0), options);
    bagnet::save_npy(argv[3], map.logits[0]);  // [K, H', W'] float32
    const bagnet::Box cell = map.geometry.cell_box(0, 0);
    const bagnet::BoxF original = input.transform.to_original(cell);
    std::cout << map.logits.size(1) << " classes, " << map.geometry.rows << "x" << map.geometry.cols
              << " patches of " << map.geometry.patch << " px; patch (0, 0) covers original pixels rows "
              << original.top << ".." << original.bottom << "\n";
    return 0;
  } catch (const bagnet::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
