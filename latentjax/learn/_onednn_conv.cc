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
#include <memory>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "../_native_pool.h"
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

// Chunks of the batch: about 2 per pool thread, none smaller than 16 images.
struct ChunkPlan {
  int64_t size;
  int count;
};

ChunkPlan PlanChunks(int64_t n, int64_t threads) {
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(2 * std::max<int64_t>(threads, 1), n / 16));
  int64_t size = (n + chunks - 1) / chunks;
  return {size, n == 0 ? 0 : static_cast<int>((n + size - 1) / size)};
}

// fn(chunk index, its primitives, its first image, a stream) for each chunk, across threads.
template <typename F>
void ForEachChunk(ffi::ThreadPool& pool, const Geometry& all, const ChunkPlan& plan, F fn) {
  latentjax::RunChunks(pool, plan.count, [&](int c) {
    SingleThreaded();
    int64_t off = c * plan.size;
    Prims& p = GetPrims(MakeGeometry(std::min(plan.size, all.n - off), all.h, all.w, all.ci, all.co, all.stride));
    dnnl::stream s(Engine());
    fn(c, p, off, s);
    s.wait();
  });
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

// The batch geometry from the images' dims (..., H, W, Ci), the output channels and the weights'
// dims, which must be (1, ..., 3, 3, Ci, Co): leading ones come from vmap's expand_dims.
template <typename D, typename E>
ffi::ErrorOr<Geometry> Parse(const D& xd, int64_t co, const E& wd, int64_t stride) {
  using Fail = ffi::Unexpected<ffi::Error>;
  if (xd.size() < 3) return Fail(ffi::Error::InvalidArgument("latentjax onednn conv: images must be (..., H, W, C)"));
  size_t r = xd.size();
  int64_t ci = xd[r - 1];
  if (auto e = CheckWeights(wd, ci, co); e.failure()) return Fail(std::move(e));
  if (stride != 1 && stride != 2) return Fail(ffi::Error::InvalidArgument("latentjax onednn conv: stride must be 1 or 2"));
  return MakeGeometry(Leading(xd), xd[r - 3], xd[r - 2], ci, co, stride);
}

float* At(const float* base, int64_t image, int64_t image_size) {
  return const_cast<float*>(base) + image * image_size;  // oneDNN's memory takes non-const handles
}

ffi::Error ConvFwdImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                       ffi::ResultBuffer<ffi::F32> y, int64_t stride) {
  auto yd = y->dimensions();
  auto g = Parse(x.dimensions(), yd[yd.size() - 1], w.dimensions(), stride);
  if (g.has_error()) return g.error();
  const Geometry all = g.value();
  ForEachChunk(pool, all, PlanChunks(all.n, pool.num_threads()), [&](int, Prims& p, int64_t off, dnnl::stream& s) {
    std::vector<float> wbuf;
    memory wm = WeightsIn(s, p.w_user_md, p.fwd_pd.weights_desc(), w.typed_data(), wbuf);
    memory xm(p.x_md, Engine(), At(x.typed_data(), off, all.h * all.w * all.ci));
    memory ym(p.y_md, Engine(), At(y->typed_data(), off, all.ho * all.wo * all.co));
    p.fwd.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym},
                      {DNNL_ARG_SCRATCHPAD, Scratch(p.fwd_pd.scratchpad_desc())}});
  });
  return ffi::Error::Success();
}

ffi::Error ConvBwdDataImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                           ffi::ResultBuffer<ffi::F32> dx, int64_t stride) {
  auto dyd = dy.dimensions();
  auto g = Parse(dx->dimensions(), dyd[dyd.size() - 1], w.dimensions(), stride);
  if (g.has_error()) return g.error();
  const Geometry all = g.value();
  ForEachChunk(pool, all, PlanChunks(all.n, pool.num_threads()), [&](int, Prims& p, int64_t off, dnnl::stream& s) {
    std::vector<float> wbuf;
    memory wm = WeightsIn(s, p.w_user_md, p.bwd_data_pd.weights_desc(), w.typed_data(), wbuf);
    memory dym(p.y_md, Engine(), At(dy.typed_data(), off, all.ho * all.wo * all.co));
    memory dxm(p.x_md, Engine(), At(dx->typed_data(), off, all.h * all.w * all.ci));
    p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dxm},
                           {DNNL_ARG_SCRATCHPAD, Scratch(p.bwd_data_pd.scratchpad_desc())}});
  });
  return ffi::Error::Success();
}

ffi::Error ConvBwdWeightsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                              ffi::ResultBuffer<ffi::F32> dw, int64_t stride) {
  auto dyd = dy.dimensions();
  auto g = Parse(x.dimensions(), dyd[dyd.size() - 1], dw->dimensions(), stride);
  if (g.has_error()) return g.error();
  const Geometry all = g.value();
  const ChunkPlan plan = PlanChunks(all.n, pool.num_threads());
  const size_t size = 9 * all.ci * all.co;
  std::vector<std::vector<float>> parts(plan.count, std::vector<float>(size));  // HWIO, one per chunk
  ForEachChunk(pool, all, plan, [&](int c, Prims& p, int64_t off, dnnl::stream& s) {
    memory xm(p.x_md, Engine(), At(x.typed_data(), off, all.h * all.w * all.ci));
    memory dym(p.y_md, Engine(), At(dy.typed_data(), off, all.ho * all.wo * all.co));
    memory user(p.w_user_md, Engine(), parts[c].data());
    auto want = p.bwd_weights_pd.diff_weights_desc();
    std::vector<float> buf(want == p.w_user_md ? 0 : want.get_size() / sizeof(float) + 1);
    memory m = want == p.w_user_md ? user : memory(want, Engine(), buf.data());
    p.bwd_weights.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, m},
                              {DNNL_ARG_SCRATCHPAD, Scratch(p.bwd_weights_pd.scratchpad_desc())}});
    if (want != p.w_user_md) dnnl::reorder(m, user).execute(s, m, user);
  });
  float* out = dw->typed_data();
  std::fill(out, out + size, 0.0f);
  for (auto& part : parts)  // in chunk order: the sum does not depend on which thread ran what
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
