#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/npy.h>

#include "bytes.h"
#include "file_bytes.h"
#include "zip_reader.h"
#include "zip_writer.h"

#include <torch/torch.h>

#include <cstring>

namespace bagnet {
namespace {

struct Descr {
  const char* text;
  torch::ScalarType dtype;
};
const Descr kDescrs[] = {{"<f4", torch::kFloat}, {"<f8", torch::kDouble}, {"<i8", torch::kLong},
                         {"<i4", torch::kInt},   {"|u1", torch::kByte}};

}  // namespace

namespace {

// The bytes of a .npy file holding `data` (contiguous, on the CPU).
std::string npy_bytes(const torch::Tensor& tensor, const std::string& what) {
  const char* descr = nullptr;
  for (const auto& d : kDescrs)
    if (d.dtype == tensor.scalar_type()) descr = d.text;
  BAGNET_CHECK(descr != nullptr, ErrorKind::InvalidArgument, what, ": unsupported dtype ", tensor.scalar_type());
  const torch::Tensor data = tensor.to(torch::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t d = 0; d < data.dim(); ++d) shape += std::to_string(data.size(d)) + (data.dim() == 1 ? "," : d + 1 < data.dim() ? ", " : "");
  shape += ")";
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header must be a multiple of 64, ending in '\n'.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  char length[2];
  detail::put_le(length, static_cast<uint16_t>(header.size()));
  out.append(length, 2);
  out += header;
  out.append(static_cast<const char*>(data.data_ptr()), data.nbytes());
  return out;
}

// Parses the .npy file in bytes [data, data + size); `path` names it in errors.
torch::Tensor parse_npy(const uint8_t* data, size_t size, const std::string& path) {
  BAGNET_CHECK(size >= 10 && std::memcmp(data, "\x93NUMPY", 6) == 0, ErrorKind::BadInput, path,
               ": not a .npy file");
  const int major = data[6];
  size_t header_length = 0, start = 0;
  if (major == 1) {
    header_length = detail::read_le<uint16_t>(data + 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    BAGNET_CHECK(size >= 12, ErrorKind::BadInput, path, ": truncated .npy header");
    header_length = detail::read_le<uint32_t>(data + 8);
    start = 12;
  } else {
    fail(ErrorKind::BadInput, path, ": unsupported .npy version ", major);
  }
  BAGNET_CHECK(header_length <= size - start, ErrorKind::BadInput, path, ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data) + start, header_length);
  BAGNET_CHECK(header.find("'fortran_order': False") != std::string::npos, ErrorKind::BadInput, path,
               ": only C-order .npy arrays are supported");
  torch::ScalarType dtype = torch::kFloat;
  bool known = false;
  for (const auto& d : kDescrs)
    if (header.find(std::string("'descr': '") + d.text + "'") != std::string::npos) {
      dtype = d.dtype;
      known = true;
    }
  BAGNET_CHECK(known, ErrorKind::BadInput, path, ": unsupported .npy dtype in header ", header);
  const auto open = header.find("'shape': (");
  const auto close = header.find(')', open);
  BAGNET_CHECK(open != std::string::npos && close != std::string::npos, ErrorKind::BadInput, path, ": no shape in .npy header");
  std::vector<int64_t> shape;
  std::string dims = header.substr(open + 10, close - open - 10);
  size_t at = 0;
  while (at < dims.size()) {
    while (at < dims.size() && (dims[at] == ' ' || dims[at] == ',')) ++at;
    if (at >= dims.size()) break;
    size_t used = 0;
    try {
      shape.push_back(std::stoll(dims.substr(at), &used));
    } catch (const std::exception&) {
      fail(ErrorKind::BadInput, path, ": bad shape in .npy header");
    }
    BAGNET_CHECK(shape.back() >= 0, ErrorKind::BadInput, path, ": negative dimension in .npy header");
    at += used;
  }
  __int128 numel = 1;
  for (int64_t d : shape) {
    numel *= d;
    BAGNET_CHECK(numel < (__int128(1) << 40), ErrorKind::BadInput, path, ": implausible .npy shape");
  }
  const size_t data_bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  BAGNET_CHECK(size - start - header_length == data_bytes, ErrorKind::BadInput, path, ": holds ",
               size - start - header_length, " data bytes, the header promises ", data_bytes);
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (data_bytes) std::memcpy(out.data_ptr(), data + start + header_length, data_bytes);
  return out;
}

}  // namespace

void save_npy(const std::string& path, const torch::Tensor& tensor) {
  const std::string bytes = npy_bytes(tensor, path);
  write_file_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

torch::Tensor load_npy(const std::string& path) {
  const auto bytes = detail::read_file_bytes(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

void save_npz(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& arrays) {
  std::vector<std::string> encoded;
  for (const auto& [name, tensor] : arrays) {
    BAGNET_CHECK(!name.empty() && name.find('/') == std::string::npos, ErrorKind::InvalidArgument, path,
                 ": array name '", name, "' must be non-empty and without '/'");
    encoded.push_back(npy_bytes(tensor, path + ":" + name));
  }
  write_file_atomically(path, [&](std::ostream& out) {
    detail::ZipWriter zip(out);
    for (size_t i = 0; i < arrays.size(); ++i) zip.add(arrays[i].first + ".npy", encoded[i]);
    zip.finish();
  });
}

std::vector<std::pair<std::string, torch::Tensor>> load_npz(const std::string& path) {
  return load_npz(detail::read_file_bytes(path), path);
}

std::vector<std::pair<std::string, torch::Tensor>> load_npz(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& entry : detail::read_zip(bytes.data(), bytes.size(), path)) {
    const std::string& name = entry.name;
    BAGNET_CHECK(name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0, ErrorKind::BadInput, path,
                 ": entry '", name, "' is not a .npy array");
    out.emplace_back(name.substr(0, name.size() - 4), parse_npy(entry.data, entry.size, path + ":" + name));
  }
  return out;
}

}  // namespace bagnet
