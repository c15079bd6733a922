#include "batch_pipeline.h"

#include <torch/torch.h>

#include <algorithm>

namespace bagnet::cli {

namespace {

int64_t bytes_of(const DecodedSample& sample) {
  if (!sample.input) return 0;
  return static_cast<int64_t>(sample.input->tensor.nbytes() + sample.input->original.total() * sample.input->original.elemSize());
}

}  // namespace

SamplePrefetcher::SamplePrefetcher(const Samples& samples, std::vector<int64_t> indices,
                                   std::function<ModelInput(const cv::Mat&)> decode, int threads, int64_t ahead,
                                   int64_t budget_bytes)
    : samples_(samples),
      indices_(std::move(indices)),
      decode_(std::move(decode)),
      ahead_(std::max<int64_t>(ahead, 1)),
      budget_bytes_(budget_bytes) {
  const int count = std::clamp(threads, 1, 64);
  for (int i = 0; i < count; ++i) workers_.emplace_back([this] { work(); });
}

SamplePrefetcher::~SamplePrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  room_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void SamplePrefetcher::work() {
  while (true) {
    size_t position = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      room_.wait(lock, [&] {
        if (stopping_ || claimed_ >= indices_.size() || claimed_ == consumed_) return true;
        return static_cast<int64_t>(claimed_ - consumed_) < ahead_ && buffered_bytes_ < budget_bytes_;
      });
      if (stopping_ || claimed_ >= indices_.size()) return;
      position = claimed_++;
    }
    DecodedSample sample;
    sample.info.index = indices_[position];
    sample.info.source = "sample " + std::to_string(indices_[position]);
    try {
      sample.info = samples_.info(indices_[position]);
      sample.input = decode_(samples_.image(indices_[position]));
    } catch (...) {
      sample.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      buffered_bytes_ += bytes_of(sample);
      decoded_.emplace(position, std::move(sample));
    }
    ready_.notify_all();
  }
}

std::optional<DecodedSample> SamplePrefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (consumed_ >= indices_.size()) return std::nullopt;
  ready_.wait(lock, [&] { return decoded_.count(consumed_) > 0; });
  auto node = decoded_.extract(consumed_);
  ++consumed_;
  buffered_bytes_ -= bytes_of(node.mapped());
  lock.unlock();
  room_.notify_all();
  return std::move(node.mapped());
}

int64_t batch_size_for(int64_t requested, bool cuda, int64_t height, int64_t width) {
  if (requested > 0) return requested;
  const int64_t pixels = std::max<int64_t>(height * width, 1);
  const int64_t budget = cuda ? 64 * 224 * 224 : 64 * 28 * 28;
  return std::clamp<int64_t>(budget / pixels, 1, 64);
}

namespace detail {

PassThread::PassThread() : thread_([this] {
  while (true) {
    std::packaged_task<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.erase(jobs_.begin());
    }
    job();
  }
}) {}

PassThread::~PassThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

std::future<void> PassThread::run(std::function<void()> job) {
  std::packaged_task<void()> task(std::move(job));
  std::future<void> done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(task));
  }
  wake_.notify_all();
  return done;
}

namespace {

bool small_input(int64_t height, int64_t width) { return height * width <= 96 * 96; }

}  // namespace

PassLanes::PassLanes(int threads, bool cuda) : threads_(std::max(threads, 1)), cuda_(cuda) {}

size_t PassLanes::lanes_for(int64_t height, int64_t width) const {
  return !cuda_ && small_input(height, width) ? static_cast<size_t>(threads_) : 1;
}

int PassLanes::threads_for(int64_t height, int64_t width) const {
  return !cuda_ && small_input(height, width) ? 1 : threads_;
}

PassThread& PassLanes::next(int64_t height, int64_t width) {
  const size_t count = lanes_for(height, width);
  if (lanes_.size() < count) lanes_.resize(count);
  const size_t lane = count == 1 ? 0 : turn_++ % count;
  if (!lanes_[lane]) lanes_[lane] = std::make_unique<PassThread>();
  return *lanes_[lane];
}

std::optional<std::pair<int64_t, int64_t>> input_size(const std::vector<DecodedSample>& batch) {
  for (const DecodedSample& sample : batch)
    if (sample.input) return std::pair<int64_t, int64_t>{sample.input->tensor.size(1), sample.input->tensor.size(2)};
  return std::nullopt;
}

std::vector<DecodedSample> take_batch(SamplePrefetcher& prefetcher, std::optional<DecodedSample>& held,
                                      int64_t requested, bool cuda) {
  std::vector<DecodedSample> batch;
  std::vector<int64_t> shape;
  int64_t limit = requested > 0 ? requested : 64;
  while (held && static_cast<int64_t>(batch.size()) < limit) {
    if (held->input) {
      const std::vector<int64_t> sizes = held->input->tensor.sizes().vec();
      if (shape.empty()) {
        shape = sizes;
        limit = std::max<int64_t>(batch_size_for(requested, cuda, sizes.at(1), sizes.at(2)),
                                  static_cast<int64_t>(batch.size()) + 1);
      } else if (sizes != shape) {
        break;
      }
    }
    batch.push_back(std::move(*held));
    held = prefetcher.next();
  }
  return batch;
}

}  // namespace detail

}  // namespace bagnet::cli
