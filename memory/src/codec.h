#pragma once
// Binary encoding of the store's keys and values (base/binary.h): little-endian fields,
// length-prefixed strings, and big-endian integers inside keys so that RocksDB's byte order is numeric.
#include <mnemo/base/binary.h>

namespace mnemo::memory {

using Writer = BinaryWriter;
using Reader = BinaryReader;
using mnemo::get_be64;
using mnemo::put_be64;

}  // namespace mnemo::memory
