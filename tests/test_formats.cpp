// File formats and small utilities: SHA-256, .npy, atomic writes, class names.
#include <bagnet/atomic_file.h>
#include <bagnet/error.h>
#include <bagnet/labels.h>
#include <bagnet/json_text.h>
#include <bagnet/npy.h>
#include <bagnet/sha256.h>

#include "scratch.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace bagnet;
namespace fs = std::filesystem;

namespace {
fs::path scratch(const std::string& name) { return bagnet::test::scratch_folder("formats") / name; }
std::string hash(const std::string& s) { return sha256_hex(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 test vectors") {
  CHECK(hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hash(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  for (size_t n : {55, 56, 63, 64, 65})  // padding boundaries must not crash and must differ
    CHECK(hash(std::string(n, 'x')) != hash(std::string(n + 1, 'x')));
}

TEST_CASE("npy round trip keeps shape, dtype and values") {
  torch::manual_seed(0);
  for (const auto& tensor : {torch::randn({3, 5, 7}), torch::randn({4}).to(torch::kDouble),
                             torch::arange(12, torch::kLong).view({3, 4}), torch::zeros({0, 3})}) {
    const auto path = scratch("a.npy").string();
    save_npy(path, tensor);
    const auto back = load_npy(path);
    CHECK(back.sizes() == tensor.sizes());
    CHECK((back.scalar_type() == tensor.scalar_type()));
    CHECK(torch::equal(back, tensor));
    std::ifstream in(path, std::ios::binary);
    std::string head(10, '\0');
    in.read(head.data(), 10);
    const size_t header = static_cast<unsigned char>(head[8]) | (static_cast<unsigned char>(head[9]) << 8);
    CHECK((10 + header) % 64 == 0);  // numpy's alignment rule
  }
  CHECK_THROWS_AS(load_npy(scratch("missing.npy").string()), Error);
}

TEST_CASE("npz round trip keeps names and arrays; foreign or damaged archives are refused") {
  torch::manual_seed(1);
  const std::vector<std::pair<std::string, torch::Tensor>> arrays = {
      {"class_3", torch::randn({4, 5})}, {"class_17", torch::randn({2, 2}).to(torch::kDouble)}, {"empty", torch::zeros({0})}};
  const auto path = scratch("maps.npz").string();
  save_npz(path, arrays);
  const auto back = load_npz(path);
  REQUIRE(back.size() == arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    CHECK(back[i].first == arrays[i].first);
    CHECK((back[i].second.scalar_type() == arrays[i].second.scalar_type()));
    CHECK(torch::equal(back[i].second, arrays[i].second));
  }
  CHECK_THROWS_AS(save_npz(scratch("bad.npz").string(), {{"a/b", torch::zeros({1})}}), Error);
  CHECK_FALSE(fs::exists(scratch("bad.npz")));
  // A flipped data byte fails the CRC; a .npy is not an archive; an entry that is not .npy is refused.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string damaged = bytes;
  damaged[bytes.find("NUMPY") + 200] ^= 0x5a;
  std::ofstream(scratch("damaged.npz"), std::ios::binary) << damaged;
  CHECK_THROWS_AS(load_npz(scratch("damaged.npz").string()), Error);
  save_npy(scratch("plain.npy").string(), torch::zeros({2}));
  CHECK_THROWS_AS(load_npz(scratch("plain.npy").string()), Error);
  std::ofstream(scratch("truncated.npz"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  CHECK_THROWS_AS(load_npz(scratch("truncated.npz").string()), Error);
}

TEST_CASE("paths that are not UTF-8 go into JSON losslessly; documents never fail to serialise") {
  CHECK(is_valid_utf8("plain/caf\xc3\xa9.png"));
  for (const std::string bad : {"\xe9", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff\xfe"})
    CHECK_FALSE(is_valid_utf8(bad));
  CHECK(json_path("caf\xc3\xa9.png") == "caf\xc3\xa9.png");             // valid: unchanged
  CHECK(json_path("caf\xe9.png") == "caf\xef\x9f\xa9.png");             // 0xE9 -> U+F7E9
  std::mt19937 random(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes(random() % 12, '\0');
    for (char& c : bytes) c = static_cast<char>(random() % 256);
    const std::string text = json_path(bytes);
    CHECK(is_valid_utf8(text));
    if (!is_valid_utf8(bytes)) CHECK(path_from_json(text) == bytes);
    const nlohmann::json doc = {{"source", text}, {"raw", bytes}};
    const std::string dumped = to_json_text(doc);  // "raw" is replaced, never thrown on
    CHECK(nlohmann::json::parse(dumped)["source"] == text);
  }
}

TEST_CASE("atomic writes leave nothing behind on failure") {
  const auto target = scratch("atomic.txt");
  fs::remove(target);
  CHECK_THROWS(write_file_atomically(target.string(), [](std::ostream& out) {
    out << "half";
    throw std::runtime_error("interrupted");
  }));
  CHECK_FALSE(fs::exists(target));
  for (const auto& entry : fs::directory_iterator(target.parent_path()))
    CHECK(entry.path().filename().string().find("atomic.txt.tmp") == std::string::npos);
  write_text_atomically(target.string(), "done");
  std::ifstream in(target);
  std::string content;
  std::getline(in, content);
  CHECK(content == "done");
  try {
    write_text_atomically((scratch("no-such-dir") / "x.txt").string(), "x");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Output);  // an output that cannot be written ends a run
    CHECK(std::string(e.what()).find("cannot create") != std::string::npos);
  }
}

TEST_CASE("class names and class lists") {
  const auto& names = imagenet_class_names();
  REQUIRE(names.size() == 1000);
  CHECK(names[0] == "tench");
  CHECK(names[281] == "tabby");
  CHECK(parse_class_list("281, Tench,2", names) == std::vector<int64_t>{281, 0, 2});  // unique case-insensitive match
  // The same class twice (by index and by name) is refused, naming it.
  try {
    parse_class_list("281, Tabby", names);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("class 281 (tabby) twice") != std::string::npos);
  }
  // An exact match wins over a case-insensitive one: "cardigan" is the sweater (474), "Cardigan" the
  // dog (264); a name matching several classes only case-insensitively is refused with candidates.
  CHECK(names[264] == "Cardigan");
  CHECK(names[474] == "cardigan");
  CHECK(parse_class_list("cardigan", names) == std::vector<int64_t>{474});
  CHECK(parse_class_list("Cardigan", names) == std::vector<int64_t>{264});
  try {
    parse_class_list("CARDIGAN", names);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("ambiguous: 264 'Cardigan', 474 'cardigan'") != std::string::npos);
  }
  CHECK(parse_class_list("all", names).size() == 1000);
  CHECK_THROWS_AS(parse_class_list("1000", names), Error);
  CHECK_THROWS_AS(parse_class_list("unicorn", names), Error);
  CHECK_THROWS_AS(parse_class_list("1,,2", names), Error);
  CHECK(class_names_for(10)[3] == "class_3");
  const auto file = scratch("labels.txt");
  std::ofstream(file) << "cat\ndog\n\n";
  CHECK(read_class_names(file.string()) == std::vector<std::string>{"cat", "dog"});
  CHECK_THROWS_AS(class_names_for(3, file.string()), Error);
  std::ofstream(file) << "cat\ncat\n";
  try {
    read_class_names(file.string());
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(":2: duplicate") != std::string::npos);
  }
}
