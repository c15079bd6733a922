#pragma once
// Architecture description of a BagNet (a ResNet-50 variant with capped receptive field) and the
// geometry derived from it. Nothing here depends on weights; q, the total stride and the map size
// are computed by walking the described layers, so custom variants get correct geometry too.
//
//   bagnet::Arch arch = bagnet::arch_preset("bagnet33");
//   bagnet::MapGeometry g = bagnet::map_geometry(arch, 224, 224);  // 24x24 cells, q=33, stride 8
//   bagnet::Box box = g.cell_box(3, 5);                             // input pixels cell (3,5) sees
#include <cstdint>
#include <string>
#include <vector>

namespace bagnet {

struct Arch {
  std::string name = "custom";               // preset name, or "custom"
  int64_t in_channels = 3;                   // image channels (3 RGB, 1 grey)
  int64_t stem_width = 64;                   // channels of conv1 (1x1) and conv2 (3x3) of the stem
  std::vector<int64_t> blocks{3, 4, 6, 3};   // bottleneck blocks per stage
  std::vector<int64_t> kernel3{1, 1, 1, 1};  // leading blocks per stage whose conv2 is 3x3 (rest 1x1)
  std::vector<int64_t> strides{2, 2, 2, 1};  // stride of the first block of each stage
  std::vector<int64_t> widths{64, 128, 256, 512};  // bottleneck planes per stage
  int64_t expansion = 4;                     // output channels = planes * expansion
  int64_t num_classes = 1000;

  bool operator==(const Arch& other) const;
  bool operator!=(const Arch& other) const { return !(*this == other); }
};

// Presets of the official models: "bagnet9", "bagnet17", "bagnet33" (1000 classes).
Arch arch_preset(const std::string& name);
std::vector<std::string> arch_preset_names();

// Parses "bagnet17" or a preset followed by overrides, or overrides alone on top of bagnet33's
// defaults, e.g. "bagnet9:classes=10,in=1,strides=2-2-1-1" or
// "blocks=2-2-2-2,kernel3=1-1-0-0,widths=16-32-64-128,stem=16,classes=10". Throws on bad specs.
Arch parse_arch(const std::string& spec);
// The spec string parse_arch() turns back into the same Arch.
std::string arch_to_spec(const Arch& arch);
// Throws Error(InvalidArgument) naming the inconsistent field.
void validate_arch(const Arch& arch);
// Sets arch.name to the matching preset name, or "custom".
void name_arch(Arch& arch);

int64_t receptive_field(const Arch& arch);     // q: side of the square patch one map cell sees
// Block `block` of stage `stage` (0-based): a 3x3 middle convolution for the first kernel3[stage]
// blocks, else 1x1; the stage's stride on its first block only. The one statement of the rule
// (model, folded dense network, receptive field and parameter count all use it).
int64_t block_kernel(const Arch& arch, size_t stage, int64_t block);
int64_t block_stride(const Arch& arch, size_t stage, int64_t block);
int64_t total_stride(const Arch& arch);        // pixel distance between neighbouring map cells
int64_t feature_channels(const Arch& arch);    // channels entering the classifier
int64_t parameter_count(const Arch& arch);     // trainable parameters (conv, BN affine, fc)
int64_t smallest_input(const Arch& arch);      // smallest image side giving a 1x1 map

// A half-open pixel rectangle [top, top+height) x [left, left+width) in model-input pixels.
struct Box {
  int64_t top = 0, left = 0, height = 0, width = 0;
  int64_t bottom() const { return top + height; }
  int64_t right() const { return left + width; }
  bool operator==(const Box& o) const {
    return top == o.top && left == o.left && height == o.height && width == o.width;
  }
};

// Geometry of the stride-8-style evidence map of an input of a given size.
struct MapGeometry {
  int64_t input_height = 0, input_width = 0;
  int64_t rows = 0, cols = 0;        // map size H' x W'
  int64_t stride = 0;                // total stride
  int64_t patch = 0;                 // receptive field q
  Box cell_box(int64_t row, int64_t col) const;  // input pixels cell (row, col) sees exactly
  // Pixels at the bottom/right seen by no patch (the map does not cover them).
  int64_t uncovered_bottom() const { return input_height - ((rows - 1) * stride + patch); }
  int64_t uncovered_right() const { return input_width - ((cols - 1) * stride + patch); }
};

// Throws Error(BadInput) when the input is smaller than the receptive field.
MapGeometry map_geometry(const Arch& arch, int64_t input_height, int64_t input_width);

}  // namespace bagnet
