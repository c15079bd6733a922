#pragma once
// NumPy .npy files (format version 1.0/2.0, C order, little-endian).
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bagnet {

// Writes a float32, float64, int64, int32 or uint8 tensor of any shape (made contiguous, on CPU)
// atomically. np.load(path) gives the same array.
void save_npy(const std::string& path, const torch::Tensor& tensor);

// Reads '<f4', '<f8', '<i8', '<i4' or '|u1' arrays in C order. Throws Error(BadInput) otherwise.
torch::Tensor load_npy(const std::string& path);

// NumPy .npz archives (uncompressed, as numpy.savez writes them): np.load(path)[name] gives each
// array. Names must be non-empty without '/'; entries are stored as "<name>.npy".
void save_npz(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& arrays);
// Throws Error(BadInput) for anything but an uncompressed zip of supported .npy arrays.
std::vector<std::pair<std::string, torch::Tensor>> load_npz(const std::string& path);
// The same from the file's bytes; `path` names it in errors.
std::vector<std::pair<std::string, torch::Tensor>> load_npz(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace bagnet
