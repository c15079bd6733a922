#pragma once
// Reading PyTorch checkpoints without Python: the legacy torch.save format of the official 2019
// BagNet files and the zip format of torch >= 1.6; plain or wrapped state dicts ("state_dict",
// "model_state_dict", "net", "model"), with or without a DataParallel "module." prefix. A closed
// list of pickle globals is accepted, so a hostile file can never run code.
//
//   bagnet::Checkpoint ckpt = bagnet::read_checkpoint("bagnet32-2ddd53ed.pth.tar");
//   bagnet::Arch arch = bagnet::detect_arch(ckpt.tensors);   // bagnet33, 1000 classes
#include <bagnet/arch.h>

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace bagnet {

// Named tensors in file order. Tensors are CPU, contiguous, of the dtype stored in the file.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

enum class CheckpointFormat { Legacy, Zip };
const char* format_name(CheckpointFormat format);  // "legacy torch.save", "zip torch.save"

struct Checkpoint {
  StateDict tensors;                 // the state dict, prefix removed
  CheckpointFormat format = CheckpointFormat::Zip;
  std::string wrapper_key;           // "state_dict" etc. when the state dict was wrapped, else ""
  std::string removed_prefix;        // "module." when it was stripped, else ""
  // Scalar entries beside a wrapped state dict (e.g. epoch, arch), as text.
  std::vector<std::pair<std::string, std::string>> metadata;
  // Further dicts of tensors beside a wrapped state dict (e.g. "training_state" of a bagnet-lens
  // training checkpoint), prefix not removed.
  std::vector<std::pair<std::string, StateDict>> other_tensors;
  std::string sha256;                // of the whole file, lowercase hex
  uint64_t file_size = 0;
};

// Throws Error(BadInput) naming the file for unreadable, truncated, corrupt or non-state-dict files.
Checkpoint read_checkpoint(const std::string& path);
// The same from bytes in memory; `what` names the source in error messages.
Checkpoint parse_checkpoint(const std::vector<uint8_t>& bytes, const std::string& what);

// Derives the architecture from tensor names and shapes: stages, blocks, kernel3, widths,
// expansion, stem width, input channels, classes. Strides cannot be seen in weights: the official
// [2, 2, 2, 1] (2 for every stage but the last) is assumed. Throws Error(BadInput) when the tensors
// are not a BagNet.
Arch detect_arch(const StateDict& tensors);

}  // namespace bagnet
