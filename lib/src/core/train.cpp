#include <bagnet/error.h>
#include <bagnet/train.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <unordered_map>

namespace bagnet {
namespace {

using nlohmann::json;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Everything random in epoch e comes from this generator, so epochs can be replayed alone.
at::Generator epoch_generator(uint64_t seed, int64_t epoch) {
  return at::make_generator<at::CPUGeneratorImpl>(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch + 1)));
}

double learning_rate(const TrainOptions& o, int64_t step, int64_t steps_per_epoch) {
  const double epoch = double(step) / double(steps_per_epoch);
  if (o.warmup_epochs > 0 && epoch < double(o.warmup_epochs))
    return o.lr * double(step + 1) / double(o.warmup_epochs * steps_per_epoch);
  switch (o.schedule) {
    case LrSchedule::Constant: return o.lr;
    case LrSchedule::Step: return o.lr * std::pow(o.step_gamma, std::floor(epoch / double(o.step_epochs)));
    case LrSchedule::Cosine: {
      const double start = double(o.warmup_epochs * steps_per_epoch);
      const double total = double(o.epochs * steps_per_epoch) - start;
      const double t = total > 0 ? (double(step) - start) / total : 1.0;
      return o.lr * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, std::max(0.0, t))));
    }
  }
  return o.lr;
}

// Random translation (borders filled with `fill`) and horizontal flips, per example.
torch::Tensor augment(const torch::Tensor& x, const TrainOptions& o, at::Generator& gen) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), s = o.augment_shift;
  torch::Tensor out = x;
  if (s > 0) {
    const auto shifts = torch::randint(-s, s + 1, {n, 2}, gen, torch::kLong);
    torch::Tensor padded = torch::empty({n, c, h + 2 * s, w + 2 * s}, x.options());
    for (int64_t ch = 0; ch < c; ++ch)
      padded.select(1, ch).fill_(o.fill.empty() ? 0.0f : o.fill[static_cast<size_t>(ch)]);
    padded.narrow(2, s, h).narrow(3, s, w).copy_(x);
    out = torch::empty_like(x);
    const auto* sh = shifts.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      out[i].copy_(padded[i].narrow(1, s + sh[2 * i], h).narrow(2, s + sh[2 * i + 1], w));
  }
  if (o.augment_flip) {
    const auto flips = torch::randint(0, 2, {n}, gen, torch::kLong);
    const auto* f = flips.data_ptr<int64_t>();
    if (out.is_same(x)) out = x.clone();
    for (int64_t i = 0; i < n; ++i)
      if (f[i]) out[i].copy_(out[i].flip({2}));
  }
  return out;
}

// SGD with momentum / Adam with the semantics of torch.optim (L2 weight decay added to the
// gradient), written out so that the state is plain tensors that a checkpoint can hold.
class Optimizer {
 public:
  Optimizer(const TrainOptions& o, std::vector<std::pair<std::string, torch::Tensor>> params) : o_(o), params_(std::move(params)) {
    for (auto& [name, p] : params_) {
      first_.push_back(torch::zeros_like(p));
      if (o.optimizer == OptimizerKind::Adam) second_.push_back(torch::zeros_like(p));
    }
  }
  void step(double lr) {
    torch::NoGradGuard no_grad;
    ++steps_;
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i].second;
      if (!p.grad().defined()) continue;
      torch::Tensor g = p.grad();
      if (o_.weight_decay != 0) g = g.add(p, o_.weight_decay);
      if (o_.optimizer == OptimizerKind::Sgd) {
        torch::Tensor& buf = first_[i];
        if (o_.momentum != 0) {
          buf.mul_(o_.momentum).add_(g);
          g = o_.nesterov ? g.add(buf, o_.momentum) : buf;
        }
        p.add_(g, -lr);
      } else {
        torch::Tensor &m = first_[i], &v = second_[i];
        m.mul_(o_.beta1).add_(g, 1 - o_.beta1);
        v.mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
        const double c1 = 1 - std::pow(o_.beta1, double(steps_)), c2 = 1 - std::pow(o_.beta2, double(steps_));
        const torch::Tensor denom = (v / c2).sqrt_().add_(o_.eps);
        p.addcdiv_(m, denom, -lr / c1);
      }
    }
  }
  StateDict state() const {
    StateDict out;
    for (size_t i = 0; i < params_.size(); ++i) {
      out.emplace_back("first." + params_[i].first, first_[i]);
      if (!second_.empty()) out.emplace_back("second." + params_[i].first, second_[i]);
    }
    return out;
  }
  void restore(const StateDict& state, int64_t steps, const std::string& what) {
    std::unordered_map<std::string, const torch::Tensor*> by_name;
    for (const auto& [name, t] : state) by_name[name] = &t;
    auto take = [&](const std::string& name, torch::Tensor& into) {
      const auto it = by_name.find(name);
      BAGNET_CHECK(it != by_name.end() && it->second->sizes() == into.sizes(), ErrorKind::BadInput, what,
                   ": optimizer state '", name, "' missing or of the wrong shape");
      torch::NoGradGuard no_grad;
      into.copy_(*it->second);
    };
    for (size_t i = 0; i < params_.size(); ++i) {
      take("first." + params_[i].first, first_[i]);
      if (!second_.empty()) take("second." + params_[i].first, second_[i]);
    }
    steps_ = steps;
  }
  int64_t steps() const { return steps_; }

 private:
  const TrainOptions& o_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> first_, second_;
  int64_t steps_ = 0;
};

json epoch_json(const EpochStats& s) {
  json j = {{"epoch", s.epoch}, {"lr", s.lr}, {"train_loss", s.train_loss}, {"train_top1", s.train_top1},
            {"seconds", s.seconds}};
  if (!std::isnan(s.val_top1)) {
    j["val_loss"] = s.val_loss;
    j["val_top1"] = s.val_top1;
    j["val_top5"] = s.val_top5;
  }
  return j;
}

EpochStats epoch_from_json(const json& j) {
  EpochStats s;
  s.epoch = j.at("epoch").get<int64_t>();
  s.lr = j.at("lr").get<double>();
  s.train_loss = j.at("train_loss").get<double>();
  s.train_top1 = j.at("train_top1").get<double>();
  s.seconds = j.at("seconds").get<double>();
  if (j.contains("val_top1")) {
    s.val_loss = j.at("val_loss").get<double>();
    s.val_top1 = j.at("val_top1").get<double>();
    s.val_top5 = j.at("val_top5").get<double>();
  }
  return s;
}

void check_labels(const ExampleSource& data, int64_t classes, const char* what) {
  for (int64_t i = 0; i < data.size(); ++i) {
    const int64_t l = data.label(i);
    BAGNET_CHECK(l >= 0, ErrorKind::BadInput, what, " example ", data.source(i), " has no label");
    BAGNET_CHECK(l < classes, ErrorKind::BadInput, what, " example ", data.source(i), " has label ", l,
                 ", but the model has ", classes, " classes");
  }
}

torch::Tensor labels_of(const ExampleSource& data, const std::vector<int64_t>& indices) {
  std::vector<int64_t> labels;
  labels.reserve(indices.size());
  for (int64_t i : indices) labels.push_back(data.label(i));
  return torch::tensor(labels, torch::kLong);
}

}  // namespace

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::Sgd;
  if (name == "adam") return OptimizerKind::Adam;
  fail(ErrorKind::InvalidArgument, "optimizer must be sgd or adam, got '", name, "'");
}

LrSchedule parse_schedule(const std::string& name) {
  if (name == "constant") return LrSchedule::Constant;
  if (name == "cosine") return LrSchedule::Cosine;
  if (name == "step") return LrSchedule::Step;
  fail(ErrorKind::InvalidArgument, "schedule must be constant, cosine or step, got '", name, "'");
}

const char* optimizer_name(OptimizerKind kind) { return kind == OptimizerKind::Sgd ? "sgd" : "adam"; }

const char* schedule_name(LrSchedule s) {
  return s == LrSchedule::Constant ? "constant" : s == LrSchedule::Cosine ? "cosine" : "step";
}

std::string recipe_json(const TrainOptions& o, int64_t train_size) {
  json j = {{"epochs", o.epochs}, {"batch_size", o.batch_size}, {"optimizer", optimizer_name(o.optimizer)},
            {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"schedule", schedule_name(o.schedule)},
            {"warmup_epochs", o.warmup_epochs}, {"augment_shift", o.augment_shift},
            {"augment_flip", o.augment_flip}, {"head_only", o.head_only}, {"seed", o.seed},
            {"train_examples", train_size}};
  if (o.optimizer == OptimizerKind::Sgd) {
    j["momentum"] = o.momentum;
    j["nesterov"] = o.nesterov;
  } else {
    j["betas"] = {o.beta1, o.beta2};
    j["eps"] = o.eps;
  }
  if (o.schedule == LrSchedule::Step) {
    j["step_epochs"] = o.step_epochs;
    j["step_gamma"] = o.step_gamma;
  }
  return j.dump();
}

void init_weights(BagNet& net, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (const auto& item : net->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    const bool bn = name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos;
    if (name.rfind("fc.", 0) == 0) {
      if (p.dim() == 2) {
        const double bound = 1.0 / std::sqrt(double(p.size(1)));
        p.uniform_(-bound, bound);
      } else {
        p.zero_();
      }
    } else if (bn) {
      const bool last = name.find(".bn3.") != std::string::npos;
      if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) p.fill_(last ? 0.0 : 1.0);
      else p.zero_();
    } else {
      torch::nn::init::kaiming_normal_(p, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
  for (const auto& item : net->named_buffers()) {
    const std::string& name = item.key();
    torch::Tensor b = item.value();
    if (name.find("running_var") != std::string::npos) b.fill_(1);
    else b.zero_();
  }
}

void load_backbone(BagNet& net, const StateDict& weights, bool keep_head) {
  if (keep_head) {
    load_state_dict(net, weights);
    return;
  }
  StateDict body;
  for (const auto& item : weights)
    if (item.first.rfind("fc.", 0) != 0) body.push_back(item);
  StateDict head;
  for (const auto& item : net->named_parameters())
    if (item.key().rfind("fc.", 0) == 0) head.emplace_back(item.key(), item.value().detach().clone());
  body.insert(body.end(), head.begin(), head.end());
  load_state_dict(net, body);
}

EvalResult evaluate_model(BagNet& net, const ExampleSource& data, const EvalOptions& options) {
  BAGNET_CHECK(options.batch_size >= 1, ErrorKind::InvalidArgument, "batch size must be >= 1");
  const int64_t k = net->arch().num_classes, n = data.size();
  BAGNET_CHECK(n > 0, ErrorKind::BadInput, "no examples to evaluate");
  check_labels(data, k, "evaluation");
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  EvalResult r;
  r.count = n;
  r.confusion = torch::zeros({k, k}, torch::kLong);
  auto* confusion = r.confusion.data_ptr<int64_t>();
  int64_t hits1 = 0, hits5 = 0;
  double loss = 0;
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<int64_t> idx;
    for (int64_t i = b * options.batch_size; i < std::min(n, (b + 1) * options.batch_size); ++i) idx.push_back(i);
    const torch::Tensor labels = labels_of(data, idx);
    const torch::Tensor logits = net->forward(data.images(idx).to(options.device)).to(torch::kCPU);
    loss += torch::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum).item<double>();
    const torch::Tensor top = std::get<1>(logits.topk(std::min<int64_t>(5, k), 1)).contiguous();
    const auto* t = top.data_ptr<int64_t>();
    const auto* l = labels.data_ptr<int64_t>();
    const torch::Tensor c = logits.contiguous();
    const auto* lg = c.data_ptr<float>();
    for (size_t i = 0; i < idx.size(); ++i) {
      EvalSample s;
      s.label = l[i];
      s.predicted = t[i * top.size(1)];
      s.label_logit = lg[i * k + s.label];
      s.predicted_logit = lg[i * k + s.predicted];
      for (int64_t j = 0; j < top.size(1); ++j) s.in_top5 = s.in_top5 || t[i * top.size(1) + j] == s.label;
      hits1 += s.predicted == s.label;
      hits5 += s.in_top5;
      ++confusion[s.label * k + s.predicted];
      r.samples.push_back(s);
    }
    if (options.on_progress) options.on_progress({b + 1, batches, "evaluating"});
  }
  r.top1 = double(hits1) / double(n);
  r.top5 = double(hits5) / double(n);
  r.loss = loss / double(n);
  if (was_training) net->train();
  return r;
}

TrainResult train_model(BagNet& net, const ExampleSource& train, const ExampleSource* validation,
                        const TrainOptions& o, const std::string& resume_from) {
  BAGNET_CHECK(o.epochs >= 1, ErrorKind::InvalidArgument, "epochs must be >= 1, got ", o.epochs);
  BAGNET_CHECK(o.batch_size >= 1, ErrorKind::InvalidArgument, "batch size must be >= 1, got ", o.batch_size);
  BAGNET_CHECK(o.lr > 0, ErrorKind::InvalidArgument, "learning rate must be > 0, got ", o.lr);
  BAGNET_CHECK(o.augment_shift >= 0, ErrorKind::InvalidArgument, "augmentation shift must be >= 0");
  BAGNET_CHECK(o.warmup_epochs >= 0 && o.warmup_epochs < o.epochs, ErrorKind::InvalidArgument,
               "warm-up epochs must be in [0, epochs)");
  BAGNET_CHECK(o.step_epochs >= 1, ErrorKind::InvalidArgument, "step epochs must be >= 1");
  BAGNET_CHECK(o.fill.empty() || static_cast<int64_t>(o.fill.size()) == net->arch().in_channels,
               ErrorKind::InvalidArgument, "fill needs one value per input channel");
  const int64_t n = train.size();
  BAGNET_CHECK(n >= 1, ErrorKind::BadInput, "no training examples");
  const int64_t k = net->arch().num_classes;
  check_labels(train, k, "training");
  if (validation) check_labels(*validation, k, "validation");

  net->to(o.device);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& item : net->named_parameters()) {
    const bool trainable = !o.head_only || item.key().rfind("fc.", 0) == 0;
    item.value().set_requires_grad(trainable);
    if (trainable) params.emplace_back(item.key(), item.value());
  }
  Optimizer optimizer(o, params);
  const std::string recipe = recipe_json(o, n);
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;

  TrainResult result;
  if (!resume_from.empty()) {
    Checkpoint ckpt = read_checkpoint(resume_from);
    const auto meta = model_meta(ckpt, resume_from);
    BAGNET_CHECK(meta && !meta->resume.empty(), ErrorKind::BadInput, resume_from,
                 ": not a training checkpoint of bagnet train (no resume state)");
    BAGNET_CHECK(meta->arch == net->arch(), ErrorKind::InvalidArgument, resume_from, ": checkpoint of architecture ",
                 arch_to_spec(meta->arch), ", but training ", arch_to_spec(net->arch()));
    const json state = json::parse(meta->resume);
    const json saved = state.at("recipe"), now = json::parse(recipe);
    for (const auto& [key, value] : now.items())
      BAGNET_CHECK(saved.contains(key) && saved.at(key) == value, ErrorKind::InvalidArgument, resume_from,
                   ": the checkpoint was trained with ", key, " = ", saved.contains(key) ? saved.at(key).dump() : "(unset)",
                   ", this run has ", value.dump(), "; resume with the same options");
    load_state_dict(net, ckpt.tensors);
    StateDict opt_state;
    for (auto& [name, dict] : ckpt.other_tensors)
      if (name == "training_state") opt_state = std::move(dict);
    optimizer.restore(opt_state, state.at("optimizer_steps").get<int64_t>(), resume_from);
    for (const auto& e : state.at("history")) result.history.push_back(epoch_from_json(e));
    result.resumed_epochs = static_cast<int64_t>(result.history.size());
  }

  for (int64_t epoch = result.resumed_epochs; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    at::Generator gen = epoch_generator(o.seed, epoch);
    const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    const auto* perm = order.data_ptr<int64_t>();
    if (o.head_only) net->eval();
    else net->train();
    double loss_sum = 0, correct = 0, seen = 0, lr = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * o.batch_size, end = std::min(n, begin + o.batch_size);
      const std::vector<int64_t> idx(perm + begin, perm + end);
      const torch::Tensor labels = labels_of(train, idx).to(o.device);
      const torch::Tensor x = augment(train.images(idx), o, gen).to(o.device);
      lr = learning_rate(o, epoch * batches + b, batches);
      for (auto& p : params)
        if (p.second.grad().defined()) p.second.mutable_grad().zero_();
      const torch::Tensor logits = net->forward(x);
      const torch::Tensor loss = torch::cross_entropy_loss(logits, labels);
      loss.backward();
      optimizer.step(lr);
      const double count = double(idx.size());
      loss_sum += loss.item<double>() * count;
      correct += logits.argmax(1).eq(labels).sum().item<double>();
      seen += count;
      if (o.on_progress) o.on_progress({epoch + 1, o.epochs, b + 1, batches, loss_sum / seen, correct / seen, lr});
    }
    EpochStats stats;
    stats.epoch = epoch + 1;
    stats.lr = lr;
    stats.train_loss = loss_sum / seen;
    stats.train_top1 = correct / seen;
    if (validation) {
      EvalOptions eval;
      eval.device = o.device;
      eval.batch_size = std::max<int64_t>(o.batch_size, 256);
      eval.on_progress = o.on_validation_progress;
      const EvalResult v = evaluate_model(net, *validation, eval);
      stats.val_loss = v.loss;
      stats.val_top1 = v.top1;
      stats.val_top5 = v.top5;
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(stats);
    if (!o.checkpoint_path.empty()) {
      ModelMeta meta = o.checkpoint_meta;
      meta.arch = net->arch();
      json history = json::array();
      for (const auto& h : result.history) history.push_back(epoch_json(h));
      meta.resume = json{{"epochs_done", epoch + 1}, {"optimizer_steps", optimizer.steps()},
                         {"recipe", json::parse(recipe)}, {"history", history}}.dump();
      save_model_file(o.checkpoint_path, state_dict_of(net), meta, optimizer.state());
    }
    if (o.on_epoch) o.on_epoch(stats);
  }
  for (auto& p : params) p.second.mutable_grad() = torch::Tensor();
  for (const auto& item : net->named_parameters()) item.value().set_requires_grad(true);
  net->eval();
  return result;
}


}  // namespace bagnet
