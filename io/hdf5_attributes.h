// Reading and writing the few attribute types the dataset layout uses.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace st {

void write_int_attribute(hid_t object, const char* name, int64_t value);
void write_string_attribute(hid_t object, const char* name, const std::string& value);
void write_ints_attribute(hid_t object, const char* name, const std::vector<int64_t>& values);
void write_strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values);

bool has_attribute(hid_t object, const char* name);
// These throw st::Error when the attribute is missing or of another type.
int64_t read_int_attribute(hid_t object, const char* name);
std::string read_string_attribute(hid_t object, const char* name);
std::vector<int64_t> read_ints_attribute(hid_t object, const char* name);
std::vector<std::string> read_strings_attribute(hid_t object, const char* name);

}  // namespace st
