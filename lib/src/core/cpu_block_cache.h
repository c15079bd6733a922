#pragma once
// Reuse of large CPU tensor blocks while a dense map is computed.
//
// A dense BagNet-33 pass over 224x224 allocates about 9 GB of activations, a few hundred MB at a
// time. glibc serves each such block with a fresh mmap, so every page is faulted in and zeroed by the
// kernel again: 1.8 million page faults and 8 CPU-seconds of system time per map, about a fifth of
// the wall time on the 2-core machine. While a CpuBlockCacheScope is alive, LibTorch's CPU allocator
// is replaced by one that keeps freed blocks of at least 1 MB and hands them out again for requests
// they fit without wasting more than a third of the block (activations of one stage, and of every
// tile, repeat their sizes); new blocks are huge-page aligned and advised, so they fault in 2 MB
// pages. At most `limit_bytes` are kept, oldest released first; the scope's end returns them and
// puts the previous allocator back.
//
// The allocator is process-wide (LibTorch has no per-thread CPU allocator): scopes do not nest, and
// tensors allocated inside may outlive the scope (their blocks are then freed normally).
#include <cstddef>

namespace c10 {
struct Allocator;
}

namespace bagnet::detail {

class CpuBlockCacheScope {
 public:
  explicit CpuBlockCacheScope(std::size_t limit_bytes);
  ~CpuBlockCacheScope();
  CpuBlockCacheScope(const CpuBlockCacheScope&) = delete;
  CpuBlockCacheScope& operator=(const CpuBlockCacheScope&) = delete;

 private:
  c10::Allocator* previous_ = nullptr;
  bool installed_ = false;
};

}  // namespace bagnet::detail
