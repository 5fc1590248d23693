#include "io/checkpoint_file.h"

#include <filesystem>

#include "core/hdf5_check.h"
#include "io/atomic_file.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"

namespace st {

static void write_array(hid_t file, hid_t link_props, const NamedArray& array) {
  std::vector<hsize_t> dims(array.shape.begin(), array.shape.end());
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  ST_CHECK(count == array.values.size(), array.name + ": shape and value count differ");
  H5Handle space(HDF5_CHECK(H5Screate_simple(int(dims.size()), dims.data(), nullptr)), H5Sclose);
  H5Handle set(HDF5_CHECK(H5Dcreate2(file, array.name.c_str(), H5T_IEEE_F32LE, space, link_props,
                                     H5P_DEFAULT, H5P_DEFAULT)),
               H5Dclose);
  HDF5_CHECK(H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, array.values.data()));
}

void write_checkpoint_file(const std::string& path, const CheckpointData& data) {
  hdf5_silence_errors();
  const std::string temp = path + ".tmp";
  try {
    {
      H5Handle file(HDF5_CHECK(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)),
                    H5Fclose);
      H5Handle link_props(HDF5_CHECK(H5Pcreate(H5P_LINK_CREATE)), H5Pclose);
      HDF5_CHECK(H5Pset_create_intermediate_group(link_props, 1));
      write_int_attribute(file, "checkpoint_format", kCheckpointFormat);
      for (const auto& [name, value] : data.attributes)
        write_string_attribute(file, name.c_str(), value);
      for (const NamedArray& array : data.arrays) write_array(file, link_props, array);
      HDF5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
    }
    replace_file_durably(temp, path);
  } catch (const Error& e) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw Error(path + ": writing the checkpoint failed: " + e.what());
  }
}

struct ReadContext {
  std::vector<NamedArray>* arrays;
  std::string prefix;
  std::string error;  // exceptions must not cross HDF5's C frames
};

static void read_array(hid_t group, const char* name, ReadContext& context) {
  NamedArray array;
  array.name = context.prefix + "/" + name;
  H5Handle set(HDF5_CHECK(H5Dopen2(group, name, H5P_DEFAULT)), H5Dclose);
  H5Handle space(HDF5_CHECK(H5Dget_space(set)), H5Sclose);
  int rank = HDF5_CHECK(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(rank);
  HDF5_CHECK(H5Sget_simple_extent_dims(space, dims.data(), nullptr));
  size_t count = 1;
  for (hsize_t d : dims) array.shape.push_back(int64_t(d)), count *= d;
  array.values.resize(count);
  HDF5_CHECK(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, array.values.data()));
  context.arrays->push_back(std::move(array));
}

// A link-iteration callback (H5L_info_t and H5Literate map to the right
// versions on HDF5 1.10 and 1.12+ alike); every member of a group is an array.
static herr_t read_member(hid_t group, const char* name, const H5L_info_t*, void* out) {
  auto* context = static_cast<ReadContext*>(out);
  try {
    read_array(group, name, *context);
    return 0;
  } catch (const Error& e) {
    context->error = e.what();
    return -1;
  }
}

static herr_t read_attribute_name(hid_t object, const char* name, const H5A_info_t*, void* out) {
  auto* names = static_cast<std::vector<std::string>*>(out);
  names->push_back(name);
  return 0;
}

CheckpointData read_checkpoint_file(const std::string& path,
                                    const std::vector<std::string>& groups) {
  hdf5_silence_errors();
  CheckpointData data;
  try {
    ST_CHECK(std::filesystem::exists(path), "no such file");
    ST_CHECK(H5Fis_hdf5(path.c_str()) > 0, "not an HDF5 file");
    H5Handle file(HDF5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose);
    ST_CHECK(has_attribute(file, "checkpoint_format"), "not a checkpoint (no checkpoint_format attribute)");
    int64_t format = read_int_attribute(file, "checkpoint_format");
    ST_CHECK(format == kCheckpointFormat,
             "checkpoint format " + std::to_string(format) + " is not known to this version (" +
                 std::to_string(kCheckpointFormat) + ")");
    std::vector<std::string> names;
    HDF5_CHECK(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, nullptr, read_attribute_name, &names));
    for (const std::string& name : names)
      if (name != "checkpoint_format") data.attributes[name] = read_string_attribute(file, name.c_str());
    for (const std::string& group : groups) {
      ST_CHECK(HDF5_CHECK(H5Lexists(file, group.c_str(), H5P_DEFAULT)) > 0,
               "the group '" + group + "' is missing");
      H5Handle handle(HDF5_CHECK(H5Gopen2(file, group.c_str(), H5P_DEFAULT)), H5Gclose);
      ReadContext context{&data.arrays, group, ""};
      herr_t rc = H5Literate(handle, H5_INDEX_NAME, H5_ITER_INC, nullptr, read_member, &context);
      ST_CHECK(context.error.empty(), context.error);
      HDF5_CHECK(rc);
    }
  } catch (const Error& e) {
    throw Error(path + ": cannot read the checkpoint: " + e.what());
  }
  return data;
}

}  // namespace st
