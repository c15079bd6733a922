// Dataset readers: IDX (plain and gzipped), image folders and CSV lists, built here byte by byte,
// including damaged files: every failure must be a bagnet::Error naming the file (and CSV line).
#include <bagnet/dataset.h>
#include <bagnet/error.h>

#include "vision/idx.h"

#include "scratch.h"

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fstream>
#include <random>

namespace fs = std::filesystem;
using bagnet::ErrorKind;

namespace {

fs::path scratch(const std::string& name) { return bagnet::test::fresh_scratch_folder("dataset", name); }

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string s = std::string("\0\0\x08\x03", 4) + be32(n) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) s += char((i * 7 + i / (rows * cols)) & 0xFF);
  return s;
}

std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string s = std::string("\0\0\x08\x01", 4) + be32(uint32_t(labels.size()));
  for (uint8_t l : labels) s += char(l);
  return s;
}

std::string gzip(const std::string& data) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Expects open_dataset(path) to throw BadInput with every fragment in its message.
void expect_bad(const fs::path& path, const std::vector<std::string>& fragments) {
  try {
    bagnet::open_dataset(path.string());
    FAIL("no error for " << path);
  } catch (const bagnet::Error& e) {
    CHECK(e.kind() == ErrorKind::BadInput);
    for (const auto& f : fragments) CHECK_MESSAGE(std::string(e.what()).find(f) != std::string::npos, e.what());
  }
}

void write_png(const fs::path& path, int value) {
  cv::Mat m(5, 4, CV_8UC3, cv::Scalar(value, value, value));
  REQUIRE(cv::imwrite(path.string(), m));
}

}  // namespace

TEST_CASE("IDX plain and gzipped give the same pixels and labels") {
  const fs::path dir = scratch("idx");
  const std::string images = idx_images(3, 4, 5);
  const std::vector<uint8_t> labels{2, 0, 7};
  write_bytes(dir / "train-images-idx3-ubyte", images);
  write_bytes(dir / "train-labels-idx1-ubyte", idx_labels(labels));
  write_bytes(dir / "t10k-images-idx3-ubyte.gz", gzip(images));
  write_bytes(dir / "t10k-labels-idx1-ubyte.gz", gzip(idx_labels(labels)));
  for (const char* name : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}) {
    CAPTURE(name);
    const auto data = bagnet::open_dataset((dir / name).string());
    REQUIRE(data->size() == 3);
    CHECK(data->class_names().empty());
    CHECK(bagnet::dataset_class_count(*data) == 8);
    CHECK(data->description().find("3 images, 4x5") != std::string::npos);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(data->sample(i).label == labels[i]);
      CHECK(data->sample(i).source == (dir / name).string() + "#" + std::to_string(i));
      const cv::Mat img = data->image(i);
      REQUIRE(img.type() == CV_32FC3);
      REQUIRE((img.rows == 4 && img.cols == 5));
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 5; ++x) {
          const double expected = double(uint8_t(images[16 + i * 20 + y * 5 + x])) / 255.0;
          const cv::Vec3f px = img.at<cv::Vec3f>(y, x);
          CHECK(px[0] == doctest::Approx(expected).epsilon(1e-6));
          CHECK((px[0] == px[1] && px[1] == px[2]));
        }
    }
  }
  bagnet::DatasetOptions named;
  named.class_names = {"a", "b", "c", "d", "e", "f", "g", "h"};
  CHECK(bagnet::open_dataset((dir / "train-images-idx3-ubyte").string(), named)->class_names().size() == 8);
  named.class_names.resize(5);
  CHECK_THROWS_AS(bagnet::open_dataset((dir / "train-images-idx3-ubyte").string(), named), bagnet::Error);
}

TEST_CASE("damaged IDX files are errors naming the file") {
  const fs::path dir = scratch("idx-bad");
  const std::string images = idx_images(3, 4, 5);
  const fs::path img = dir / "x-images-idx3-ubyte", lab = dir / "x-labels-idx1-ubyte";
  write_bytes(lab, idx_labels({1, 2, 3}));

  write_bytes(img, images.substr(0, images.size() - 1));
  expect_bad(img, {img.string(), "truncated IDX data"});
  write_bytes(img, images + "x");
  expect_bad(img, {img.string(), "unexpected bytes"});
  write_bytes(img, images.substr(0, 10));
  expect_bad(img, {img.string(), "truncated IDX header"});
  write_bytes(img, "\x01" + images.substr(1));
  expect_bad(img, {img.string(), "not an IDX file"});
  write_bytes(img, images.substr(0, 2) + "\x0d" + images.substr(3));
  expect_bad(img, {img.string(), "not supported"});
  write_bytes(img, idx_labels({1, 2, 3}));
  expect_bad(img, {img.string(), "1 dimensions, expected 3"});

  write_bytes(img, images);
  write_bytes(lab, idx_labels({1, 2}));
  expect_bad(img, {lab.string(), "holds 2 labels", "3 images"});
  fs::remove(lab);
  expect_bad(img, {"labels file", "not found"});

  // Gzip: truncated at many points and with flipped bytes; each must fail cleanly.
  write_bytes(lab, idx_labels({1, 2, 3}));
  const std::string packed = gzip(images);
  const fs::path gz = dir / "y-images-idx3-ubyte.gz";
  write_bytes(dir / "y-labels-idx1-ubyte.gz", gzip(idx_labels({1, 2, 3})));
  for (size_t cut = 2; cut < packed.size(); cut += 3) {
    write_bytes(gz, packed.substr(0, cut));
    expect_bad(gz, {gz.string()});
  }
  std::mt19937 rng(5);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::string damaged = packed;
    damaged[10 + rng() % (damaged.size() - 10)] ^= char(1 + rng() % 255);
    write_bytes(gz, damaged);
    try {
      bagnet::open_dataset(gz.string());
      ++loaded;  // a flip in the gzip header's optional fields can be harmless
    } catch (const bagnet::Error& e) {
      CHECK(std::string(e.what()).find(gz.string()) != std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > 50);  // the CRC-32 of the gzip trailer catches data damage
  (void)loaded;
}

TEST_CASE("maybe_gunzip reads concatenated members and leaves plain data alone") {
  const std::string a = "hello ", b = "world";
  const std::string both = gzip(a) + gzip(b);
  const auto out = bagnet::detail::maybe_gunzip(std::vector<uint8_t>(both.begin(), both.end()), "mem");
  CHECK(std::string(out.begin(), out.end()) == "hello world");
  const std::vector<uint8_t> plain{1, 2, 3};
  CHECK(bagnet::detail::maybe_gunzip(plain, "mem") == plain);
}

// A gzip bomb posing as an IDX image file: a header promising `images` 28x28 images, then
// `inflated` bytes of zeros, deflated in a stream (a few hundred kilobytes on disk).
std::string idx_bomb(uint32_t images, size_t inflated) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string header = {0, 0, 8, 3};
  for (uint32_t v : {images, 28u, 28u})
    for (int shift = 24; shift >= 0; shift -= 8) header += char((v >> shift) & 0xff);
  const std::string zeros(1 << 20, '\0');
  std::string out, chunk(1 << 16, '\0');
  const auto feed = [&](const std::string& in, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = uInt(in.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(chunk.data());
      z.avail_out = uInt(chunk.size());
      deflate(&z, flush);
      out.append(chunk.data(), chunk.size() - z.avail_out);
    } while (z.avail_out == 0);
  };
  feed(header, Z_NO_FLUSH);
  for (size_t done = 0; done < inflated; done += zeros.size()) feed(zeros, Z_NO_FLUSH);
  feed(std::string(), Z_FINISH);
  deflateEnd(&z);
  return out;
}

TEST_CASE("a gzip bomb posing as an IDX file stops at the size its header promises, within a memory limit") {
  const fs::path bomb = scratch("bomb") / "images-idx3-ubyte.gz";
  {
    const std::string bytes = idx_bomb(1000, size_t(1536) << 20);  // 1.5 GB inflated
    std::ofstream(bomb, std::ios::binary) << bytes;
    CHECK(bytes.size() < (size_t(8) << 20));
  }
  // In a child under an address-space limit of what the process maps now plus 256 MB: inflating the
  // whole stream first (as before) fails with bad_alloc there, exit 2.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::ifstream status("/proc/self/statm");
    size_t pages = 0;
    status >> pages;
    const rlim_t limit = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (rlim_t(256) << 20);
    const struct rlimit rl{limit, limit};
    setrlimit(RLIMIT_AS, &rl);
    try {
      bagnet::detail::read_idx(bomb.string(), 3);
      _exit(3);
    } catch (const bagnet::Error& e) {
      const std::string message = e.what();
      _exit(message.find(bomb.string()) != std::string::npos && message.find("784016 bytes") != std::string::npos ? 0 : 4);
    } catch (const std::bad_alloc&) {
      _exit(2);
    } catch (...) {
      _exit(5);
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Exactly the promised bytes inflate and parse; one byte more is an overlong stream, named.
  const std::string header = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  const fs::path honest = scratch("bomb") / "honest-images-idx3-ubyte.gz";
  std::ofstream(honest, std::ios::binary) << gzip(header + std::string(2 * 28 * 28, '\7'));
  CHECK(bagnet::detail::read_idx(honest.string(), 3).dims == std::vector<int64_t>{2, 28, 28});
  std::ofstream(honest, std::ios::binary | std::ios::trunc) << gzip(header + std::string(2 * 28 * 28 + 1, '\7'));
  CHECK_THROWS_WITH(bagnet::detail::read_idx(honest.string(), 3), doctest::Contains("more than the 1584 bytes"));
}

TEST_CASE("image folder: sorted class folders, recursive, only images") {
  const fs::path dir = scratch("folder");
  fs::create_directories(dir / "zebra" / "sub");
  fs::create_directories(dir / "apple");
  fs::create_directories(dir / ".hidden");
  write_png(dir / "zebra" / "b.png", 10);
  write_png(dir / "zebra" / "sub" / "a.PNG", 20);
  write_png(dir / "apple" / "x.png", 30);
  write_bytes(dir / "apple" / "notes.txt", "not an image");
  write_png(dir / ".hidden" / "y.png", 40);
  const auto data = bagnet::open_dataset(dir.string());
  REQUIRE(data->size() == 3);
  CHECK(data->class_names() == std::vector<std::string>{"apple", "zebra"});
  CHECK(data->sample(0).label == 0);
  CHECK(data->sample(1).label == 1);
  CHECK(data->sample(1).source == (dir / "zebra" / "b.png").string());
  CHECK(data->sample(2).source == (dir / "zebra" / "sub" / "a.PNG").string());
  CHECK(data->image(0).at<cv::Vec3f>(0, 0)[0] == doctest::Approx(30 / 255.0));

  fs::create_directories(dir / "empty");
  expect_bad(dir, {(dir / "empty").string(), "without images"});
  const fs::path none = scratch("folder-none");
  expect_bad(none, {none.string(), "no class sub-folders"});
  // A corrupt image is reported when it is read, naming the file.
  fs::remove_all(dir / "empty");
  write_bytes(dir / "apple" / "y.png", "\x89PNG broken");
  const auto damaged = bagnet::open_dataset(dir.string());
  try {
    damaged->image(1);
    FAIL("corrupt image decoded");
  } catch (const bagnet::Error& e) {
    CHECK(std::string(e.what()).find("y.png") != std::string::npos);
  }
}

TEST_CASE("a folder with images directly in it is unlabelled: every image below it, sorted; training refuses it") {
  const fs::path dir = scratch("photos");
  fs::create_directories(dir / "trip" / "day2");
  write_png(dir / "b.png", 10);
  write_png(dir / "a.JPG.png", 20);
  write_png(dir / "trip" / "c.png", 30);
  write_png(dir / "trip" / "day2" / "d.webp.png", 40);
  write_bytes(dir / "notes.txt", "not an image");
  CHECK(bagnet::is_dataset_path(dir.string()));
  CHECK(bagnet::is_dataset_path((dir / "list.CSV").string()));
  CHECK(bagnet::is_dataset_path("t10k-images-idx3-ubyte.gz"));
  CHECK_FALSE(bagnet::is_dataset_path((dir / "b.png").string()));
  const auto data = bagnet::open_dataset(dir.string());
  REQUIRE(data->size() == 4);
  CHECK(data->class_names().empty());
  const std::vector<fs::path> want{dir / "a.JPG.png", dir / "b.png", dir / "trip" / "c.png", dir / "trip" / "day2" / "d.webp.png"};
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(data->sample(i).source == want[i].string());
    CHECK(data->sample(i).label == -1);
  }
  bagnet::InputSpec spec = bagnet::default_input_spec(3);
  spec.resize = std::nullopt;
  spec.crop = std::nullopt;
  try {
    bagnet::DatasetSource source(*data, spec);
    FAIL("an unlabelled folder was accepted for training");
  } catch (const bagnet::Error& e) {
    CHECK(std::string(e.what()).find("a.JPG.png: no label") != std::string::npos);
  }
}

TEST_CASE("CSV lines of megabytes or thousands of columns: one short error, the line not held or quoted whole") {
  const fs::path dir = scratch("csv-long");
  fs::create_directories(dir);
  write_bytes(dir / "long.csv", "path,label\n" + std::string(20 << 20, 'x') + ",cat\n");
  std::string columns;
  for (int i = 0; i < 5000; ++i) columns += "c" + std::to_string(i) + ",";
  write_bytes(dir / "wide.csv", "path,label\n" + columns + "\n");
  const auto message_of = [&dir](const char* name) -> std::string {
    try {
      bagnet::open_dataset((dir / name).string());
    } catch (const bagnet::Error& e) {
      return e.what();
    }
    return "accepted";
  };
  const std::string long_line = message_of("long.csv"), wide_line = message_of("wide.csv");
  CHECK(long_line.size() < 300);
  CHECK(long_line.find("long.csv:2: a line longer than 65536 characters") != std::string::npos);
  CHECK(wide_line.size() < 300);
  CHECK(wide_line.find("got 'c0,c1,c2,") != std::string::npos);
  CHECK(wide_line.find("...' (" + std::to_string(columns.size()) + " characters)") != std::string::npos);
}

TEST_CASE("CSV lists: names or indices, header, quotes, relative paths, errors with line numbers") {
  const fs::path dir = scratch("csv");
  fs::create_directories(dir / "img");
  write_png(dir / "img" / "a.png", 1);
  write_png(dir / "img" / "b, c.png", 2);
  write_png(dir / "img" / "d.png", 3);
  write_bytes(dir / "named.csv", "path,label\nimg/a.png,cat\r\n\n\"img/b, c.png\",dog\nimg/d.png , cat\n" +
                                     (dir / "img" / "d.png").string() + ",ant\n");
  const auto named = bagnet::open_dataset((dir / "named.csv").string());
  REQUIRE(named->size() == 4);
  CHECK(named->class_names() == std::vector<std::string>{"ant", "cat", "dog"});
  CHECK(named->sample(0).label == 1);
  CHECK(named->sample(1).label == 2);
  CHECK(named->sample(1).source == (dir / "img" / "b, c.png").string());
  CHECK(named->sample(3).label == 0);

  write_bytes(dir / "index.csv", "img/a.png,4\nimg/d.png,0\nimg/a.png\n");
  const auto indexed = bagnet::open_dataset((dir / "index.csv").string());
  CHECK(indexed->class_names().empty());
  CHECK(indexed->sample(0).label == 4);
  CHECK(indexed->sample(2).label == -1);
  CHECK(bagnet::dataset_class_count(*indexed) == 5);

  const fs::path bad = dir / "bad.csv";
  write_bytes(bad, "img/a.png,cat\nimg/a.png,cat,extra\n");
  expect_bad(bad, {bad.string() + ":2", "expected 'path,label'"});
  write_bytes(bad, "img/a.png,cat\n\nimg/missing.png,dog\n");
  expect_bad(bad, {bad.string() + ":3", "missing.png", "does not exist"});
  write_bytes(bad, "img/a.png,cat\nimg/d.png,1\n");
  expect_bad(bad, {bad.string() + ":2", "one kind of label"});
  write_bytes(bad, "\"img/a.png,cat\n");
  expect_bad(bad, {bad.string() + ":1", "unterminated quote"});
  write_bytes(bad, "img/a.png,\n");
  expect_bad(bad, {bad.string() + ":1", "empty label"});
  write_bytes(bad, "path,label\n");
  expect_bad(bad, {bad.string(), "no samples"});
  // A number that is not an index is never a class name (it used to become class 0 silently).
  for (const std::string label : {"-1", "+2", "3.0", "1e3", "-0"}) {
    write_bytes(bad, "img/a.png," + label + "\n");
    expect_bad(bad, {bad.string() + ":1", "'" + label + "' is not a class index"});
    write_bytes(bad, "img/a.png,cat\nimg/d.png," + label + "\n");
    expect_bad(bad, {bad.string() + ":2", "'" + label + "' is not a class index"});
  }
  bagnet::DatasetOptions options;
  options.class_names = {"x", "y"};
  write_bytes(bad, "img/a.png,y\nimg/d.png,2\n");
  try {
    bagnet::open_dataset(bad.string(), options);
    FAIL("index out of range accepted");
  } catch (const bagnet::Error& e) {
    CHECK(std::string(e.what()).find(":2: class index 2 out of range") != std::string::npos);
  }
  expect_bad(dir / "nothing.csv", {"no such file"});
  write_bytes(dir / "random.bin", "abc");
  expect_bad(dir / "random.bin", {"not a dataset"});
}

#ifdef BAGNET_FASHION_MNIST_DIR
TEST_CASE("Debian's Fashion-MNIST reads as 60000 + 10000 28x28 images with 10 classes") {
  const auto train = bagnet::open_dataset(BAGNET_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz");
  const auto test = bagnet::open_dataset(BAGNET_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz");
  CHECK(train->size() == 60000);
  CHECK(test->size() == 10000);
  CHECK(bagnet::dataset_class_count(*test) == 10);
  CHECK(test->sample(0).label == 9);  // the first test image is an ankle boot
  CHECK((test->image(0).rows == 28 && test->image(0).cols == 28));
}
#endif

TEST_CASE("DatasetSource: preprocessed tensors, cached or not; normalisation estimate") {
  const fs::path dir = scratch("source");
  const std::string images = idx_images(4, 6, 6);
  write_bytes(dir / "s-images-idx3-ubyte", images);
  write_bytes(dir / "s-labels-idx1-ubyte", idx_labels({0, 1, 1, 0}));
  const auto data = bagnet::open_dataset((dir / "s-images-idx3-ubyte").string());
  bagnet::InputSpec prep;
  prep.resize = std::nullopt;
  prep.crop = 4;
  prep.channels = 1;
  prep.mean = {0.5f};
  prep.std = {0.25f};
  const bagnet::DatasetSource cached(*data, prep), direct(*data, prep, 0);
  CHECK(cached.size() == 4);
  CHECK(cached.label(2) == 1);
  CHECK(cached.source(3) == (dir / "s-images-idx3-ubyte").string() + "#3");
  const torch::Tensor a = cached.images({3, 0}), b = direct.images({3, 0});
  REQUIRE(a.sizes() == std::vector<int64_t>{2, 1, 4, 4});
  CHECK(torch::equal(a, b));
  // Centre crop 4 of 6: pixel (0, 0) of the crop is (1, 1) of the image.
  const float pixel = float(uint8_t(images[16 + 3 * 36 + 1 * 6 + 1])) / 255.0f;
  CHECK(a[0][0][0][0].item<float>() == doctest::Approx((pixel - 0.5f) / 0.25f));

  bagnet::InputSpec estimate = prep;
  bagnet::estimate_normalisation(*data, estimate);
  const torch::Tensor raw = (cached.images({0, 1, 2, 3}) * 0.25 + 0.5).to(torch::kDouble);
  CHECK(estimate.mean[0] == doctest::Approx(raw.mean().item<double>()).epsilon(1e-4));
  CHECK(estimate.std[0] == doctest::Approx(raw.std(false).item<double>()).epsilon(1e-3));
}

TEST_CASE("labels meet a model's classes by one rule, and a label that fits none names its file and line") {
  const fs::path dir = scratch("relabel");
  fs::create_directories(dir / "img");
  write_png(dir / "img" / "a.png", 1);
  const std::vector<std::string> model{"ant", "bee", "cat", "dog"};
  auto expect_refused = [&](const std::string& csv_text, const std::vector<std::string>& fragments) {
    write_bytes(dir / "list.csv", csv_text);
    try {
      bagnet::relabel_for_model(bagnet::open_dataset((dir / "list.csv").string()), model);
      FAIL("accepted " << csv_text);
    } catch (const bagnet::Error& e) {
      CHECK(e.kind() == ErrorKind::BadInput);
      for (const auto& f : fragments) CHECK_MESSAGE(std::string(e.what()).find(f) != std::string::npos, e.what());
    }
  };
  // Names: remapped by name, whatever their sorted order in the dataset.
  write_bytes(dir / "names.csv", "img/a.png,dog\nimg/a.png,bee\n");
  const auto names = bagnet::relabel_for_model(bagnet::open_dataset((dir / "names.csv").string()), model);
  CHECK(names->sample(0).label == 3);
  CHECK(names->sample(1).label == 1);
  CHECK(names->class_names() == model);
  std::string note = "unchanged";
  bagnet::relabel_for_model(bagnet::open_dataset((dir / "names.csv").string()), model, &note);
  CHECK(note == "unchanged");  // mapped by name: nothing to say
  // Names the model does not have at all (WordNet ids against English names): by sorted position,
  // and the caller is told so.
  write_bytes(dir / "wnid.csv", "img/a.png,n02\nimg/a.png,n01\n");
  note.clear();
  const auto wnid = bagnet::relabel_for_model(bagnet::open_dataset((dir / "wnid.csv").string()), model, &note);
  CHECK(wnid->sample(0).label == 1);
  CHECK(note.find("sorted position") != std::string::npos);
  CHECK(note.find("'n01' -> class 0, ant") != std::string::npos);
  // Indices are the model's; one beyond its classes names the file and line.
  write_bytes(dir / "index.csv", "img/a.png,3\nimg/a.png,0\n");
  CHECK(bagnet::relabel_for_model(bagnet::open_dataset((dir / "index.csv").string()), model)->sample(0).label == 3);
  expect_refused("path,label\nimg/a.png,1\nimg/a.png,12\n", {(dir / "list.csv").string() + ":3", "label 12", "4 classes"});
  // Some names the model has, one it has not: refused, naming it.
  expect_refused("img/a.png,cat\nimg/a.png,cow\n", {"class 'cow'", "not one of the model's classes"});
  // IDX labels: the file and index.
  write_bytes(dir / "t-images-idx3-ubyte", idx_images(3, 2, 2));
  write_bytes(dir / "t-labels-idx1-ubyte", idx_labels({1, 7, 2}));
  try {
    bagnet::relabel_for_model(bagnet::open_dataset((dir / "t-images-idx3-ubyte").string()), model);
    FAIL("accepted label 7");
  } catch (const bagnet::Error& e) {
    CHECK(std::string(e.what()).find((dir / "t-labels-idx1-ubyte").string() + "#1: label 7") != std::string::npos);
  }
}

TEST_CASE("folder walks follow symbolic links and walk a folder reached twice once") {
  const fs::path dir = scratch("links");
  const fs::path elsewhere = scratch("links-target");
  fs::create_directories(dir / "cat");
  fs::create_directories(elsewhere / "more");
  write_png(dir / "cat" / "a.png", 1);
  write_png(elsewhere / "x.png", 2);
  write_png(elsewhere / "more" / "y.png", 3);
  fs::create_symlink(elsewhere / "x.png", dir / "cat" / "link.png");     // a linked file
  fs::create_symlink(elsewhere / "more", dir / "cat" / "linked-folder");  // a linked folder
  fs::create_symlink("..", dir / "cat" / "loop");                         // a loop back up
  fs::create_symlink(dir / "missing.png", dir / "cat" / "dangling.png");  // a link to nothing
  const bagnet::FolderFiles walk = bagnet::list_folder_files(dir);
  std::vector<std::string> names;
  for (const auto& f : walk.files) names.push_back(f.lexically_relative(dir).string());
  CHECK(names == std::vector<std::string>{"cat/a.png", "cat/link.png", "cat/linked-folder/y.png"});
  REQUIRE(walk.repeated_folders.size() == 1);
  CHECK(walk.repeated_folders[0] == dir / "cat" / "loop");
  // An image folder dataset takes the linked images too, and the loop does not hang it.
  const auto data = bagnet::open_dataset(dir.string());
  CHECK(data->size() == 3);
  CHECK(data->sample(2).source == (dir / "cat" / "linked-folder" / "y.png").string());
}
