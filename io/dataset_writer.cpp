#include "io/dataset_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/hdf5_check.h"
#include "io/atomic_file.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"

namespace st {

DatasetWriter::DatasetWriter(const std::string& path, std::vector<int64_t> example_shape, int deflate)
    : path_(path), temp_path_(path + ".tmp"), example_shape_(std::move(example_shape)), deflate_(deflate) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  ST_CHECK(std::filesystem::is_directory(folder),
           path + ": the output folder '" + folder.string() + "' does not exist");
  ST_CHECK(deflate >= 0 && deflate <= 9, "deflate level " + std::to_string(deflate) + " is not 0..9");
  if (!example_shape_.empty()) {
    example_bytes_ = 1;
    for (int64_t d : example_shape_) example_bytes_ *= d;
    ST_CHECK(example_bytes_ > 0, path + ": an example of zero bytes");
  }
  hdf5_silence_errors();
  file_ = H5Handle(HDF5_CHECK(H5Fcreate(temp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)),
                   H5Fclose);
}

DatasetWriter::~DatasetWriter() {
  if (committed_) return;
  close_all();
  std::remove(temp_path_.c_str());
}

void DatasetWriter::close_all() {
  datasets_.clear();
  file_.reset();
}

H5Handle DatasetWriter::create_dataset(const std::string& name, int rank, const hsize_t* dims,
                                       int64_t row_bytes) {
  H5Handle space(HDF5_CHECK(H5Screate_simple(rank, dims, nullptr)), H5Sclose);
  H5Handle properties(HDF5_CHECK(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
  // About 1 MiB per chunk: whole rows for examples, a run of bytes for a
  // stream.  A chunk may not exceed a fixed dimension, hence the min.
  hsize_t rows = hsize_t(std::max<int64_t>(1, format::kChunkBytes / row_bytes));
  hsize_t chunk[2] = {std::min<hsize_t>(rows, dims[0]), hsize_t(row_bytes)};
  HDF5_CHECK(H5Pset_chunk(properties, rank, chunk));
  if (deflate_ > 0) HDF5_CHECK(H5Pset_deflate(properties, unsigned(deflate_)));
  return H5Handle(HDF5_CHECK(H5Dcreate2(file_, name.c_str(), H5T_STD_U8LE, space, H5P_DEFAULT,
                                        properties, H5P_DEFAULT)),
                  H5Dclose);
}

void DatasetWriter::create_split(const std::string& split, int64_t count, bool with_labels) {
  ST_CHECK(count > 0, path_ + ": split '" + split + "' would be empty");
  bool examples = example_bytes_ > 0;
  hsize_t dims[2] = {hsize_t(count), hsize_t(example_bytes_)};
  H5Handle dataset = create_dataset(split, examples ? 2 : 1, dims, examples ? example_bytes_ : 1);
  write_int_attribute(dataset, format::kAttrByteCount, count * (examples ? example_bytes_ : 1));
  if (examples) write_int_attribute(dataset, format::kAttrExampleCount, count);
  datasets_[split] = std::move(dataset);
  if (with_labels) {
    std::string name = split + format::kLabelsSuffix;
    datasets_[name] = create_dataset(name, 1, dims, 1);
  }
}

void DatasetWriter::write_rows(hid_t dataset, int rank, int64_t first, int64_t count,
                               int64_t row_bytes, const uint8_t* data) {
  if (count == 0) return;
  hsize_t start[2] = {hsize_t(first), 0}, counts[2] = {hsize_t(count), hsize_t(row_bytes)};
  H5Handle file_space(HDF5_CHECK(H5Dget_space(dataset)), H5Sclose);
  HDF5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, counts, nullptr));
  H5Handle memory_space(HDF5_CHECK(H5Screate_simple(rank, counts, nullptr)), H5Sclose);
  HDF5_CHECK(H5Dwrite(dataset, H5T_NATIVE_UINT8, memory_space, file_space, H5P_DEFAULT, data));
}

void DatasetWriter::write(const std::string& split, int64_t first, int64_t count, const uint8_t* data) {
  auto found = datasets_.find(split);
  ST_CHECK(found != datasets_.end(), "split '" + split + "' was not created");
  bool examples = example_bytes_ > 0;
  write_rows(found->second, examples ? 2 : 1, first, count, examples ? example_bytes_ : 1, data);
}

void DatasetWriter::write_labels(const std::string& split, int64_t first, int64_t count,
                                 const uint8_t* labels) {
  auto found = datasets_.find(split + format::kLabelsSuffix);
  ST_CHECK(found != datasets_.end(), "labels of split '" + split + "' were not created");
  write_rows(found->second, 1, first, count, 1, labels);
}

void DatasetWriter::commit() {
  datasets_.clear();
  // Closing flushes: a full disk shows up here, before the rename.
  hid_t file = file_.id;
  file_.id = -1;
  HDF5_CHECK(H5Fclose(file));
  replace_file_durably(temp_path_, path_);
  committed_ = true;
}

}  // namespace st
