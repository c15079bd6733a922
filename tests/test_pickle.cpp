// The checkpoint reader on hand-built files: correct tensors, and refusal of anything unsafe or
// malformed with a clear Error (never a crash, a hang or executed code).
#include <bagnet/checkpoint.h>
#include <bagnet/error.h>

#include "pickle_builder.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <random>

using namespace bagnet;
using namespace bagnet::test;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Two tensors sharing one storage: a 2x3 matrix at offset 1 and its transposed view.
std::string sample_legacy() {
  std::vector<float> data(8);
  for (int i = 0; i < 8; ++i) data[i] = static_cast<float>(i);
  return legacy_file({{"a.weight", "7", 1, {2, 3}, {3, 1}}, {"a.bias", "7", 1, {3, 2}, {1, 3}}}, {{"7", data}});
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_checkpoint(bytes, "sample.pt");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string with_main_pickle(const std::string& pickle) {
  return legacy_header() + pickle + std::string("\x80\x02]q\x00.", 6);
}

}  // namespace

TEST_CASE("legacy file with shared storage and strided views") {
  const Checkpoint c = parse_checkpoint(bytes_of(sample_legacy()), "sample.pt");
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.format == CheckpointFormat::Legacy);
  CHECK(c.tensors[0].first == "a.weight");
  CHECK(torch::equal(c.tensors[0].second, torch::tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}})));
  CHECK(torch::equal(c.tensors[1].second, torch::tensor({{1.f, 4.f}, {2.f, 5.f}, {3.f, 6.f}})));
  CHECK(c.sha256.size() == 64);
}

TEST_CASE("zip file, wrapped and prefixed") {
  std::vector<float> data{1, 2, 3, 4};
  Pickle p;
  p.proto().op('}').mark().str("epoch").integer(3).str("state_dict").op('}').mark();
  p.str("module.fc.weight").tensor("0", 4, 0, {2, 2}, {2, 1});
  p.str("module.fc.bias").tensor("0", 4, 2, {2}, {1});
  p.op('u').op('u').stop();
  const std::string storage(reinterpret_cast<const char*>(data.data()), 16);
  const auto file = zip_file({{"ckpt/data.pkl", p.out}, {"ckpt/data/0", storage}, {"ckpt/version", "3\n"}});
  const Checkpoint c = parse_checkpoint(bytes_of(file), "wrapped.pt");
  CHECK(c.format == CheckpointFormat::Zip);
  CHECK(c.wrapper_key == "state_dict");
  CHECK(c.removed_prefix == "module.");
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].first == "fc.weight");
  CHECK(torch::equal(c.tensors[1].second, torch::tensor({3.f, 4.f})));
  REQUIRE(c.metadata.size() == 1);
  CHECK(c.metadata[0] == std::pair<std::string, std::string>{"epoch", "3"});

  SUBCASE("a flipped storage byte fails the CRC") {
    std::string bad = file;
    bad[bad.find("ckpt/data/0") + 11 + 5] ^= 0x40;
    CHECK(error_of(bytes_of(bad)).find("CRC") != std::string::npos);
  }
  SUBCASE("compressed entries are refused") {
    const auto deflated = zip_file({{"ckpt/data.pkl", p.out}, {"ckpt/data/0", storage}}, 8);
    CHECK(error_of(bytes_of(deflated)).find("compressed") != std::string::npos);
  }
  SUBCASE("a missing storage record is named") {
    const auto missing = zip_file({{"ckpt/data.pkl", p.out}});
    CHECK(error_of(bytes_of(missing)).find("data/0") != std::string::npos);
  }
  SUBCASE("every truncation is a clean error") {
    for (size_t n = 0; n < file.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(error_of(bytes_of(file.substr(0, n))).empty());
    }
  }
}

TEST_CASE("forbidden globals are refused before anything runs") {
  namespace fs = std::filesystem;
  const fs::path marker = fs::temp_directory_path() / "bagnet-test-pwned";
  fs::remove(marker);
  const std::string command = "touch " + marker.string();
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"os", "system"}, {"posix", "system"}, {"builtins", "eval"}, {"__builtin__", "getattr"},
           {"subprocess", "Popen"}, {"torch", "load"}, {"collections", "defaultdict"}}) {
    const std::string global = module + "." + name;  // CAPTURE cannot name a structured binding (clang)
    CAPTURE(global);
    Pickle p;
    p.proto().global(module, name).mark().str(command).tuple().op('R').stop();
    const std::string message = error_of(bytes_of(with_main_pickle(p.out)));
    CHECK(message.find("refusing the Python global '" + module + "." + name + "'") != std::string::npos);
    // STACK_GLOBAL (protocol 4) spelling of the same.
    Pickle q;
    q.proto().str(module).str(name).op('\x93').mark().str(command).tuple().op('R').stop();
    CHECK(error_of(bytes_of(with_main_pickle(q.out))).find("refusing") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("object-constructing opcodes and malformed pickles are refused") {
  auto check_error = [](const std::string& pickle, const std::string& expected) {
    const std::string message = error_of(bytes_of(with_main_pickle(pickle)));
    CAPTURE(message);
    CHECK(message.find(expected) != std::string::npos);
  };
  Pickle newobj;
  newobj.proto().global("collections", "OrderedDict").op(')').op('\x81').stop();
  check_error(newobj.out, "refusing pickle opcode");
  check_error(std::string("\x80\x02h\x05.", 5), "memo entry 5");
  check_error(std::string("\x80\x02X\xff\xff\xff\x7f", 8), "truncated");
  check_error(std::string("\x80\x02t.", 4), "missing MARK");
  check_error(std::string("\x80\x02\xfe.", 4), "unsupported pickle opcode");
  check_error(std::string("\x80\x02N.", 4), "expected a state dict");
  // A tensor claiming more elements than its storage holds.
  std::vector<float> four(4, 1.f);
  CHECK(error_of(bytes_of(legacy_file({{"x", "0", 0, {100}, {1}}}, {{"0", four}}))).find("beyond its storage") !=
        std::string::npos);
  CHECK(error_of(bytes_of(legacy_file({{"x", "0", 3, {2}, {1}}}, {{"0", four}}))).find("beyond its storage") !=
        std::string::npos);
}

TEST_CASE("a million nested tuples neither overflow the stack nor leak") {
  std::string deep = "\x80\x02N";
  deep += std::string(1000000, '\x85');  // TUPLE1
  deep += ".";
  CHECK(error_of(bytes_of(with_main_pickle(deep))).find("expected a state dict") != std::string::npos);
}

TEST_CASE("every truncation of a legacy file is a clean error") {
  const std::string file = sample_legacy();
  for (size_t n = 0; n < file.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(error_of(bytes_of(file.substr(0, n))).empty());
  }
}

TEST_CASE("random corruption never crashes (seeded)") {
  const std::string file = sample_legacy();
  std::mt19937 rng(12345);
  int loaded = 0, refused = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string bad = file;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xFF);
    (error_of(bytes_of(bad)).empty() ? loaded : refused)++;
  }
  CHECK(refused > 0);
  CHECK(loaded + refused == 5000);
}
