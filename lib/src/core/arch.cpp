#include <bagnet/arch.h>
#include <bagnet/error.h>

#include <algorithm>
#include <sstream>

namespace bagnet {
namespace {

// One convolution on the longest (main) path, the one that sets the receptive field.
struct PathConv {
  int64_t kernel;
  int64_t stride;
};

std::vector<PathConv> main_path(const Arch& arch) {
  std::vector<PathConv> convs{{1, 1}, {3, 1}};  // stem: conv1 1x1, conv2 3x3, no padding
  for (size_t s = 0; s < arch.blocks.size(); ++s)
    for (int64_t b = 0; b < arch.blocks[s]; ++b)
      convs.push_back({block_kernel(arch, s, b), block_stride(arch, s, b)});  // 1x1 convs add nothing
  return convs;
}

// Output length along one axis for an input of length n, following the block structure exactly
// (the residual is cropped at the bottom/right to the conv path's length).
int64_t output_length(const Arch& arch, int64_t n, const char* axis) {
  auto require = [&](int64_t have, int64_t need) {
    BAGNET_CHECK(have >= need, ErrorKind::BadInput, "input ", axis, " too small for ",
                 arch.name, ": need at least ", smallest_input(arch), " pixels (the receptive field)");
  };
  require(n, 3);
  n = n - 2;  // stem 3x3
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      const int64_t k = block_kernel(arch, s, b), st = block_stride(arch, s, b);
      require(n, k);
      const int64_t conv = (n - k) / st + 1;
      const int64_t residual = (n - 1) / st + 1;
      require(residual, conv);
      n = conv;
    }
  }
  return n;
}

std::vector<int64_t> parse_list(const std::string& key, const std::string& value) {
  std::vector<int64_t> out;
  std::stringstream in(value);
  std::string item;
  while (std::getline(in, item, '-')) {
    try {
      size_t used = 0;
      out.push_back(std::stoll(item, &used));
      BAGNET_CHECK(used == item.size(), ErrorKind::InvalidArgument, "");
    } catch (const std::exception&) {
      fail(ErrorKind::InvalidArgument, "architecture spec: '", key, "=", value,
           "' is not a '-'-separated list of integers");
    }
  }
  return out;
}

int64_t parse_int(const std::string& key, const std::string& value) {
  const auto list = parse_list(key, value);
  BAGNET_CHECK(list.size() == 1, ErrorKind::InvalidArgument, "architecture spec: '", key, "=", value,
               "' must be one integer");
  return list[0];
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "-" : "") + std::to_string(values[i]);
  return out;
}

}  // namespace

int64_t block_kernel(const Arch& arch, size_t stage, int64_t block) {
  return block < arch.kernel3[stage] ? 3 : 1;
}

int64_t block_stride(const Arch& arch, size_t stage, int64_t block) {
  return block == 0 ? arch.strides[stage] : 1;
}

bool Arch::operator==(const Arch& o) const {
  return in_channels == o.in_channels && stem_width == o.stem_width && blocks == o.blocks &&
         kernel3 == o.kernel3 && strides == o.strides && widths == o.widths &&
         expansion == o.expansion && num_classes == o.num_classes;
}

std::vector<std::string> arch_preset_names() { return {"bagnet9", "bagnet17", "bagnet33"}; }

Arch arch_preset(const std::string& name) {
  Arch arch;
  arch.name = name;
  if (name == "bagnet9") arch.kernel3 = {1, 1, 0, 0};
  else if (name == "bagnet17") arch.kernel3 = {1, 1, 1, 0};
  else if (name == "bagnet33") arch.kernel3 = {1, 1, 1, 1};
  else fail(ErrorKind::InvalidArgument, "unknown architecture '", name, "' (expected one of bagnet9, bagnet17, bagnet33, or a spec like bagnet9:classes=10)");
  return arch;
}

void name_arch(Arch& arch) {
  arch.name = "custom";
  for (const auto& preset : arch_preset_names())
    if (arch_preset(preset) == arch) arch.name = preset;
}

Arch parse_arch(const std::string& spec) {
  std::string overrides = spec;
  Arch arch = arch_preset("bagnet33");
  const auto colon = spec.find(':');
  const std::string head = spec.substr(0, colon);
  if (head.find('=') == std::string::npos) {
    arch = arch_preset(head);
    overrides = colon == std::string::npos ? "" : spec.substr(colon + 1);
  }
  std::stringstream in(overrides);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    BAGNET_CHECK(eq != std::string::npos, ErrorKind::InvalidArgument, "architecture spec: '", item,
                 "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "blocks") arch.blocks = parse_list(key, value);
    else if (key == "kernel3") arch.kernel3 = parse_list(key, value);
    else if (key == "strides") arch.strides = parse_list(key, value);
    else if (key == "widths") arch.widths = parse_list(key, value);
    else if (key == "stem") arch.stem_width = parse_int(key, value);
    else if (key == "expansion") arch.expansion = parse_int(key, value);
    else if (key == "in") arch.in_channels = parse_int(key, value);
    else if (key == "classes") arch.num_classes = parse_int(key, value);
    else fail(ErrorKind::InvalidArgument, "architecture spec: unknown key '", key,
              "' (expected blocks, kernel3, strides, widths, stem, expansion, in, classes)");
  }
  validate_arch(arch);
  name_arch(arch);
  return arch;
}

std::string arch_to_spec(const Arch& arch) {
  Arch named = arch;
  name_arch(named);
  if (named.name != "custom") return named.name;
  return "blocks=" + join(arch.blocks) + ",kernel3=" + join(arch.kernel3) + ",strides=" +
         join(arch.strides) + ",widths=" + join(arch.widths) + ",stem=" +
         std::to_string(arch.stem_width) + ",expansion=" + std::to_string(arch.expansion) +
         ",in=" + std::to_string(arch.in_channels) + ",classes=" + std::to_string(arch.num_classes);
}

void validate_arch(const Arch& arch) {
  const size_t stages = arch.blocks.size();
  BAGNET_CHECK(stages >= 1, ErrorKind::InvalidArgument, "architecture: needs at least one stage");
  auto same = [&](const std::vector<int64_t>& v, const char* name) {
    BAGNET_CHECK(v.size() == stages, ErrorKind::InvalidArgument, "architecture: '", name, "' has ",
                 v.size(), " entries, expected ", stages, " (one per stage, like 'blocks')");
  };
  same(arch.kernel3, "kernel3");
  same(arch.strides, "strides");
  same(arch.widths, "widths");
  for (size_t s = 0; s < stages; ++s) {
    BAGNET_CHECK(arch.blocks[s] >= 1 && arch.blocks[s] <= 64, ErrorKind::InvalidArgument,
                 "architecture: blocks[", s, "] = ", arch.blocks[s], ", expected 1..64");
    BAGNET_CHECK(arch.kernel3[s] >= 0 && arch.kernel3[s] <= arch.blocks[s], ErrorKind::InvalidArgument,
                 "architecture: kernel3[", s, "] = ", arch.kernel3[s], ", expected 0..", arch.blocks[s]);
    BAGNET_CHECK(arch.strides[s] >= 1 && arch.strides[s] <= 4, ErrorKind::InvalidArgument,
                 "architecture: strides[", s, "] = ", arch.strides[s], ", expected 1..4");
    BAGNET_CHECK(arch.widths[s] >= 1 && arch.widths[s] <= 8192, ErrorKind::InvalidArgument,
                 "architecture: widths[", s, "] = ", arch.widths[s], ", expected 1..8192");
  }
  BAGNET_CHECK(arch.in_channels >= 1 && arch.in_channels <= 16, ErrorKind::InvalidArgument,
               "architecture: in = ", arch.in_channels, ", expected 1..16");
  BAGNET_CHECK(arch.stem_width >= 1 && arch.stem_width <= 8192, ErrorKind::InvalidArgument,
               "architecture: stem = ", arch.stem_width, ", expected 1..8192");
  BAGNET_CHECK(arch.expansion >= 1 && arch.expansion <= 16, ErrorKind::InvalidArgument,
               "architecture: expansion = ", arch.expansion, ", expected 1..16");
  BAGNET_CHECK(arch.num_classes >= 1 && arch.num_classes <= 1000000, ErrorKind::InvalidArgument,
               "architecture: classes = ", arch.num_classes, ", expected 1..1000000");
}

int64_t receptive_field(const Arch& arch) {
  int64_t field = 1, jump = 1;
  for (const auto& conv : main_path(arch)) {
    field += (conv.kernel - 1) * jump;
    jump *= conv.stride;
  }
  return field;
}

int64_t total_stride(const Arch& arch) {
  int64_t jump = 1;
  for (const auto& conv : main_path(arch)) jump *= conv.stride;
  return jump;
}

int64_t feature_channels(const Arch& arch) { return arch.widths.back() * arch.expansion; }

int64_t parameter_count(const Arch& arch) {
  int64_t count = arch.in_channels * arch.stem_width + arch.stem_width * arch.stem_width * 9 +
                  2 * arch.stem_width;
  int64_t inplanes = arch.stem_width;
  for (size_t s = 0; s < arch.blocks.size(); ++s) {
    const int64_t planes = arch.widths[s], out = planes * arch.expansion;
    for (int64_t b = 0; b < arch.blocks[s]; ++b) {
      const int64_t k = block_kernel(arch, s, b);
      count += inplanes * planes + 2 * planes + planes * planes * k * k + 2 * planes + planes * out + 2 * out;
      if (block_stride(arch, s, b) != 1 || inplanes != out) count += inplanes * out + 2 * out;
      inplanes = out;
    }
  }
  return count + feature_channels(arch) * arch.num_classes + arch.num_classes;
}

int64_t smallest_input(const Arch& arch) { return receptive_field(arch); }

Box MapGeometry::cell_box(int64_t row, int64_t col) const {
  BAGNET_CHECK(row >= 0 && row < rows && col >= 0 && col < cols, ErrorKind::InvalidArgument,
               "map cell (", row, ", ", col, ") outside the ", rows, "x", cols, " map");
  return Box{row * stride, col * stride, patch, patch};
}

MapGeometry map_geometry(const Arch& arch, int64_t input_height, int64_t input_width) {
  MapGeometry g;
  g.input_height = input_height;
  g.input_width = input_width;
  g.rows = output_length(arch, input_height, "height");
  g.cols = output_length(arch, input_width, "width");
  g.stride = total_stride(arch);
  g.patch = receptive_field(arch);
  BAGNET_CHECK(input_height >= g.patch && input_width >= g.patch, ErrorKind::BadInput, "input ",
               input_height, "x", input_width, " smaller than the receptive field ", g.patch, "x",
               g.patch);
  return g;
}

}  // namespace bagnet
