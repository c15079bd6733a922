#pragma once
// Training and evaluation of BagNets (core, LibTorch only). The loop is deterministic for a given
// seed and thread count: the shuffle order and the augmentation of epoch e are drawn from a
// generator seeded with (seed, e), so an interrupted run resumed from its last per-epoch checkpoint
// ends with the same weights as an uninterrupted one.
//
//   bagnet::BagNet net(bagnet::parse_arch("bagnet9:in=1,classes=10,strides=2-1-1-1"));
//   bagnet::init_weights(net, 1);
//   bagnet::TrainOptions opt;  opt.epochs = 5;  opt.checkpoint_path = "run.ckpt";  opt.checkpoint_meta = meta;
//   bagnet::TrainResult r = bagnet::train_model(net, train_source, &val_source, opt);
//   bagnet::EvalResult e = bagnet::evaluate_model(net, test_source);   // e.top1, e.confusion
#include <bagnet/evidence.h>
#include <bagnet/examples.h>
#include <bagnet/model.h>
#include <bagnet/model_file.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace bagnet {

enum class OptimizerKind { Sgd, Adam };
enum class LrSchedule { Constant, Cosine, Step };
OptimizerKind parse_optimizer(const std::string& name);  // "sgd" | "adam"
LrSchedule parse_schedule(const std::string& name);      // "constant" | "cosine" | "step"
const char* optimizer_name(OptimizerKind kind);
const char* schedule_name(LrSchedule schedule);

struct TrainProgress {
  int64_t epoch = 0, epochs = 0;      // 1-based epoch
  int64_t batch = 0, batches = 0;     // batches done in this epoch / in all
  double loss = 0, top1 = 0;          // running means over this epoch's batches
  double lr = 0;
};

struct EpochStats {
  int64_t epoch = 0;                  // 1-based
  double lr = 0;                      // learning rate at the end of the epoch
  double train_loss = 0, train_top1 = 0;  // running means while training (augmented, train mode)
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_top1 = std::numeric_limits<double>::quiet_NaN();
  double val_top5 = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;                 // wall time of the epoch, validation included
};

struct TrainOptions {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  OptimizerKind optimizer = OptimizerKind::Sgd;
  double lr = 0.05;                   // peak learning rate
  double momentum = 0.9;              // SGD
  bool nesterov = false;              // SGD
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam
  double weight_decay = 5e-4;         // L2, added to the gradient (as torch.optim.SGD/Adam do)
  LrSchedule schedule = LrSchedule::Cosine;  // per step; cosine decays to 0 at the last step
  int64_t warmup_epochs = 0;          // linear warm-up from 0 before the schedule
  int64_t step_epochs = 30;           // Step: multiply by step_gamma every step_epochs
  double step_gamma = 0.1;
  int64_t augment_shift = 0;          // random translation by up to this many pixels (borders filled)
  bool augment_flip = false;          // random horizontal flips
  std::vector<float> fill;            // per-channel normalised value of a black pixel; empty: 0
  bool head_only = false;             // fine-tuning: update only the classifier, BatchNorm frozen
  uint64_t seed = 0;
  std::string checkpoint_path;        // written atomically after every epoch; "" = none
  ModelMeta checkpoint_meta;          // arch/classes/input/provenance stored in each checkpoint
  torch::Device device = torch::kCPU;
  std::function<void(const TrainProgress&)> on_progress;  // after every batch
  std::function<void(const EpochStats&)> on_epoch;        // after every epoch (checkpoint written)
  ProgressCallback on_validation_progress;
};

struct TrainResult {
  std::vector<EpochStats> history;    // all epochs, restored ones included
  int64_t resumed_epochs = 0;         // epochs taken from the checkpoint when resuming
};

// Trains `net` in place on `train` (every example must be labelled), validating on `validation`
// (may be null) after each epoch. With `resume_from`, the weights, optimizer state and history are
// restored from a checkpoint written by an earlier call with the same options and training only
// continues after its last epoch. Throws Error(InvalidArgument) for bad options or a checkpoint of
// another recipe, Error(BadInput) for unlabelled examples or labels out of range.
TrainResult train_model(BagNet& net, const ExampleSource& train, const ExampleSource* validation,
                        const TrainOptions& options, const std::string& resume_from = "");

// The recipe of `options` as JSON (what must match for --resume).
std::string recipe_json(const TrainOptions& options, int64_t train_size);

// Fresh weights for training from scratch: He-normal convolutions (fan-out), BatchNorm 1/0 with the
// last BatchNorm of every block zeroed (each block starts as its shortcut), classifier uniform
// +-1/sqrt(fan-in), bias 0. Deterministic for a seed.
void init_weights(BagNet& net, uint64_t seed);

// Copies a checkpoint's tensors into `net` for fine-tuning. With keep_head = false the classifier
// (fc.*) is left as it is (a new head, e.g. for another number of classes); everything else must
// match strictly (see load_state_dict).
void load_backbone(BagNet& net, const StateDict& weights, bool keep_head);

struct EvalOptions {
  int64_t batch_size = 256;
  torch::Device device = torch::kCPU;
  ProgressCallback on_progress;       // after every batch
};

struct EvalSample {
  int64_t label = -1, predicted = -1;
  float label_logit = 0, predicted_logit = 0;  // image logits of the true and the predicted class
  bool in_top5 = false;
};

struct EvalResult {
  int64_t count = 0;                  // labelled examples evaluated
  double top1 = 0, top5 = 0;          // fractions
  double loss = 0;                    // mean cross-entropy
  torch::Tensor confusion;            // [K, K] int64: row = true class, column = predicted class
  std::vector<EvalSample> samples;    // one per example, in order
};

// Evaluates `net` (in eval mode) on every example; all must be labelled. top-5 counts a hit when
// the label is among the min(5, K) highest logits.
EvalResult evaluate_model(BagNet& net, const ExampleSource& data, const EvalOptions& options = {});

}  // namespace bagnet
