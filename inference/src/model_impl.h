#pragma once
// Private state behind Model and Sequence, shared by model.cc and kv_state.cc.
#include <mnemo/inference/model.h>
#include <mnemo/inference/weights.h>

#include <memory>
#include <string>

#include "v4_model.h"

namespace mnemo::inference {

// How the forward pass of a model loaded at `p` rounds.
inline v4::Numerics numerics_of(Precision p) {
  return p == Precision::kServing ? v4::Numerics::kServing
         : p == Precision::kBf16  ? v4::Numerics::kBf16
                                  : v4::Numerics::kF32;
}

struct Sequence::Impl {
  v4::SequenceState state;
};

struct Model::Impl {
  ModelConfig config;
  Weights weights;
  std::unique_ptr<v4::Model> model;
  Precision precision = Precision::kF32;
  std::string fingerprint;  // hex SHA-256
  std::string dir;
};

}  // namespace mnemo::inference
