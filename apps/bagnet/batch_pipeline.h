#pragma once
// Dataset runs at the speed of the network: samples are decoded ahead on a few threads (bounded
// queue, input order kept), grouped into batches of one input size, and each batch's network pass
// runs on a pass lane (a thread of its own; several for small inputs) while the calling thread
// hands earlier samples, in input order, to the command's per-sample work. On the CPU an image's
// numbers do not depend on its batch (model.h), so the outputs are the same whatever the batch size.
#include "options.h"
#include "samples.h"

#include <bagnet/image.h>

#include <torch/types.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bagnet::cli {

struct DecodedSample {
  SampleInfo info;
  std::optional<ModelInput> input;  // empty when decoding failed
  std::exception_ptr error;         // why decoding or the sample's pass failed: rethrown inside the
                                    // sample loop, so the message and exit code are those of a run
                                    // one image at a time
};

// Decodes `indices` (in that order) with `decode` on `threads` threads, at most `ahead` samples
// beyond the one the caller is waiting for and, beyond that one, at most `budget_bytes` of decoded
// pixels waiting (large photos keep their decoded original).
class SamplePrefetcher {
 public:
  SamplePrefetcher(const Samples& samples, std::vector<int64_t> indices,
                   std::function<ModelInput(const cv::Mat&)> decode, int threads, int64_t ahead,
                   int64_t budget_bytes = int64_t(256) << 20);
  ~SamplePrefetcher();
  SamplePrefetcher(const SamplePrefetcher&) = delete;
  SamplePrefetcher& operator=(const SamplePrefetcher&) = delete;

  // The next sample in order; nothing after the last.
  std::optional<DecodedSample> next();

 private:
  void work();
  const Samples& samples_;
  const std::vector<int64_t> indices_;
  const std::function<ModelInput(const cv::Mat&)> decode_;
  const int64_t ahead_, budget_bytes_;
  int64_t buffered_bytes_ = 0;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::map<size_t, DecodedSample> decoded_;  // position in indices_ -> sample
  size_t claimed_ = 0, consumed_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// The work of a dataset loop (run_in_batches), by where it runs.
template <typename Output>
struct BatchStages {
  // The network pass: a batch [B, C, H, W] float32 -> B outputs. On a pass lane (PassLanes).
  std::function<std::vector<Output>(const torch::Tensor&)> pass;
  // Per-sample work that needs no order (may be left empty). On the pass lanes when batches of
  // that input size run on several lanes (small inputs, where this thread would otherwise be the
  // narrowest part), else on this thread while the next pass runs. A throw fails that sample only.
  std::function<void(const DecodedSample&, Output&)> prepare;
  // On this thread, in input order: every sample with its output, null exactly when `sample.error`
  // is set.
  std::function<void(DecodedSample&, Output*)> each;
};

// Batch sizing: `requested` images per pass, or with 0 ("auto") a per-device default: on the CPU
// as many as fit in about 50k input pixels (64 Fashion-MNIST images, one 224x224 image: larger CPU
// batches only move activations out of the caches), on CUDA up to 64 images of 224x224.
int64_t batch_size_for(int64_t requested, bool cuda, int64_t height, int64_t width);

// Runs a dataset loop over `indices` of `samples`, each decoded with `prep`, through `stages`:
// batches ahead in their passes while earlier samples are handed to `each`. A batch whose pass
// throws is run again image by image, so that each failure is the image's own.
template <typename Output>
void run_in_batches(const Samples& samples, std::vector<int64_t> indices, const InputSpec& prep,
                    const BatchFlags& batching, const torch::Device& device, const BatchStages<Output>& stages);

}  // namespace bagnet::cli

// Implementation of the template above.
namespace bagnet::cli::detail {

// Up to one batch from `held` onwards: consecutive samples whose inputs have one shape. Failed
// samples ride along (they count toward the size, so a run of failures cannot grow a batch
// without bound).
std::vector<DecodedSample> take_batch(SamplePrefetcher& prefetcher, std::optional<DecodedSample>& held,
                                      int64_t requested, bool cuda);

template <typename Output>
struct Flight {
  std::vector<DecodedSample> batch;
  std::vector<std::optional<Output>> outputs;  // outputs[i] of batch[i]; empty where it has an error
  bool prepared = false;                       // BatchStages::prepare done on the lane
};

// stages.prepare on every sample of `flight` that has an output; a throw fails that sample.
template <typename Output>
void prepare_samples(Flight<Output>& flight, const BatchStages<Output>& stages) {
  if (stages.prepare)
    for (size_t i = 0; i < flight.batch.size(); ++i) {
      if (!flight.outputs[i]) continue;
      try {
        stages.prepare(flight.batch[i], *flight.outputs[i]);
      } catch (...) {
        flight.batch[i].error = std::current_exception();
        flight.outputs[i].reset();
      }
    }
  flight.prepared = true;
}

// A thread that runs network passes, one after another: LibTorch's OpenMP team belongs to the
// thread that starts it, so a new thread per batch would build a new team (and threads) each time.
class PassThread {
 public:
  PassThread();
  ~PassThread();  // passes not yet started are dropped; the one running ends first
  // Runs `job` on the thread; the future is ready when it has run.
  std::future<void> run(std::function<void()> job);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::packaged_task<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// How the passes of a run share the cores (`threads`: the run's --threads). On the CPU, small
// inputs (at most 96x96) run on `threads` lanes of one LibTorch thread each, batches handed out in
// turn, each lane also doing its samples' per-sample work (BatchStages::prepare): a pass over
// tiny images keeps a team of threads poorly busy (Fashion-MNIST `eval`: 1.4x faster on 2
// threads than on 1), and the per-sample work on one calling thread would be the narrowest part
// (`report` 3.5 s with one lane and the per-sample work here, 3.1 s with two lanes doing it; eval
// 2.45 s). Larger inputs, and every input on CUDA, run on one lane with all `threads`. The thread
// count of a pass depends on the input size only, so that an image's numbers (which depend on the
// thread count) do not depend on batching.
class PassLanes {
 public:
  PassLanes(int threads, bool cuda);
  // Lanes for a batch of inputs of this size: its batches may run this many at a time.
  size_t lanes_for(int64_t height, int64_t width) const;
  // The LibTorch thread count of each pass over inputs of this size.
  int threads_for(int64_t height, int64_t width) const;
  // The lane of the next batch of this size.
  PassThread& next(int64_t height, int64_t width);

 private:
  const int threads_;
  const bool cuda_;
  size_t turn_ = 0;
  std::vector<std::unique_ptr<PassThread>> lanes_;  // started when first needed
};

// The input size of a batch's decoded samples; nothing when every sample failed to decode.
std::optional<std::pair<int64_t, int64_t>> input_size(const std::vector<DecodedSample>& batch);

// The pass over the decoded samples `decoded` (inputs `inputs`) of `flight`; on a throw, again
// image by image.
template <typename Output>
void run_pass(Flight<Output>& flight, const std::vector<size_t>& decoded, const std::vector<torch::Tensor>& inputs,
              const std::function<std::vector<Output>(const torch::Tensor&)>& pass) {
  if (inputs.empty()) return;
  try {
    std::vector<Output> outputs = pass(torch::stack(inputs));
    if (outputs.size() == inputs.size()) {
      for (size_t k = 0; k < decoded.size(); ++k) flight.outputs[decoded[k]] = std::move(outputs[k]);
      return;
    }
  } catch (...) {
    if (decoded.size() == 1) {  // the failure is that image's own already
      flight.batch[decoded[0]].error = std::current_exception();
      return;
    }
  }
  for (const size_t i : decoded) {
    DecodedSample& sample = flight.batch[i];
    try {
      flight.outputs[i] = std::move(pass(sample.input->tensor.unsqueeze(0)).at(0));
    } catch (...) {
      sample.error = std::current_exception();
    }
  }
}

// Runs the pass of `flight` on `lane` with `threads` LibTorch threads (and prepares its samples
// there when `prepare_here`).
template <typename Output>
std::future<void> launch(PassThread& lane, int threads, bool prepare_here, Flight<Output>& flight,
                         const BatchStages<Output>& stages) {
  return lane.run([threads, prepare_here, &flight, &stages] {
    std::vector<size_t> decoded;
    std::vector<torch::Tensor> inputs;
    for (size_t i = 0; i < flight.batch.size(); ++i)
      if (flight.batch[i].input) {
        decoded.push_back(i);
        inputs.push_back(flight.batch[i].input->tensor);
      }
    flight.outputs.resize(flight.batch.size());
    torch::set_num_threads(threads);  // OpenMP's thread count belongs to each thread
    run_pass(flight, decoded, inputs, stages.pass);
    if (prepare_here) prepare_samples(flight, stages);
  });
}

}  // namespace bagnet::cli::detail

namespace bagnet::cli {

template <typename Output>
void run_in_batches(const Samples& samples, std::vector<int64_t> indices, const InputSpec& prep,
                    const BatchFlags& batching, const torch::Device& device, const BatchStages<Output>& stages) {
  const int64_t requested = batching.batch_size;
  const bool cuda = device.is_cuda();
  SamplePrefetcher prefetcher(samples, std::move(indices), [&prep](const cv::Mat& image) { return preprocess(image, prep); },
                              batching.decode_threads, 4 * std::max<int64_t>(requested, 64));
  std::optional<DecodedSample> held = prefetcher.next();
  std::vector<DecodedSample> waiting = detail::take_batch(prefetcher, held, requested, cuda);
  // Batches in their passes, in input order. Declared before the lanes, so that a pass still
  // running when `each` throws ends (the lanes' destructor) before its batch goes.
  std::deque<std::pair<std::unique_ptr<detail::Flight<Output>>, std::future<void>>> flights;
  detail::PassLanes lanes(torch::get_num_threads(), cuda);
  // Starts the waiting batches while their lanes have room: at most one batch per lane in flight.
  const auto start_passes = [&] {
    while (!waiting.empty()) {
      const auto [height, width] = detail::input_size(waiting).value_or(std::pair<int64_t, int64_t>{0, 0});
      const size_t lane_count = lanes.lanes_for(height, width);
      if (flights.size() >= lane_count) return;
      auto flight = std::make_unique<detail::Flight<Output>>();
      flight->batch = std::move(waiting);
      std::future<void> done = detail::launch(lanes.next(height, width), lanes.threads_for(height, width),
                                              lane_count > 1, *flight, stages);
      flights.emplace_back(std::move(flight), std::move(done));
      waiting = detail::take_batch(prefetcher, held, requested, cuda);
    }
  };
  start_passes();
  while (!flights.empty()) {
    flights.front().second.get();
    const std::unique_ptr<detail::Flight<Output>> flight = std::move(flights.front().first);
    flights.pop_front();
    start_passes();  // the next passes run while this batch's samples are handed over
    if (!flight->prepared) detail::prepare_samples(*flight, stages);
    for (size_t i = 0; i < flight->batch.size(); ++i)
      stages.each(flight->batch[i], flight->outputs[i] ? &*flight->outputs[i] : nullptr);
  }
}

}  // namespace bagnet::cli
