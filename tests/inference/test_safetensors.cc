#include <mnemo/base/file.h>
#include <mnemo/inference/safetensors.h>
#include <mnemo/inference/weights.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

using namespace mnemo::inference;
using mnemo::Result;
namespace fs = std::filesystem;

namespace {

std::string image_of(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

Result<SafetensorsFile> parse(const std::string& header, const std::string& data) {
  static std::string keep;  // from_bytes keeps pointers into the image
  keep = image_of(header, data);
  return SafetensorsFile::from_bytes(keep, "test.safetensors");
}

// The error message of a parse that must fail.
std::string parse_error(const std::string& header, const std::string& data) {
  auto r = parse(header, data);
  REQUIRE(!r);
  return r.status().message();
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mnemo-st-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Writes a small file with tensors a (BF16 [2,3]), b (F32 [4]), c (I64 [2,2]), e (F32 [0,5]).
void write_small(const std::string& path, std::vector<std::string> names = {"a", "b", "c", "e"}) {
  auto w = SafetensorsWriter::create(path,
                                     {{names[0], DType::kBF16, {2, 3}},
                                      {names[1], DType::kF32, {4}},
                                      {names[2], DType::kI64, {2, 2}},
                                      {names[3], DType::kF32, {0, 5}}},
                                     {{"format", "pt"}});
  REQUIRE(w);
  std::vector<uint16_t> a = {1, 2, 3, 4, 5, 6};
  std::vector<float> b = {1.5f, -2.0f, 3.25f, 0.0f};
  std::vector<int64_t> c = {7, 8, 9, 10};
  REQUIRE(w->write(a.data(), 4));  // in pieces: streaming is allowed to split a tensor
  REQUIRE(w->write(reinterpret_cast<const uint8_t*>(a.data()) + 4, 8));
  REQUIRE(w->write(b.data(), 16));
  REQUIRE(w->write(c.data(), 32));
  REQUIRE(w->finish());
}

std::string slurp(const std::string& path) {
  auto r = mnemo::read_file(path);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("a written safetensors file maps back with the same tensors, data and metadata",
          "[safetensors]") {
  fs::path dir = temp_dir("roundtrip");
  std::string path = (dir / "x.safetensors").string();
  write_small(path);
  auto f = SafetensorsFile::open(path);
  REQUIRE(f);
  REQUIRE(f->tensors().size() == 4);
  const Tensor* a = f->find("a");
  REQUIRE(a);
  CHECK(a->dtype == DType::kBF16);
  CHECK(a->shape == std::vector<int64_t>{2, 3});
  CHECK(a->bytes == 12);
  CHECK(reinterpret_cast<uintptr_t>(a->data) % 8 == 0);
  uint16_t a4;
  std::memcpy(&a4, a->data + 8, 2);
  CHECK(a4 == 5);
  const Tensor* b = f->find("b");
  float b2;
  std::memcpy(&b2, b->data + 8, 4);
  CHECK(b2 == 3.25f);
  const Tensor* c = f->find("c");
  int64_t c3;
  std::memcpy(&c3, c->data + 24, 8);
  CHECK(c3 == 10);
  CHECK(f->find("e")->bytes == 0);
  CHECK(f->find("e")->numel() == 0);
  REQUIRE(f->metadata().size() == 1);
  CHECK(f->metadata()[0].second == "pt");
  fs::remove_all(dir);
}

TEST_CASE("the writer refuses to write more or fewer bytes than declared", "[safetensors]") {
  fs::path dir = temp_dir("writer");
  std::string path = (dir / "x.safetensors").string();
  {
    auto w = SafetensorsWriter::create(path, {{"a", DType::kF32, {2}}});
    REQUIRE(w);
    float v[3] = {1, 2, 3};
    CHECK(!w->write(v, 12));
    REQUIRE(w->write(v, 4));
    CHECK(!w->finish());
  }
  CHECK(!fs::exists(path));  // an unfinished file is removed
  CHECK(!SafetensorsWriter::create(path, {{"a", DType::kF32, {2}}, {"a", DType::kF32, {2}}}));
  CHECK(!SafetensorsWriter::create(path, {{"a", DType::kF32, {-1}}}));
  fs::remove_all(dir);
}

TEST_CASE("every truncation of a valid file is an error, never a read past the end",
          "[safetensors]") {
  fs::path dir = temp_dir("trunc");
  write_small((dir / "x.safetensors").string());
  std::string full = slurp((dir / "x.safetensors").string());
  REQUIRE(SafetensorsFile::from_bytes(full, "full"));
  for (size_t n = 0; n < full.size(); ++n) {
    std::string cut = full.substr(0, n);
    auto r = SafetensorsFile::from_bytes(cut, "cut");
    INFO("length " << n);
    CHECK(!r);
  }
  std::ofstream(dir / "short.safetensors", std::ios::binary) << full.substr(0, full.size() - 3);
  auto r = SafetensorsFile::open((dir / "short.safetensors").string());
  REQUIRE(!r);
  CHECK(r.status().message().find("short.safetensors") != std::string::npos);
  CHECK(r.status().message().find("tensor 'c'") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("header lies are errors naming the file and the tensor", "[safetensors]") {
  std::string data(64, '\0');
  auto hdr = [](const std::string& entries) { return "{" + entries + "}"; };
  CHECK(parse(hdr(R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})"), data));

  std::string m =
      parse_error(hdr(R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":[56,72]})"), data);
  CHECK(m.find("test.safetensors") != std::string::npos);
  CHECK(m.find("tensor 't'") != std::string::npos);
  CHECK(m.find("past the data section") != std::string::npos);

  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]})"), data);
  CHECK(m.find("needs 24 bytes but data_offsets span 16") != std::string::npos);

  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                      R"("u":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]})"),
                  data);
  CHECK(m.find("'t' and 'u' overlap") != std::string::npos);

  // An empty tensor between two overlapping ones does not hide the overlap.
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                      R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                      R"("u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"),
                  data);
  CHECK(m.find("overlap") != std::string::npos);

  m = parse_error(hdr(R"("t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]})"), data);
  CHECK(m.find("unknown dtype 'F33'") != std::string::npos);
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), data);
  CHECK(m.find("non-negative integers") != std::string::npos);
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})"), data);
  CHECK(m.find("non-negative integers") != std::string::npos);
  m = parse_error(
      hdr(R"("t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})"), data);
  CHECK(m.find("overflows") != std::string::npos);
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), data);
  CHECK(m.find("end before they begin") != std::string::npos);
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0]})"), data);
  CHECK(m.find("data_offsets") != std::string::npos);
  m = parse_error(hdr(R"("t":{"dtype":"F32","shape":[2]})"), data);
  CHECK(m.find("data_offsets") != std::string::npos);
  m = parse_error(hdr(R"("t":{"shape":[2],"data_offsets":[0,8]})"), data);
  CHECK(m.find("'dtype'") != std::string::npos);
  m = parse_error(
      hdr(R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"),
      data);
  CHECK(m.find("'t' appears twice") != std::string::npos);
  m = parse_error(hdr(R"("__metadata__":{"a":1})"), data);
  CHECK(m.find("__metadata__") != std::string::npos);
  m = parse_error(hdr(R"("t":[1,2])"), data);
  CHECK(m.find("not an object") != std::string::npos);
  m = parse_error("[1,2,3]", data);
  CHECK(m.find("not a JSON object") != std::string::npos);
  m = parse_error("{\"t\": {\"dtype\": ", data);
  CHECK(m.find("not valid JSON") != std::string::npos);
  m = parse_error("\x01\x02 garbage", data);
  CHECK(m.find("not valid JSON") != std::string::npos);
}

TEST_CASE("a header length beyond the file or the limit is refused before allocating",
          "[safetensors]") {
  std::string img(8, '\0');
  img[7] = 0x7F;  // ~9e18 bytes
  auto r = SafetensorsFile::from_bytes(img + "{}", "huge");
  REQUIRE(!r);
  CHECK(r.status().message().find("exceeds") != std::string::npos);
  std::string img2 = image_of("{}", "");
  img2[0] = 100;
  r = SafetensorsFile::from_bytes(img2, "long");
  REQUIRE(!r);
  CHECK(r.status().message().find("runs past the end") != std::string::npos);
  CHECK(!SafetensorsFile::from_bytes("abc", "tiny"));
  CHECK(SafetensorsFile::from_bytes(image_of("{}", ""), "empty"));
}

TEST_CASE("random byte flips in a valid header give errors or in-bounds tensors, never a crash",
          "[safetensors]") {
  fs::path dir = temp_dir("flips");
  write_small((dir / "x.safetensors").string());
  const std::string full = slurp((dir / "x.safetensors").string());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(full[i]);
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string img = full;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % (8 + header_len);
      img[pos] = static_cast<char>(img[pos] ^ (1 << (rng() % 8)));
    }
    auto r = SafetensorsFile::from_bytes(img, "flipped");
    if (!r) {
      ++errors;
      continue;
    }
    const auto* begin = reinterpret_cast<const uint8_t*>(img.data());
    for (const Tensor& t : r->tensors()) {
      CHECK(t.data >= begin);
      CHECK(t.data + t.bytes <= begin + img.size());
      CHECK(static_cast<int64_t>(t.bytes) == t.numel() * static_cast<int64_t>(dtype_size(t.dtype)));
    }
  }
  CHECK(errors > 1000);
  fs::remove_all(dir);
}

TEST_CASE("Weights opens a single file and a sharded directory with its index", "[weights]") {
  fs::path dir = temp_dir("single");
  write_small((dir / "model.safetensors").string());
  auto w = Weights::open(dir.string());
  REQUIRE(w);
  CHECK(w->size() == 4);
  CHECK(w->find("b"));
  CHECK(!w->find("zz"));
  CHECK(w->tensors().front()->name == "a");
  CHECK(w->require("a", DType::kBF16, {2, 3}));
  auto bad = w->require("a", {DType::kF8E4M3, DType::kF32}, {3, 2});
  REQUIRE(!bad);
  CHECK(bad.status().message().find("tensor 'a' should be F32|F8_E4M3 [3, 2] but is BF16 [2, 3]") !=
        std::string::npos);
  auto missing = w->require("zz", DType::kBF16, {1});
  REQUIRE(!missing);
  CHECK(missing.status().message().find("tensor 'zz' (BF16 [1]) is missing") != std::string::npos);
  fs::remove_all(dir);

  dir = temp_dir("sharded");
  write_small((dir / "model-00001-of-00002.safetensors").string());
  write_small((dir / "model-00002-of-00002.safetensors").string(), {"f", "g", "h", "i"});
  std::string index = R"({"metadata": {"total_size": 120}, "weight_map": {
    "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
    "c": "model-00001-of-00002.safetensors", "e": "model-00001-of-00002.safetensors",
    "f": "model-00002-of-00002.safetensors", "g": "model-00002-of-00002.safetensors",
    "h": "model-00002-of-00002.safetensors", "i": "model-00002-of-00002.safetensors"}})";
  std::ofstream(dir / "model.safetensors.index.json") << index;
  auto sharded = Weights::open(dir.string());
  REQUIRE(sharded);
  CHECK(sharded->size() == 8);
  CHECK(sharded->find("h")->dtype == DType::kI64);

  std::string moved = index;
  const std::string from = "\"h\": \"model-00002";
  moved.replace(moved.find(from), from.size(), "\"h\": \"model-00001");
  std::ofstream(dir / "model.safetensors.index.json") << moved;
  auto r = Weights::open(dir.string());
  REQUIRE(!r);
  CHECK(r.status().message().find("'h'") != std::string::npos);

  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "model-00003-of-00002.safetensors"}})";
  r = Weights::open(dir.string());
  REQUIRE(!r);
  CHECK(r.status().message().find("model-00003-of-00002.safetensors") != std::string::npos);

  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "../../etc/passwd"}})";
  r = Weights::open(dir.string());
  REQUIRE(!r);
  CHECK(r.status().message().find("not a file name") != std::string::npos);

  fs::remove(dir / "model.safetensors.index.json");
  r = Weights::open(dir.string());
  REQUIRE(!r);
  CHECK(r.status().message().find("no model.safetensors.index.json") != std::string::npos);
  fs::remove_all(dir);

  r = Weights::open("/nonexistent/model/dir");
  REQUIRE(!r);
  CHECK(r.status().message().find("does not exist") != std::string::npos);
}
