#pragma once
// bagnet-lens core: run official BagNets from their checkpoints and read exact patch evidence.
//
//   #include <bagnet/bagnet.h>
//   bagnet::configure_runtime(2);                                    // threads; TF32 off
//   bagnet::LoadedModel m = bagnet::load_model("bagnet32-2ddd53ed.pth.tar");
//   torch::Tensor x = ...;                                          // [1, 3, 224, 224] float32, normalised
//   bagnet::EvidenceMap map = bagnet::compute_evidence(m.net, x);   // logits [1, 1000, 24, 24]
//   torch::Tensor logits = map.image_logits();                      // [1, 1000]
//
// Every function throws bagnet::Error (see error.h) and never prints.
#include <bagnet/arch.h>
#include <bagnet/atomic_file.h>
#include <bagnet/checkpoint.h>
#include <bagnet/error.h>
#include <bagnet/evidence.h>
#include <bagnet/labels.h>
#include <bagnet/model.h>
#include <bagnet/npy.h>
#include <bagnet/runtime.h>
#include <bagnet/sha256.h>
