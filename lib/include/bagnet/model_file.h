#pragma once
// bagnet-lens model files: one self-describing file holding a BagNet's weights together with its
// architecture spec, class names, input preprocessing and training provenance. The container is
// the zip format of torch.save (docs/model-format.md), so read_checkpoint()/load_model() read it
// like any other checkpoint and Python's torch.load(path, weights_only=True) opens it too.
//
//   bagnet::ModelMeta meta;
//   meta.arch = net->arch();  meta.class_names = {...};  meta.input.resize = 28; ...
//   bagnet::save_model_file("model.bagnet.pt", bagnet::state_dict_of(net), meta);
//   bagnet::LoadedModel m = bagnet::load_model("model.bagnet.pt");   // m.meta is set
#include <bagnet/arch.h>
#include <bagnet/checkpoint.h>
#include <bagnet/model_input.h>

#include <optional>
#include <string>
#include <vector>

namespace bagnet {

struct ModelMeta {
  Arch arch;                              // full architecture, strides included
  std::vector<std::string> class_names;   // arch.num_classes names
  InputSpec input;
  std::string training = "{}";            // provenance, a JSON object (data, command, seed, epochs, accuracy, ...)
  std::string resume;                     // training state of a per-epoch checkpoint (JSON), else ""
};

// The key of the JSON metadata entry in the top-level dict of a model file.
inline constexpr const char* kModelMetaKey = "bagnet_lens_model";

// Writes `weights` (the model's state dict, e.g. state_dict_of(net)) and `meta` atomically.
// `extra` tensors (e.g. optimizer buffers of a training checkpoint) go into a second dict
// "training_state". Throws Error(InvalidArgument) for inconsistent metadata (class count, channel
// count, mean/std sizes), Error(BadInput) when the file cannot be written.
void save_model_file(const std::string& path, const StateDict& weights, const ModelMeta& meta,
                     const StateDict& extra = {});

// The metadata of a checkpoint read by read_checkpoint(): nullopt for files that are not
// bagnet-lens model files (e.g. the official checkpoints). Throws Error(BadInput) naming `what`
// for malformed metadata.
std::optional<ModelMeta> model_meta(const Checkpoint& checkpoint, const std::string& what);

// Serialises/parses the metadata JSON (exposed for tests and tools).
std::string meta_to_json(const ModelMeta& meta);
ModelMeta meta_from_json(const std::string& json, const std::string& what);

}  // namespace bagnet
