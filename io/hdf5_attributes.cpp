#include "io/hdf5_attributes.h"

#include "core/hdf5_check.h"
#include "io/hdf5_handle.h"

namespace st {

static H5Handle string_type() {
  H5Handle type(HDF5_CHECK(H5Tcopy(H5T_C_S1)), H5Tclose);
  HDF5_CHECK(H5Tset_size(type, H5T_VARIABLE));
  HDF5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8));
  return type;
}

static void write_attribute(hid_t object, const char* name, hid_t file_type, hid_t memory_type,
                            hid_t space, const void* data) {
  H5Handle attribute(HDF5_CHECK(H5Acreate2(object, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT)),
                     H5Aclose);
  HDF5_CHECK(H5Awrite(attribute, memory_type, data));
}

void write_int_attribute(hid_t object, const char* name, int64_t value) {
  H5Handle space(HDF5_CHECK(H5Screate(H5S_SCALAR)), H5Sclose);
  write_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space, &value);
}

void write_ints_attribute(hid_t object, const char* name, const std::vector<int64_t>& values) {
  hsize_t count = values.size();
  H5Handle space(HDF5_CHECK(H5Screate_simple(1, &count, nullptr)), H5Sclose);
  write_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space, values.data());
}

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  H5Handle type = string_type();
  H5Handle space(HDF5_CHECK(H5Screate(H5S_SCALAR)), H5Sclose);
  const char* text = value.c_str();
  write_attribute(object, name, type, type, space, &text);
}

void write_strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
  H5Handle type = string_type();
  hsize_t count = values.size();
  H5Handle space(HDF5_CHECK(H5Screate_simple(1, &count, nullptr)), H5Sclose);
  std::vector<const char*> texts;
  for (const auto& value : values) texts.push_back(value.c_str());
  write_attribute(object, name, type, type, space, texts.data());
}

bool has_attribute(hid_t object, const char* name) {
  return HDF5_CHECK(H5Aexists(object, name)) > 0;
}

static H5Handle open_attribute(hid_t object, const char* name) {
  ST_CHECK(has_attribute(object, name), std::string("attribute '") + name + "' is missing");
  return H5Handle(HDF5_CHECK(H5Aopen(object, name, H5P_DEFAULT)), H5Aclose);
}

static int64_t element_count(hid_t attribute) {
  H5Handle space(HDF5_CHECK(H5Aget_space(attribute)), H5Sclose);
  return HDF5_CHECK(H5Sget_simple_extent_npoints(space));
}

std::vector<int64_t> read_ints_attribute(hid_t object, const char* name) {
  H5Handle attribute = open_attribute(object, name);
  H5Handle type(HDF5_CHECK(H5Aget_type(attribute)), H5Tclose);
  ST_CHECK(H5Tget_class(type) == H5T_INTEGER,
           std::string("attribute '") + name + "' is not an integer");
  std::vector<int64_t> values(element_count(attribute));
  HDF5_CHECK(H5Aread(attribute, H5T_NATIVE_INT64, values.data()));
  return values;
}

int64_t read_int_attribute(hid_t object, const char* name) {
  std::vector<int64_t> values = read_ints_attribute(object, name);
  ST_CHECK(values.size() == 1, std::string("attribute '") + name + "' is not a single integer");
  return values[0];
}

std::vector<std::string> read_strings_attribute(hid_t object, const char* name) {
  H5Handle attribute = open_attribute(object, name);
  H5Handle type(HDF5_CHECK(H5Aget_type(attribute)), H5Tclose);
  ST_CHECK(H5Tget_class(type) == H5T_STRING,
           std::string("attribute '") + name + "' is not a string");
  int64_t count = element_count(attribute);
  std::vector<std::string> values;
  if (HDF5_CHECK(H5Tis_variable_str(type)) > 0) {
    H5Handle memory = string_type();
    std::vector<char*> texts(count);
    HDF5_CHECK(H5Aread(attribute, memory, texts.data()));
    for (char* text : texts) values.emplace_back(text ? text : "");
    H5Handle space(HDF5_CHECK(H5Aget_space(attribute)), H5Sclose);
    HDF5_CHECK(H5Dvlen_reclaim(memory, space, H5P_DEFAULT, texts.data()));
  } else {
    // Fixed-length strings, as other tools may write them.
    size_t size = H5Tget_size(type);
    std::vector<char> buffer(size * count);
    HDF5_CHECK(H5Aread(attribute, type, buffer.data()));
    for (int64_t i = 0; i < count; ++i) {
      std::string text(buffer.data() + i * size, size);
      values.push_back(text.substr(0, text.find('\0')));
    }
  }
  return values;
}

std::string read_string_attribute(hid_t object, const char* name) {
  std::vector<std::string> values = read_strings_attribute(object, name);
  ST_CHECK(values.size() == 1, std::string("attribute '") + name + "' is not a single string");
  return values[0];
}

}  // namespace st
