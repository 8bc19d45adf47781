// 3x3 convolutions (SAME padding, stride 1 or 2, float32, NHWC / HWIO) for XLA:CPU through
// oneDNN, as XLA FFI handlers: forward, backward-data and backward-weights. Built and loaded on
// first use by latentjax/onednn.py; see there for why.
//
// Shapes: x (..., H, W, Ci) with the leading dims flattened into the batch; w (3, 3, Ci, Co);
// y (..., Ho, Wo, Co) with Ho = ceil(H / stride). Padding is XLA's SAME: the low side gets
// floor(total / 2). oneDNN picks the weights layout (format_tag::any); the HWIO weights and
// their gradient are reordered to and from it (small tensors). Primitives are cached by shape.
//
// Threads: the batch is cut into chunks that XLA's own intra-op thread pool (the FFI's
// ThreadPool) and the calling thread take in turn, each running oneDNN single-threaded. oneDNN's
// OpenMP threads would otherwise compete for the cores with the fusions that XLA runs
// concurrently (measured: a 2 ms fusion took 33 ms beside a 2-thread oneDNN call). Weight
// gradients are summed over chunks in chunk order, so results do not depend on scheduling.
#include <oneapi/dnnl/dnnl.hpp>

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

struct Geometry {
  int64_t n, h, w, ci, co, stride, ho, wo;
  memory::dims pad_l, pad_r;
  auto key() const { return std::make_tuple(n, h, w, ci, co, stride); }
};

int64_t SamePadLow(int64_t size, int64_t out, int64_t stride) {
  int64_t total = std::max<int64_t>((out - 1) * stride + 3 - size, 0);
  return total / 2;
}

Geometry MakeGeometry(int64_t n, int64_t h, int64_t w, int64_t ci, int64_t co, int64_t stride) {
  Geometry g{n, h, w, ci, co, stride, (h + stride - 1) / stride, (w + stride - 1) / stride, {}, {}};
  int64_t ph = SamePadLow(h, g.ho, stride), pw = SamePadLow(w, g.wo, stride);
  int64_t th = std::max<int64_t>((g.ho - 1) * stride + 3 - h, 0);
  int64_t tw = std::max<int64_t>((g.wo - 1) * stride + 3 - w, 0);
  g.pad_l = {ph, pw};
  g.pad_r = {th - ph, tw - pw};
  return g;
}

struct Prims {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  memory::desc x_md, y_md, w_user_md;
};

Prims& GetPrims(const Geometry& g) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>, Prims> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(g.key());
  if (it != cache.end()) return it->second;
  auto& eng = Engine();
  memory::desc x_md({g.n, g.ci, g.h, g.w}, dt::f32, tag::nhwc);
  memory::desc y_md({g.n, g.co, g.ho, g.wo}, dt::f32, tag::nhwc);
  memory::desc w_any({g.co, g.ci, 3, 3}, dt::f32, tag::any);
  memory::desc w_user({g.co, g.ci, 3, 3}, dt::f32, tag::hwio);
  memory::desc b_none;
  memory::dims strides = {g.stride, g.stride};
  // Scratchpads come from the caller (Scratch below), so that one primitive can run on several
  // threads at once.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto fwd_pd = dnnl::convolution_forward::primitive_desc(
      eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x_md, w_any, b_none,
      y_md, strides, g.pad_l, g.pad_r, attr);
  auto bd_pd = dnnl::convolution_backward_data::primitive_desc(
      eng, dnnl::algorithm::convolution_direct, x_md, w_any, y_md, strides, g.pad_l, g.pad_r, fwd_pd, attr);
  auto bw_pd = dnnl::convolution_backward_weights::primitive_desc(
      eng, dnnl::algorithm::convolution_direct, x_md, w_any, b_none, y_md, strides, g.pad_l, g.pad_r,
      fwd_pd, attr);
  Prims p{fwd_pd, bd_pd, bw_pd, dnnl::convolution_forward(fwd_pd),
          dnnl::convolution_backward_data(bd_pd), dnnl::convolution_backward_weights(bw_pd),
          x_md, y_md, w_user};
  return cache.emplace(g.key(), std::move(p)).first->second;
}


// oneDNN (OpenMP build) uses omp_get_max_threads() of the calling thread: one per thread here.
void SingleThreaded() {
  static thread_local bool done = false;
  if (!done) {
    omp_set_num_threads(1);
    done = true;
  }
}

struct ChunkState {
  std::atomic<int> next{0};
  int done = 0;
  int total = 0;
  std::function<void(int)> fn;
  std::mutex mu;
  std::condition_variable cv;
};

void Work(const std::shared_ptr<ChunkState>& st) {
  SingleThreaded();
  int i;
  while ((i = st->next.fetch_add(1)) < st->total) {
    st->fn(i);
    std::lock_guard<std::mutex> lock(st->mu);
    if (++st->done == st->total) st->cv.notify_all();
  }
}

// Runs fn(0..total-1) on the calling thread and up to (pool threads - 1) helpers; returns when
// all have run. A helper that starts late finds no chunk left and returns without touching fn.
void RunChunks(ffi::ThreadPool& pool, int total, std::function<void(int)> fn) {
  auto st = std::make_shared<ChunkState>();
  st->total = total;
  st->fn = std::move(fn);
  int helpers = std::min<int64_t>(pool.num_threads(), total) - 1;
  for (int h = 0; h < helpers; ++h) pool.Schedule([st] { Work(st); });
  Work(st);
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait(lock, [&] { return st->done == st->total; });
}

// Chunks of the batch: about 2 per pool thread, none smaller than 16 images.
int64_t ChunkSize(int64_t n, int64_t threads) {
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(2 * std::max<int64_t>(threads, 1), n / 16));
  return (n + chunks - 1) / chunks;
}

// This thread's scratchpad for a primitive.
memory Scratch(const memory::desc& md) {
  static thread_local std::vector<char> buf;
  if (buf.size() < md.get_size()) buf.resize(md.get_size());
  return memory(md, Engine(), buf.data());
}

// `user` (HWIO, caller's buffer) viewed in the layout `want`; reordered into `scratch` if needed.
memory WeightsIn(dnnl::stream& s, const memory::desc& user_md, const memory::desc& want, void* user,
                 std::vector<float>& scratch) {
  auto& eng = Engine();
  memory user_mem(user_md, eng, user);
  if (want == user_md) return user_mem;
  scratch.resize(want.get_size() / sizeof(float) + 1);
  memory m(want, eng, scratch.data());
  dnnl::reorder(user_mem, m).execute(s, user_mem, m);
  return m;
}

template <typename D>
int64_t Leading(const D& d) {
  int64_t n = 1;
  for (size_t i = 0; i + 3 < d.size(); ++i) n *= d[i];
  return n;
}

template <typename D>
ffi::Error CheckWeights(const D& d, int64_t ci, int64_t co) {
  if (d.size() < 4) return ffi::Error::InvalidArgument("latentjax onednn conv: weights must be (3, 3, Ci, Co)");
  for (size_t i = 0; i + 4 < d.size(); ++i)
    if (d[i] != 1) return ffi::Error::InvalidArgument("latentjax onednn conv: batched weights are not supported");
  size_t r = d.size();
  if (d[r - 4] != 3 || d[r - 3] != 3 || d[r - 2] != ci || d[r - 1] != co)
    return ffi::Error::InvalidArgument("latentjax onednn conv: weights shape does not match the images");
  return ffi::Error::Success();
}

ffi::Error ConvFwdImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                       ffi::ResultBuffer<ffi::F32> y, int64_t stride) {
  auto xd = x.dimensions(), yd = y->dimensions();
  if (xd.size() < 3) return ffi::Error::InvalidArgument("latentjax onednn conv: images must be (..., H, W, C)");
  size_t r = xd.size();
  int64_t ci = xd[r - 1], co = yd[yd.size() - 1];
  if (auto e = CheckWeights(w.dimensions(), ci, co); e.failure()) return e;
  Geometry all = MakeGeometry(Leading(xd), xd[r - 3], xd[r - 2], ci, co, stride);
  int64_t cs = ChunkSize(all.n, pool.num_threads());
  int chunks = all.n == 0 ? 0 : (all.n + cs - 1) / cs;
  const float* xp = x.typed_data();
  float* yp = y->typed_data();
  RunChunks(pool, chunks, [&](int c) {
    int64_t off = c * cs, n = std::min(cs, all.n - off);
    Prims& p = GetPrims(MakeGeometry(n, all.h, all.w, ci, co, stride));
    auto& eng = Engine();
    dnnl::stream s(eng);
    std::vector<float> wbuf;
    memory wm = WeightsIn(s, p.w_user_md, p.fwd_pd.weights_desc(), w.typed_data(), wbuf);
    memory xm(p.x_md, eng, const_cast<float*>(xp) + off * all.h * all.w * ci);
    memory ym(p.y_md, eng, yp + off * all.ho * all.wo * co);
    p.fwd.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}, {DNNL_ARG_SCRATCHPAD, Scratch(p.fwd_pd.scratchpad_desc())}});
    s.wait();
  });
  return ffi::Error::Success();
}

ffi::Error ConvBwdDataImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                           ffi::ResultBuffer<ffi::F32> dx, int64_t stride) {
  auto xd = dx->dimensions();
  size_t r = xd.size();
  int64_t ci = xd[r - 1], co = dy.dimensions()[dy.dimensions().size() - 1];
  if (auto e = CheckWeights(w.dimensions(), ci, co); e.failure()) return e;
  Geometry all = MakeGeometry(Leading(xd), xd[r - 3], xd[r - 2], ci, co, stride);
  int64_t cs = ChunkSize(all.n, pool.num_threads());
  int chunks = all.n == 0 ? 0 : (all.n + cs - 1) / cs;
  const float* dyp = dy.typed_data();
  float* dxp = dx->typed_data();
  RunChunks(pool, chunks, [&](int c) {
    int64_t off = c * cs, n = std::min(cs, all.n - off);
    Prims& p = GetPrims(MakeGeometry(n, all.h, all.w, ci, co, stride));
    auto& eng = Engine();
    dnnl::stream s(eng);
    std::vector<float> wbuf;
    memory wm = WeightsIn(s, p.w_user_md, p.bwd_data_pd.weights_desc(), w.typed_data(), wbuf);
    memory dym(p.y_md, eng, const_cast<float*>(dyp) + off * all.ho * all.wo * co);
    memory dxm(p.x_md, eng, dxp + off * all.h * all.w * ci);
    p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dxm}, {DNNL_ARG_SCRATCHPAD, Scratch(p.bwd_data_pd.scratchpad_desc())}});
    s.wait();
  });
  return ffi::Error::Success();
}

ffi::Error ConvBwdWeightsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                              ffi::ResultBuffer<ffi::F32> dw, int64_t stride) {
  auto xd = x.dimensions();
  size_t r = xd.size();
  int64_t ci = xd[r - 1], co = dy.dimensions()[dy.dimensions().size() - 1];
  if (auto e = CheckWeights(dw->dimensions(), ci, co); e.failure()) return e;
  Geometry all = MakeGeometry(Leading(xd), xd[r - 3], xd[r - 2], ci, co, stride);
  int64_t cs = ChunkSize(all.n, pool.num_threads());
  int chunks = all.n == 0 ? 0 : (all.n + cs - 1) / cs;
  size_t size = 9 * ci * co;
  std::vector<std::vector<float>> parts(chunks, std::vector<float>(size));
  const float* xp = x.typed_data();
  const float* dyp = dy.typed_data();
  RunChunks(pool, chunks, [&](int c) {
    int64_t off = c * cs, n = std::min(cs, all.n - off);
    Prims& p = GetPrims(MakeGeometry(n, all.h, all.w, ci, co, stride));
    auto& eng = Engine();
    dnnl::stream s(eng);
    memory xm(p.x_md, eng, const_cast<float*>(xp) + off * all.h * all.w * ci);
    memory dym(p.y_md, eng, const_cast<float*>(dyp) + off * all.ho * all.wo * co);
    memory user(p.w_user_md, eng, parts[c].data());
    auto want = p.bwd_weights_pd.diff_weights_desc();
    if (want == p.w_user_md) {
      p.bwd_weights.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, user}, {DNNL_ARG_SCRATCHPAD, Scratch(p.bwd_weights_pd.scratchpad_desc())}});
    } else {
      std::vector<float> buf(want.get_size() / sizeof(float) + 1);
      memory m(want, eng, buf.data());
      p.bwd_weights.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, m}, {DNNL_ARG_SCRATCHPAD, Scratch(p.bwd_weights_pd.scratchpad_desc())}});
      dnnl::reorder(m, user).execute(s, m, user);
    }
    s.wait();
  });
  float* out = dw->typed_data();
  std::fill(out, out + size, 0.0f);
  for (auto& part : parts)
    for (size_t i = 0; i < size; ++i) out[i] += part[i];
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxConvFwd, ConvFwdImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxConvBwdData, ConvBwdDataImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxConvBwdWeights, ConvBwdWeightsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride"));
