#include <bagnet/checkpoint.h>
#include <bagnet/error.h>
#include <bagnet/sha256.h>

#include "bytes.h"
#include "file_bytes.h"
#include "pickle.h"
#include "shape_string.h"
#include "zip_reader.h"

#include <torch/torch.h>

#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

namespace bagnet {
namespace {

using detail::PyKind;
using detail::PyValue;
using detail::StorageRef;

// Where the bytes of each root storage are, once the file has been walked.
struct StorageBytes {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

using detail::shape_string;

// Parses ('storage', <storage type>, key, location, numel[, view_metadata]).
StorageRef parse_persistent_id(const PyValue& pid, bool legacy, const std::string& what) {
  auto bad = [&](const std::string& why) -> void {
    fail(ErrorKind::BadInput, what, ": bad storage reference (", why, ")");
  };
  if (pid.kind != PyKind::Tuple || pid.items.size() < 5) bad("expected a 5-tuple");
  const auto& f = pid.items;
  if (f[0]->kind != PyKind::Str || f[0]->text != "storage") bad("first field is not 'storage'");
  if (f[2]->kind != PyKind::Str) bad("key is not a string");
  if (f[4]->kind != PyKind::Int || f[4]->integer < 0) bad("element count is not a non-negative int");
  StorageRef ref;
  ref.dtype = detail::storage_dtype(*f[1], what);
  ref.key = f[2]->text;
  ref.numel = ref.root_numel = f[4]->integer;
  if (legacy && pid.items.size() >= 6 && f[5]->kind != PyKind::None) {
    // A legacy storage view: (view_key, offset, view_size) into the root storage `key`.
    const PyValue& view = *f[5];
    if (view.kind != PyKind::Tuple || view.items.size() != 3 || view.items[1]->kind != PyKind::Int ||
        view.items[2]->kind != PyKind::Int)
      bad("malformed storage view");
    ref.offset = view.items[1]->integer;
    ref.numel = view.items[2]->integer;
    if (ref.offset < 0 || ref.numel < 0 || ref.offset + ref.numel > ref.root_numel) bad("storage view out of range");
  }
  return ref;
}

torch::Tensor materialize(const std::string& name, const detail::TensorRef& t,
                          const std::unordered_map<std::string, StorageBytes>& storages,
                          const std::string& what) {
  const auto found = storages.find(t.storage.key);
  BAGNET_CHECK(found != storages.end(), ErrorKind::BadInput, what, ": tensor '", name,
               "' refers to storage '", t.storage.key, "' whose data is missing");
  const int64_t element = static_cast<int64_t>(c10::elementSize(t.storage.dtype));
  BAGNET_CHECK(found->second.size == static_cast<uint64_t>(t.storage.root_numel * element), ErrorKind::BadInput,
               what, ": storage '", t.storage.key, "' holds ", found->second.size, " bytes, expected ",
               t.storage.root_numel * element);
  // Bounds of the strided view, checked in 128-bit arithmetic before any byte is touched.
  __int128 numel = 1, last = 0;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    BAGNET_CHECK(t.sizes[d] >= 0 && t.strides[d] >= 0, ErrorKind::BadInput, what, ": tensor '", name,
                 "' has a negative size or stride");
    numel *= t.sizes[d];
    BAGNET_CHECK(numel < (__int128(1) << 40), ErrorKind::BadInput, what, ": tensor '", name, "' is implausibly large");
    if (t.sizes[d] > 0) last += __int128(t.sizes[d] - 1) * t.strides[d];
  }
  BAGNET_CHECK(t.offset >= 0 && (numel == 0 || __int128(t.offset) + last < t.storage.numel), ErrorKind::BadInput,
               what, ": tensor '", name, "' ", shape_string(t.sizes), " reaches beyond its storage of ",
               t.storage.numel, " elements");
  const int64_t start = t.storage.offset + t.offset;
  // Copy into aligned memory first: legacy files place storages at arbitrary byte offsets.
  const int64_t span = numel == 0 ? 0 : static_cast<int64_t>(last) + 1;
  torch::Tensor flat = torch::empty({span}, torch::TensorOptions().dtype(t.storage.dtype));
  if (span > 0) std::memcpy(flat.data_ptr(), found->second.data + start * element, static_cast<size_t>(span * element));
  return flat.as_strided(t.sizes, t.strides, 0).contiguous().clone();
}

bool is_state_dict(const PyValue& v) {
  if (v.kind != PyKind::Dict || v.entries.empty()) return false;
  for (const auto& [key, value] : v.entries)
    if (key->kind != PyKind::Str || value->kind != PyKind::Tensor) return false;
  return true;
}

std::string scalar_text(const PyValue& v) {
  switch (v.kind) {
    case PyKind::Int: return std::to_string(v.integer);
    case PyKind::Bool: return v.boolean ? "true" : "false";
    case PyKind::Float: return std::to_string(v.real);
    case PyKind::Str: return v.text;
    default: return "";
  }
}

// Picks the state dict out of the top-level object and turns it into tensors.
void extract(const PyValue& root, const std::unordered_map<std::string, StorageBytes>& storages,
             const std::string& what, Checkpoint& out) {
  const PyValue* dict = &root;
  if (!is_state_dict(root)) {
    BAGNET_CHECK(root.kind == PyKind::Dict, ErrorKind::BadInput, what, ": top-level object is a ",
                 kind_name(root.kind), ", expected a state dict");
    const PyValue* found = nullptr;
    for (const char* key : {"state_dict", "model_state_dict", "net", "model"}) {
      for (const auto& [k, v] : root.entries)
        if (!found && k->kind == PyKind::Str && k->text == key && is_state_dict(*v)) {
          found = v;
          out.wrapper_key = key;
        }
    }
    BAGNET_CHECK(found != nullptr, ErrorKind::BadInput, what,
                 ": no state dict found (expected a dict of tensors, possibly under 'state_dict', "
                 "'model_state_dict', 'net' or 'model')");
    for (const auto& [k, v] : root.entries) {
      if (k->kind != PyKind::Str || v == found) continue;
      if (!scalar_text(*v).empty()) {
        out.metadata.emplace_back(k->text, scalar_text(*v));
      } else if (is_state_dict(*v)) {
        StateDict other;
        for (const auto& [name, value] : v->entries)
          other.emplace_back(name->text, materialize(name->text, value->tensor, storages, what));
        out.other_tensors.emplace_back(k->text, std::move(other));
      }
    }
    dict = found;
  }
  std::map<std::string, size_t> position;  // later duplicates replace earlier ones, as in Python
  for (const auto& [key, value] : dict->entries) {
    torch::Tensor tensor = materialize(key->text, value->tensor, storages, what);
    auto [it, inserted] = position.emplace(key->text, out.tensors.size());
    if (inserted) out.tensors.emplace_back(key->text, tensor);
    else out.tensors[it->second].second = tensor;
  }
  // DataParallel prefixes every key with "module." (possibly more than once).
  const std::string prefix = "module.";
  while (!out.tensors.empty()) {
    bool all = true;
    for (const auto& entry : out.tensors) all = all && entry.first.rfind(prefix, 0) == 0;
    if (!all) break;
    for (auto& entry : out.tensors) entry.first.erase(0, prefix.size());
    out.removed_prefix += prefix;
  }
}

void parse_legacy(const std::vector<uint8_t>& bytes, const std::string& what, Checkpoint& out) {
  detail::Unpickler unpickler;
  size_t pos = 0;
  const uint8_t* data = bytes.data();
  const size_t size = bytes.size();
  // Magic number 0x1950a86a20f9469cfc6c, stored as a 10-byte little-endian LONG1.
  const PyValue* magic = unpickler.load(data, size, pos, nullptr, what);
  const std::string expected_magic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  BAGNET_CHECK(magic->kind == PyKind::BigInt && magic->text == expected_magic, ErrorKind::BadInput, what,
               ": not a PyTorch checkpoint (legacy magic number missing)");
  const PyValue* protocol = unpickler.load(data, size, pos, nullptr, what);
  BAGNET_CHECK(protocol->kind == PyKind::Int && protocol->integer == 1001, ErrorKind::BadInput, what,
               ": unsupported legacy protocol version (expected 1001)");
  const PyValue* sys_info = unpickler.load(data, size, pos, nullptr, what);
  if (sys_info->kind == PyKind::Dict)
    for (const auto& [k, v] : sys_info->entries)
      if (k->kind == PyKind::Str && k->text == "little_endian")
        BAGNET_CHECK(v->kind == PyKind::Bool && v->boolean, ErrorKind::BadInput, what,
                     ": big-endian checkpoints are not supported");

  std::map<std::string, StorageRef> roots;
  auto persistent = [&](const PyValue& pid) {
    StorageRef ref = parse_persistent_id(pid, true, what);
    auto [it, inserted] = roots.emplace(ref.key, ref);
    BAGNET_CHECK(it->second.dtype == ref.dtype && it->second.root_numel == ref.root_numel, ErrorKind::BadInput,
                 what, ": storage '", ref.key, "' declared twice with different types or sizes");
    return ref;
  };
  const PyValue* root = unpickler.load(data, size, pos, persistent, what);
  const PyValue* keys = unpickler.load(data, size, pos, nullptr, what);
  BAGNET_CHECK(keys->kind == PyKind::List, ErrorKind::BadInput, what, ": storage key list missing");

  std::unordered_map<std::string, StorageBytes> storages;
  for (const PyValue* key : keys->items) {
    BAGNET_CHECK(key->kind == PyKind::Str, ErrorKind::BadInput, what, ": storage key is not a string");
    const auto ref = roots.find(key->text);
    BAGNET_CHECK(ref != roots.end(), ErrorKind::BadInput, what, ": data for unknown storage '", key->text, "'");
    BAGNET_CHECK(size - pos >= 8, ErrorKind::BadInput, what, ": truncated (storage '", key->text,
                 "' is missing; the file ends at byte ", size, ")");
    const uint64_t numel = detail::read_le<uint64_t>(data + pos);
    pos += 8;
    BAGNET_CHECK(numel == static_cast<uint64_t>(ref->second.root_numel), ErrorKind::BadInput, what,
                 ": storage '", key->text, "' has ", numel, " elements, expected ", ref->second.root_numel);
    const uint64_t length = numel * c10::elementSize(ref->second.dtype);
    BAGNET_CHECK(length <= size - pos, ErrorKind::BadInput, what, ": truncated (storage '", key->text,
                 "' needs ", length, " bytes at byte ", pos, ", the file ends at byte ", size, ")");
    storages[key->text] = {data + pos, length};
    pos += length;
  }
  extract(*root, storages, what, out);
}

void parse_zip(const std::vector<uint8_t>& bytes, const std::string& what, Checkpoint& out) {
  // TorchScript archives (torch.jit.save) hold code: a program, never read as weights.
  BAGNET_CHECK(!detail::is_torchscript_archive(detail::zip_entry_names(bytes.data(), bytes.size(), what)),
               ErrorKind::BadInput, what,
               ": a TorchScript file (a program, not a checkpoint of weights); it is read only as the other "
               "model of `bagnet compare --model`");
  const auto entries = detail::read_zip(bytes.data(), bytes.size(), what);
  // Every record lives under one top-level folder whose name varies ("archive", the file stem, ...).
  const detail::ZipEntry* pickle = nullptr;
  std::string folder;
  for (const auto& e : entries) {
    const auto slash = e.name.find('/');

    if (slash != std::string::npos && e.name.substr(slash + 1) == "data.pkl") {
      pickle = &e;
      folder = e.name.substr(0, slash + 1);
    }
  }
  BAGNET_CHECK(pickle != nullptr, ErrorKind::BadInput, what,
               ": zip archive without data.pkl; not a torch.save checkpoint (TorchScript archives are not supported)");
  std::unordered_map<std::string, const detail::ZipEntry*> records;
  for (const auto& e : entries) records[e.name] = &e;
  const auto order = records.find(folder + "byteorder");
  if (order != records.end())
    BAGNET_CHECK(std::string(reinterpret_cast<const char*>(order->second->data), order->second->size) == "little",
                 ErrorKind::BadInput, what, ": big-endian checkpoints are not supported");

  std::unordered_map<std::string, StorageBytes> storages;
  auto persistent = [&](const PyValue& pid) {
    StorageRef ref = parse_persistent_id(pid, false, what);
    const auto record = records.find(folder + "data/" + ref.key);
    BAGNET_CHECK(record != records.end(), ErrorKind::BadInput, what, ": storage record 'data/", ref.key,
                 "' missing from the archive");
    storages[ref.key] = {record->second->data, record->second->size};
    return ref;
  };
  detail::Unpickler unpickler;
  size_t pos = 0;
  const PyValue* root = unpickler.load(pickle->data, pickle->size, pos, persistent, what + " (data.pkl)");
  extract(*root, storages, what, out);
}

}  // namespace

const char* format_name(CheckpointFormat format) {
  return format == CheckpointFormat::Legacy ? "legacy torch.save" : "zip torch.save";
}

Checkpoint parse_checkpoint(const std::vector<uint8_t>& bytes, const std::string& what) {
  Checkpoint out;
  out.file_size = bytes.size();
  out.sha256 = sha256_hex(bytes.data(), bytes.size());
  BAGNET_CHECK(!bytes.empty(), ErrorKind::BadInput, what, ": empty file, expected a PyTorch checkpoint");
  if (detail::looks_like_zip(bytes.data(), bytes.size())) {
    out.format = CheckpointFormat::Zip;
    parse_zip(bytes, what, out);
  } else if (bytes[0] == 0x80) {
    out.format = CheckpointFormat::Legacy;
    parse_legacy(bytes, what, out);
  } else {
    fail(ErrorKind::BadInput, what, ": not a PyTorch checkpoint (neither the zip nor the legacy torch.save format)");
  }
  return out;
}

Checkpoint read_checkpoint(const std::string& path) {
  return parse_checkpoint(detail::read_file_bytes(path), path);
}

Arch detect_arch(const StateDict& tensors) {
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : tensors) by_name[name] = &tensor;
  auto get = [&](const std::string& name, int64_t dims) -> const torch::Tensor& {
    const auto it = by_name.find(name);
    BAGNET_CHECK(it != by_name.end(), ErrorKind::BadInput, "cannot detect the architecture: no tensor '",
                 name, "' (is this a BagNet state dict?)");
    BAGNET_CHECK(it->second->dim() == dims, ErrorKind::BadInput, "cannot detect the architecture: '", name,
                 "' has ", it->second->dim(), " dimensions, expected ", dims);
    return *it->second;
  };
  Arch arch;
  arch.blocks.clear();
  arch.kernel3.clear();
  arch.widths.clear();
  arch.strides.clear();
  const auto& stem = get("conv1.weight", 4);
  arch.stem_width = stem.size(0);
  arch.in_channels = stem.size(1);
  for (int stage = 1; by_name.count("layer" + std::to_string(stage) + ".0.conv1.weight"); ++stage) {
    const std::string layer = "layer" + std::to_string(stage) + ".";
    int64_t blocks = 0;
    while (by_name.count(layer + std::to_string(blocks) + ".conv1.weight")) ++blocks;
    int64_t kernel3 = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k = get(layer + std::to_string(b) + ".conv2.weight", 4).size(-1);
      BAGNET_CHECK(k == 1 || k == 3, ErrorKind::BadInput, "cannot detect the architecture: ", layer, b,
                   ".conv2 is ", k, "x", k, ", expected 1x1 or 3x3");
      BAGNET_CHECK(k == 1 || kernel3 == b, ErrorKind::BadInput, "cannot detect the architecture: ", layer, b,
                   ".conv2 is 3x3 after a 1x1 block; only leading 3x3 blocks are supported");
      if (k == 3) ++kernel3;
    }
    arch.blocks.push_back(blocks);
    arch.kernel3.push_back(kernel3);
    arch.widths.push_back(get(layer + "0.conv1.weight", 4).size(0));
    if (stage == 1) arch.expansion = get(layer + "0.conv3.weight", 4).size(0) / arch.widths[0];
  }
  BAGNET_CHECK(!arch.blocks.empty(), ErrorKind::BadInput,
               "cannot detect the architecture: no 'layer1.0.conv1.weight' (is this a BagNet state dict?)");
  arch.strides.assign(arch.blocks.size(), 2);
  arch.strides.back() = 1;
  arch.num_classes = get("fc.weight", 2).size(0);
  validate_arch(arch);
  name_arch(arch);
  return arch;
}

}  // namespace bagnet
