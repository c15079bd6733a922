// Checkpoint loading end to end, as `bagnet --weights FILE` does it: bytes -> state dict (legacy or
// zip torch.save) -> architecture detection or a model file's metadata -> model with the weights
// loaded strictly.
#include "fuzz_input.h"

#include <bagnet/checkpoint.h>
#include <bagnet/model.h>

#include <torch/torch.h>

#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bagnet::fuzz::expect_clean([&] {
    // In memory first (the same parser load_model uses, without the file).
    bagnet::parse_checkpoint(std::vector<uint8_t>(data, data + size), "fuzz input");
    const std::string path = bagnet::fuzz::write_scratch("checkpoint.pt", data, size);
    bagnet::LoadedModel model = bagnet::load_model(path);
    bagnet::input_spec_of(model);
  });
}
