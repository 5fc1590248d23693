#include "io/split_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/hdf5_check.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"

namespace st {

std::vector<std::string> list_splits(hid_t file) {
  std::vector<std::string> names;
  for (const char* split : format::kSplits)
    if (HDF5_CHECK(H5Lexists(file, split, H5P_DEFAULT)) > 0) names.push_back(split);
  return names;
}

static std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text.empty() ? "none" : text;
}

static std::string type_description(hid_t type) {
  std::string bits = std::to_string(H5Tget_size(type) * 8) + "-bit ";
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return bits + (H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed") + " integers";
    case H5T_FLOAT: return bits + "floats";
    case H5T_STRING: return "strings";
    default: return "a non-numeric type";
  }
}

// Checks the root attributes; returns the kind.
static std::string check_root(hid_t file, const std::string& path) {
  ST_CHECK(has_attribute(file, format::kAttrFormatVersion),
           path + ": no '" + format::kAttrFormatVersion +
               "' attribute: not a byte dataset written by st-convert");
  int64_t version = read_int_attribute(file, format::kAttrFormatVersion);
  ST_CHECK(version == format::kVersion,
           path + ": format version " + std::to_string(version) +
               " is not one this reader knows (it reads version " + std::to_string(format::kVersion) +
               ")");
  std::string kind = has_attribute(file, format::kAttrKind) ? read_string_attribute(file, format::kAttrKind) : "";
  ST_CHECK(kind == format::kKindStream || kind == format::kKindExamples,
           path + ": kind '" + kind + "' is neither 'stream' nor 'examples'");
  return kind;
}

// Fills `info` from the dataset's type, shape and chunking.
static void inspect(hid_t file, hid_t dataset, SplitInfo& info) {
  const std::string where = info.path + ": dataset '" + info.split + "'";
  H5Handle type(HDF5_CHECK(H5Dget_type(dataset)), H5Tclose);
  ST_CHECK(H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1 &&
               H5Tget_sign(type) == H5T_SGN_NONE,
           where + " holds " + type_description(type) + ", not unsigned bytes (uint8)");
  H5Handle space(HDF5_CHECK(H5Dget_space(dataset)), H5Sclose);
  int rank = HDF5_CHECK(H5Sget_simple_extent_ndims(space));
  int expected_rank = info.examples ? 2 : 1;
  ST_CHECK(rank == expected_rank,
           where + " has rank " + std::to_string(rank) + "; a " + (info.examples ? "examples" : "stream") +
               " dataset must have rank " + std::to_string(expected_rank));
  hsize_t dims[2] = {0, 1};
  HDF5_CHECK(H5Sget_simple_extent_dims(space, dims, nullptr));
  info.items = int64_t(dims[0]);
  if (info.examples) {
    info.example_shape = read_ints_attribute(file, format::kAttrExampleShape);
    info.item_bytes = 1;
    for (int64_t d : info.example_shape) info.item_bytes *= d;
    ST_CHECK(info.item_bytes == int64_t(dims[1]),
             where + " has rows of " + std::to_string(dims[1]) +
                 " bytes, but the example shape gives " + std::to_string(info.item_bytes));
  }
  H5Handle properties(HDF5_CHECK(H5Dget_create_plist(dataset)), H5Pclose);
  hsize_t chunk[2] = {hsize_t(info.items), 1};
  if (H5Pget_layout(properties) == H5D_CHUNKED) HDF5_CHECK(H5Pget_chunk(properties, 2, chunk));
  info.chunk_items = int64_t(chunk[0]);
  info.compressed = HDF5_CHECK(H5Pget_nfilters(properties)) > 0;
}

OpenSplit open_split(const std::string& path, const std::string& split, int64_t window,
                     bool random_access) {
  hdf5_silence_errors();
  {
    std::ifstream probe(path, std::ios::binary);
    ST_CHECK(probe.good(), path + ": cannot open: " + std::strerror(errno));
  }
  ST_CHECK(H5Fis_hdf5(path.c_str()) > 0, path + ": not an HDF5 file");
  OpenSplit open;
  open.info.path = path;
  open.info.split = split;
  open.file = H5Handle(HDF5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose);
  open.info.examples = check_root(open.file, path) == format::kKindExamples;
  ST_CHECK(HDF5_CHECK(H5Lexists(open.file, split.c_str(), H5P_DEFAULT)) > 0,
           path + ": no split '" + split + "' (the file holds: " + joined(list_splits(open.file)) + ")");
  {
    H5Handle dataset(HDF5_CHECK(H5Dopen2(open.file, split.c_str(), H5P_DEFAULT)), H5Dclose);
    inspect(open.file, dataset, open.info);
  }
  const SplitInfo& info = open.info;
  if (!info.examples)
    ST_CHECK(info.items >= window,
             path + ": split '" + split + "' holds " + std::to_string(info.items) +
                 " bytes, shorter than one context window of " + std::to_string(window) +
                 " bytes (n + 1)");
  ST_CHECK(info.items > 0, path + ": split '" + split + "' is empty");

  int64_t item_bytes = info.examples ? info.item_bytes : window;
  int64_t chunk_bytes = info.chunk_items * (info.examples ? info.item_bytes : 1);
  int64_t cache_bytes = (item_bytes / chunk_bytes + 2) * chunk_bytes;
  if (random_access && !info.compressed) cache_bytes = 0;
  H5Handle access(HDF5_CHECK(H5Pcreate(H5P_DATASET_ACCESS)), H5Pclose);
  HDF5_CHECK(H5Pset_chunk_cache(access, 1009, size_t(cache_bytes), H5D_CHUNK_CACHE_W0_DEFAULT));
  open.dataset = H5Handle(HDF5_CHECK(H5Dopen2(open.file, split.c_str(), access)), H5Dclose);
  return open;
}

}  // namespace st
