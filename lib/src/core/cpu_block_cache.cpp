#include "cpu_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace bagnet::detail {
namespace {

constexpr std::size_t kMinCachedBytes = std::size_t(1) << 20;
constexpr std::size_t kHugePage = std::size_t(2) << 20;

class BlockCache final : public c10::Allocator {
 public:
  // LibTorch 1.13 declares allocate() const, 2.x non-const; defining both (without `override`)
  // implements whichever the installed version declares. copy_data is required from 2.3 on.
  c10::DataPtr allocate(size_t n) const { return const_cast<BlockCache*>(this)->take(n); }
  c10::DataPtr allocate(size_t n) { return take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }

  void activate(std::size_t limit) {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = true;
    limit_ = limit;
  }
  void deactivate() {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = false;
    while (!free_.empty()) evict_oldest();
  }

  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may be freed at exit
    return *cache;
  }

 private:
  struct FreeBlock {
    void* data;
    std::size_t size;
  };

  c10::DataPtr take(size_t n) {
    if (n < kMinCachedBytes) return c10::GetDefaultCPUAllocator()->allocate(n);
    void* data = nullptr;
    std::size_t capacity = n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits, if it wastes at most half the request.
      auto found = by_size_.lower_bound(n);
      if (found != by_size_.end() && found->first <= n + n / 2) {
        auto block = found->second;
        data = block->data;
        capacity = block->size;
        cached_ -= capacity;
        by_size_.erase(found);
        free_.erase(block);
      }
    }
    if (!data) {
      // Huge-page aligned and advised: a fresh block then faults in 2 MB pages, not 4 KB ones.
      if (posix_memalign(&data, kHugePage, n) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
      madvise(data, n, MADV_HUGEPAGE);
#endif
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_[data] = capacity;
    }
    return c10::DataPtr(data, data, &give_back, c10::Device(c10::DeviceType::CPU));
  }

  static void give_back(void* data) { instance().release(data); }

  void release(void* data) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = live_.find(data);
    if (found == live_.end()) {  // a block of the default allocator, freed through raw_deleter()
      std::free(data);
      return;
    }
    const std::size_t size = found->second;
    live_.erase(found);
    if (!active_ || size > limit_) {
      std::free(data);
      return;
    }
    free_.push_back(FreeBlock{data, size});
    by_size_.emplace(size, std::prev(free_.end()));
    cached_ += size;
    while (cached_ > limit_) evict_oldest();
  }

  void evict_oldest() {
    const FreeBlock block = free_.front();
    auto range = by_size_.equal_range(block.size);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == free_.begin()) {
        by_size_.erase(it);
        break;
      }
    }
    free_.pop_front();
    cached_ -= block.size;
    std::free(block.data);
  }

  std::mutex mutex_;
  bool active_ = false;
  std::size_t limit_ = 0, cached_ = 0;
  std::list<FreeBlock> free_;  // oldest first
  std::multimap<std::size_t, std::list<FreeBlock>::iterator> by_size_;
  std::unordered_map<void*, std::size_t> live_;
};

std::mutex scope_mutex;
bool scope_open = false;

}  // namespace

CpuBlockCacheScope::CpuBlockCacheScope(std::size_t limit_bytes) {
#ifdef BAGNET_SANITIZE
  // Sanitized builds keep LibTorch's own allocator: a reused block would hide use-after-free.
  (void)limit_bytes;
  return;
#endif
  std::lock_guard<std::mutex> lock(scope_mutex);
  if (scope_open) return;  // an enclosing scope (another thread's dense map) already caches
  scope_open = installed_ = true;
  previous_ = c10::GetAllocator(c10::DeviceType::CPU);
  BlockCache::instance().activate(limit_bytes);
  c10::SetAllocator(c10::DeviceType::CPU, &BlockCache::instance());
}

CpuBlockCacheScope::~CpuBlockCacheScope() {
  if (!installed_) return;
  std::lock_guard<std::mutex> lock(scope_mutex);
  c10::SetAllocator(c10::DeviceType::CPU, previous_);
  BlockCache::instance().deactivate();
  scope_open = false;
}

}  // namespace bagnet::detail
