#pragma once
// Binds a checkpoint's tensors (official DeepSeek-V4 names) to the forward pass's parameters, checking
// every dtype and shape against the config.
#include <mnemo/base/status.h>
#include <mnemo/inference/weights.h>

#include "v4_dims.h"
#include "v4_params.h"

namespace mnemo::inference::v4 {

Result<ModelParams> bind_params(const Dims& dims, const Weights& weights);

}  // namespace mnemo::inference::v4
