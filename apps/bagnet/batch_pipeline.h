#pragma once
// Dataset runs at the speed of the network: samples are decoded ahead on a few threads (bounded
// queue, input order kept), grouped into batches of one input size, and each batch's network pass
// runs on a worker thread while the previous batch's per-sample work (ranking, JSON, files) runs on
// the calling thread. On the CPU an image's numbers do not depend on its batch (model.h), so the
// outputs are the same whatever the batch size.
#include "options.h"
#include "samples.h"

#include <bagnet/image.h>

#include <torch/types.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// Batch sizing: `requested` images per pass, or with 0 ("auto") a per-device default: on the CPU
// as many as fit in about 50k input pixels (64 Fashion-MNIST images, one 224x224 image: larger CPU
// batches only move activations out of the caches), on CUDA up to 64 images of 224x224.
int64_t batch_size_for(int64_t requested, bool cuda, int64_t height, int64_t width);

// Runs a dataset loop over `indices` of `samples`, each decoded with `prep`: `pass` turns a batch
// [B, C, H, W] into B outputs (on a thread of its own, one batch ahead), then `each` is called on
// this thread for every sample in input order with its output; the output is null exactly when
// `sample.error` is set. A batch whose pass throws is run again image by image, so that each
// failure is the image's own.
template <typename Output>
void run_in_batches(const Samples& samples, std::vector<int64_t> indices, const InputSpec& prep,
                    const BatchFlags& batching, const torch::Device& device,
                    const std::function<std::vector<Output>(const torch::Tensor&)>& pass,
                    const std::function<void(DecodedSample&, Output*)>& each);

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
};

// One thread for every network pass of a run: LibTorch's OpenMP team belongs to the thread that
// starts it, so a new thread per batch would build a new team (and new threads) each time.
class PassThread {
 public:
  PassThread();
  ~PassThread();
  // Runs `job` on the thread; the future is ready when it has run.
  std::future<void> run(std::function<void()> job);
  // On the thread, before a pass over inputs of this size: sets its LibTorch thread count.
  void use_threads_for(int64_t height, int64_t width) const;

 private:
  const int run_threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::packaged_task<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

template <typename Output>
std::future<void> launch(PassThread& thread, Flight<Output>& flight,
                         const std::function<std::vector<Output>(const torch::Tensor&)>& pass) {
  return thread.run([&thread, &flight, &pass] {
    std::vector<size_t> decoded;
    std::vector<torch::Tensor> inputs;
    for (size_t i = 0; i < flight.batch.size(); ++i)
      if (flight.batch[i].input) {
        decoded.push_back(i);
        inputs.push_back(flight.batch[i].input->tensor);
      }
    flight.outputs.resize(flight.batch.size());
    if (inputs.empty()) return;
    thread.use_threads_for(inputs.front().size(1), inputs.front().size(2));
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
  });
}

}  // namespace bagnet::cli::detail

namespace bagnet::cli {

template <typename Output>
void run_in_batches(const Samples& samples, std::vector<int64_t> indices, const InputSpec& prep,
                    const BatchFlags& batching, const torch::Device& device,
                    const std::function<std::vector<Output>(const torch::Tensor&)>& pass,
                    const std::function<void(DecodedSample&, Output*)>& each) {
  const int64_t requested = batching.batch_size;
  const bool cuda = device.is_cuda();
  SamplePrefetcher prefetcher(samples, std::move(indices), [&prep](const cv::Mat& image) { return preprocess(image, prep); },
                              batching.decode_threads, 4 * std::max<int64_t>(requested, 64));
  std::optional<DecodedSample> held = prefetcher.next();
  detail::PassThread thread;
  detail::Flight<Output> flights[2];  // the batch being assembled here and the one in its pass
  int current = 0;
  flights[current].batch = detail::take_batch(prefetcher, held, requested, cuda);
  std::future<void> in_flight = detail::launch(thread, flights[current], pass);
  while (!flights[current].batch.empty()) {
    in_flight.get();
    detail::Flight<Output>& flight = flights[current];
    detail::Flight<Output>& next = flights[1 - current];
    next = detail::Flight<Output>{};
    next.batch = detail::take_batch(prefetcher, held, requested, cuda);
    in_flight = detail::launch(thread, next, pass);
    // Should `each` throw, the pass in flight must end before `next` goes out of scope.
    struct Wait {
      std::future<void>& f;
      ~Wait() { if (f.valid()) f.wait(); }
    } wait{in_flight};
    for (size_t i = 0; i < flight.batch.size(); ++i)
      each(flight.batch[i], flight.outputs[i] ? &*flight.outputs[i] : nullptr);
    current = 1 - current;
  }
  if (in_flight.valid()) in_flight.get();
}

}  // namespace bagnet::cli
