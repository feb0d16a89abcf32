#pragma once
// The compact at-rest codec: a segment blob's entries and indexer keys quantised in groups with
// bf16 scales, then entropy-coded by zstd. Decoding gives a segment blob of the same model and
// shape.
#include <string>
#include <string_view>

#include <mnemo/base/status.h>
#include <mnemo/inference/model.h>
#include <mnemo/memory/snapshot.h>

namespace mnemo::memory {

Result<std::string> compact_encode(const inference::Model& model, std::string_view segment,
                                   const CompactParams& p);
Result<std::string> compact_decode(const inference::Model& model, std::string_view compact);

}  // namespace mnemo::memory
