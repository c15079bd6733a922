// Loading the official fixture checkpoints in every supported packaging, and the errors for
// truncated files and wrong architectures.
#include <bagnet/checkpoint.h>
#include <bagnet/error.h>
#include <bagnet/model.h>
#include <bagnet/model_file.h>

#include "test_util.h"
#include "core/zip_reader.h"

#include <caffe2/serialize/inline_container.h>
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace bagnet;
using bagnet::test::fixture;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const Checkpoint& legacy9() {
  static const Checkpoint c = read_checkpoint(fixture("bagnet9-s9.pth.tar"));
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Reads a zip checkpoint with our reader and with LibTorch's PyTorchStreamReader: both must list
// the same records in the same order, at the same offsets, with the same bytes.
void check_same_records(const std::string& path, bool aligned) {
  CAPTURE(path);
  const auto bytes = read_bytes(path);
  const auto ours = bagnet::detail::read_zip(bytes.data(), bytes.size(), path);
  caffe2::serialize::PyTorchStreamReader theirs(path);
  const std::vector<std::string> names = theirs.getAllRecords();  // without the "<folder>/" prefix
  REQUIRE(ours.size() == names.size());
  CHECK(ours.size() > 2);
  for (size_t i = 0; i < ours.size(); ++i) {
    CAPTURE(ours[i].name);
    const auto slash = ours[i].name.find('/');
    REQUIRE(slash != std::string::npos);
    const std::string name = ours[i].name.substr(slash + 1);
    CHECK(name == names[i]);
    const auto [data, size] = theirs.getRecord(name);
    REQUIRE(size == ours[i].size);
    CHECK((size == 0 || std::memcmp(data.get(), ours[i].data, size) == 0));
    const size_t offset = static_cast<size_t>(ours[i].data - bytes.data());
    CHECK(theirs.getRecordOffset(name) == offset);
    if (aligned) CHECK(offset % 64 == 0);  // torch.save's layout, so PyTorch can map storages
  }
}

}  // namespace

TEST_CASE("our zip reader and LibTorch's PyTorchStreamReader agree on every record") {
  SUBCASE("official zip checkpoints") {
    check_same_records(fixture("bagnet9-s9-zip.pt"), false);
    check_same_records(fixture("bagnet9-s9-wrapped.pt"), false);
  }
  SUBCASE("a model file written by bagnet-lens") {
    ModelMeta meta;
    meta.arch = detect_arch(legacy9().tensors);
    for (int64_t c = 0; c < meta.arch.num_classes; ++c) meta.class_names.push_back("class " + std::to_string(c));
    const std::string path = (std::filesystem::temp_directory_path() / "bagnet-test-stream-reader.pt").string();
    save_model_file(path, legacy9().tensors, meta, {{"momentum.fc.weight", torch::ones({3, 5})}});
    check_same_records(path, true);
    const Checkpoint reread = read_checkpoint(path);
    REQUIRE(reread.tensors.size() == legacy9().tensors.size());
    for (size_t i = 0; i < reread.tensors.size(); ++i)
      CHECK(torch::equal(reread.tensors[i].second, legacy9().tensors[i].second));
    std::filesystem::remove(path);
  }
}

TEST_CASE("legacy official checkpoints load and their architecture is detected") {
  for (const auto& [file, preset] : std::vector<std::pair<std::string, std::string>>{
           {"bagnet9-s9.pth.tar", "bagnet9"}, {"bagnet17-s17.pth.tar", "bagnet17"}, {"bagnet33-s33.pth.tar", "bagnet33"}}) {
    const std::string file_name = file;  // CAPTURE cannot name a structured binding (clang)
    CAPTURE(file_name);
    const Checkpoint c = read_checkpoint(fixture(file));
    CHECK(c.format == CheckpointFormat::Legacy);
    CHECK(c.wrapper_key.empty());
    CHECK(c.removed_prefix.empty());
    const Arch arch = detect_arch(c.tensors);
    CHECK(arch.name == preset);
    CHECK(arch.num_classes == 1000);
    CHECK(c.tensors.front().first == "conv1.weight");
    CHECK(c.tensors.back().first == "fc.bias");
  }
}

TEST_CASE("zip and wrapped module.-prefixed files give the same tensors as the legacy file") {
  const Checkpoint zip = read_checkpoint(fixture("bagnet9-s9-zip.pt"));
  const Checkpoint wrapped = read_checkpoint(fixture("bagnet9-s9-wrapped.pt"));
  CHECK(zip.format == CheckpointFormat::Zip);
  CHECK(wrapped.wrapper_key == "state_dict");
  CHECK(wrapped.removed_prefix == "module.");
  CHECK(detect_arch(wrapped.tensors).name == "bagnet9");
  const auto& legacy = legacy9().tensors;
  REQUIRE(zip.tensors.size() == legacy.size());
  size_t batches_tracked = 0;
  for (size_t i = 0; i < legacy.size(); ++i) {
    CHECK(zip.tensors[i].first == legacy[i].first);
    CHECK(torch::equal(zip.tensors[i].second, legacy[i].second));
    if (legacy[i].first.find("num_batches_tracked") != std::string::npos) ++batches_tracked;
  }
  CHECK(batches_tracked > 0);
  // The wrapped file has no num_batches_tracked entries; everything else is identical.
  CHECK(wrapped.tensors.size() == legacy.size() - batches_tracked);
  size_t w = 0;
  for (const auto& [name, tensor] : legacy) {
    if (name.find("num_batches_tracked") != std::string::npos) continue;
    REQUIRE(w < wrapped.tensors.size());
    CHECK(wrapped.tensors[w].first == name);
    CHECK(torch::equal(wrapped.tensors[w].second, tensor));
    ++w;
  }
  // Both load strictly into the model, with and without num_batches_tracked.
  CHECK_NOTHROW(load_model(fixture("bagnet9-s9-wrapped.pt")));
  CHECK_NOTHROW(load_model(fixture("bagnet9-s9-zip.pt")));
}

TEST_CASE("a checkpoint for another architecture is refused naming the key and both shapes") {
  const std::string message = error_of([] {
    LoadOptions o;
    o.arch = "bagnet33";
    load_model(fixture("bagnet9-s9.pth.tar"), o);
  });
  CAPTURE(message);
  CHECK(message.find("layer3.0.conv2.weight") != std::string::npos);
  CHECK(message.find("[256, 256, 1, 1]") != std::string::npos);
  CHECK(message.find("[256, 256, 3, 3]") != std::string::npos);

  StateDict extra = legacy9().tensors;
  extra.emplace_back("head.weight", torch::zeros({2, 2}));
  BagNet net(arch_preset("bagnet9"));
  CHECK(error_of([&] { load_state_dict(net, extra); }).find("unexpected key 'head.weight'") != std::string::npos);
  StateDict missing = legacy9().tensors;
  missing.erase(missing.begin() + 1);
  CHECK(error_of([&] { load_state_dict(net, missing); }).find("missing key '" + legacy9().tensors[1].first) !=
        std::string::npos);
  CHECK(error_of([&] { detect_arch(StateDict{{"weights", torch::zeros({1})}}); }).find("conv1.weight") !=
        std::string::npos);
}

TEST_CASE("truncated and corrupt official files are clear errors") {
  const auto legacy = read_bytes(fixture("bagnet9-s9.pth.tar"));
  const auto zip = read_bytes(fixture("bagnet9-s9-zip.pt"));
  for (const auto* bytes : {&legacy, &zip}) {
    for (double fraction : {0.0, 0.0001, 0.0005, 0.01, 0.5, 0.999999}) {
      const size_t n = static_cast<size_t>(fraction * static_cast<double>(bytes->size()));
      CAPTURE(n);
      const std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + static_cast<std::ptrdiff_t>(n));
      const std::string message = error_of([&] { parse_checkpoint(cut, "cut.pth"); });
      CHECK(message.find("cut.pth") == 0);
      CHECK((message.find("truncated") != std::string::npos || message.find("empty") != std::string::npos));
    }
  }
  std::vector<uint8_t> garbage(1000, 0x42);
  CHECK(error_of([&] { parse_checkpoint(garbage, "garbage.bin"); }).find("not a PyTorch checkpoint") != std::string::npos);
  CHECK(error_of([] { read_checkpoint("/nonexistent/bagnet.pth"); }).find("cannot open") != std::string::npos);
}
