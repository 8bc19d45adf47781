// RunChunks: a parallel for over chunks on XLA's intra-op thread pool (the FFI's ThreadPool), for
// the CPU kernels built by latentjax/_native.py. The calling thread takes chunks too; a helper
// that starts late finds none left and returns. Chunks are claimed in order, but each chunk's
// result must not depend on which thread runs it (the kernels write disjoint rows).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "xla/ffi/api/ffi.h"

namespace latentjax {

struct ChunkState {
  std::atomic<int> next{0};
  int done = 0;
  int total = 0;
  std::function<void(int)> fn;
  std::mutex mu;
  std::condition_variable cv;
};

inline void Work(const std::shared_ptr<ChunkState>& st) {
  int i;
  while ((i = st->next.fetch_add(1)) < st->total) {
    st->fn(i);
    std::lock_guard<std::mutex> lock(st->mu);
    if (++st->done == st->total) st->cv.notify_all();
  }
}

// Runs fn(0..total-1) on the calling thread and the pool's other threads; returns when all ran.
inline void RunChunks(xla::ffi::ThreadPool& pool, int total, std::function<void(int)> fn) {
  if (total <= 0) return;
  auto st = std::make_shared<ChunkState>();
  st->total = total;
  st->fn = std::move(fn);
  int helpers = std::min<int64_t>(pool.num_threads(), total) - 1;
  for (int h = 0; h < helpers; ++h) pool.Schedule([st] { Work(st); });
  Work(st);
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait(lock, [&] { return st->done == st->total; });
}

}  // namespace latentjax
