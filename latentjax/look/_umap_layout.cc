// UMAP's negative-sampling layout on XLA:CPU, as an XLA FFI handler: all of a run's epochs in one
// call. Built and loaded on first use by latentjax/look/_umap_native.py (see there for why).
//
// The same epochs as _umap_kernels.layout_step, step for step. In an epoch each vertex runs
// umap-learn's SGD against the positions the others had at the epoch's start (two buffers):
// vertices are independent within an epoch, so they run in parallel, in any order, with the same
// result. Per epoch t (epoch e = epoch0 + t), with z the vertex's moving position (z = y_i first):
//   alpha = lr * (1 - e / decay_steps)
//   each edge (head i, tail j) fires when floor(e * rate) > floor((e - 1) * rate) and e >= 1;
//   a fired edge:  z += 2 alpha clip(-2ab d2^b / (d2 (1 + a d2^b)) (z - y_j), 4)     (0 if d2 = 0)
//   draw s < m:    z += (e >= 1 ? alpha : 0) negative_weight_i clip(2 gamma b / ((1e-3 + d2)
//                       (1 + a d2^b)) (z - y_o), 4),  o = murmur3_finaliser(seed_t + (i m + s)
//                       * 0x9E3779B1) mod n  (the XLA path's draw)
//   in umap-learn's order: each fired edge (in edge order) followed by its share of the draws
//   (see Block).
// kLanes vertices run side by side, one per SIMD lane (their steps padded with zero-weight ones),
// so exp/log/gathers vectorise; a vertex's result does not depend on its lane.
// Positions come and go (dim, n), one vector per coordinate, as in the XLA path.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../_native_pool.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using latentjax::RunChunks;

constexpr float kClip = 4.0f;
constexpr int kMaxDim = 16;

inline float Clip(float v) { return std::min(kClip, std::max(-kClip, v)); }

// d2^b through one log/exp, as the XLA path (_d2_pow_b); d2 > 0.
inline float PowB(float d2, float b) { return std::exp(b * std::log(std::max(d2, 1e-30f))); }

inline uint32_t Draw(uint32_t seed, uint32_t slot) {
  uint32_t x = slot * 0x9E3779B1u + seed;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

constexpr int kLanes = 64;

// o mod n for a 32-bit draw, through doubles (vectorises; x86 has no vector integer division):
// the quotient's estimate is off by at most one (|x| < 2^32, relative error 2^-52), then fixed.
inline int32_t Mod(uint32_t x, double n, double inv_n) {
  const double xd = static_cast<double>(x);
  const double q = std::floor(xd * inv_n);
  double r = xd - q * n;
  r = r < 0.0 ? r + n : r;
  r = r >= n ? r - n : r;
  return static_cast<int32_t>(r);
}

// One step of every lane: z_l += fac_l clip(g_l(d2) (z_l - y_{tgt_l}), 4), where g_l is the
// attraction's coefficient where pull_l, else the repulsion's (0 where d2 = 0).
// D: the dimension if known at compile time (the lane loop then vectorises), else 0 and `dim`.
template <int D>
inline void Step(float (*z)[kLanes], const float* y, const int32_t* tgt, const float* fac, const int32_t* pull,
                 int64_t dim, float a, float b, float gamma) {
  const int64_t nd = D > 0 ? D : dim;
  for (int l = 0; l < kLanes; ++l) {
    const float* yj = y + static_cast<int64_t>(tgt[l]) * nd;
    float d[D > 0 ? D : kMaxDim];
    float d2 = 0.0f;
    for (int64_t q = 0; q < nd; ++q) {
      d[q] = z[q][l] - yj[q];
      d2 += d[q] * d[q];
    }
    // Coincident points (d2 = 0) get 0; a safe d2 keeps inf/NaN out (-ffast-math assumes none).
    const float ds = d2 > 0.0f ? d2 : 1.0f;
    const float d2b = PowB(ds, b);
    // attraction -2ab d2^b / (d2 (1 + a d2^b)); repulsion 2 gamma b / ((1e-3 + d2)(1 + a d2^b))
    const float num = pull[l] != 0 ? -2.0f * a * b * d2b : 2.0f * gamma * b;
    const float den = pull[l] != 0 ? ds : 1e-3f + ds;
    const float g = d2 > 0.0f ? num / (den * (1.0f + a * d2b)) : 0.0f;
    for (int64_t q = 0; q < nd; ++q) z[q][l] += fac[l] * Clip(g * d[q]);
  }
}

struct Epoch {
  const float* y;  // positions at the epoch's start, (n, dim) interleaved
  float* y_new;
  const int64_t* start;  // head-sorted edges' row offsets
  const int32_t* tail;
  const float* rate;
  const float* negw;
  int64_t n, dim, m;
  float ef, alpha, rep_alpha, a, b, gamma;
  uint32_t seed;
};

// Fired edges of a chunk's vertices, as rows: vertex r0 + v's at tails[off[v] .. off[v + 1]).
struct Fired {
  std::vector<int32_t> tails, order;
  std::vector<int64_t> off, bucket;
};

// Lanes idx[0 .. count) (count <= kLanes; idx padded by repeats) through one epoch. A lane with
// F fired edges and m draws steps: edge 0, draws up to floor(m / F), edge 1, draws up to
// floor(2m / F), ..., edge F - 1, draws up to m (all m draws if F = 0): the next step is the
// edge f < F where (s + 1) F > f m, s the draws done, else the draw s < m, else nothing.
template <int D>
void Block(const Epoch& p, const int64_t* idx, int count, const Fired& f, int64_t r0) {
  int32_t first[kLanes], num[kLanes], done_f[kLanes], done_s[kLanes];
  uint32_t base[kLanes];
  float rs[kLanes];
  const int32_t m = p.rep_alpha != 0.0f ? static_cast<int32_t>(p.m) : 0;  // draws of weight 0: skipped
  int64_t steps = 0;
  for (int l = 0; l < kLanes; ++l) {
    first[l] = static_cast<int32_t>(f.off[idx[l] - r0]);
    num[l] = l < count ? static_cast<int32_t>(f.off[idx[l] - r0 + 1] - first[l]) : 0;
    done_f[l] = 0;
    done_s[l] = l < count ? 0 : m;
    base[l] = static_cast<uint32_t>(idx[l] * p.m);
    rs[l] = p.rep_alpha * p.negw[idx[l]];
    steps = std::max<int64_t>(steps, num[l] + m - done_s[l]);
  }
  const int64_t nd = D > 0 ? D : p.dim;
  float z[kMaxDim][kLanes];
  for (int64_t q = 0; q < nd; ++q)
    for (int l = 0; l < kLanes; ++l) z[q][l] = p.y[idx[l] * nd + q];
  const double n = static_cast<double>(p.n), inv_n = 1.0 / n;
  const int32_t last = static_cast<int32_t>(f.tails.size()) - 1;
  int32_t tgt[kLanes], pull[kLanes], self[kLanes];
  float fac[kLanes];
  const float two_alpha = 2.0f * p.alpha;
  for (int l = 0; l < kLanes; ++l) self[l] = static_cast<int32_t>(idx[l]);
  for (int64_t t = 0; t < steps; ++t) {
    for (int l = 0; l < kLanes; ++l) {
      const int32_t edge = (done_f[l] < num[l]) & ((done_s[l] + 1) * num[l] > done_f[l] * m);
      const int32_t draw = (edge ^ 1) & (done_s[l] < m);
      const int32_t j = f.tails[std::min(first[l] + done_f[l], last)];
      const int32_t o = Mod(Draw(p.seed, base[l] + static_cast<uint32_t>(done_s[l])), n, inv_n);
      // Idle: towards itself with weight 0.
      tgt[l] = edge != 0 ? j : draw != 0 ? o : self[l];
      fac[l] = static_cast<float>(edge) * two_alpha + static_cast<float>(draw) * rs[l];
      pull[l] = edge;
      done_f[l] += edge;
      done_s[l] += draw;
    }
    Step<D>(z, p.y, tgt, fac, pull, nd, p.a, p.b, p.gamma);
  }
  for (int l = 0; l < count; ++l)
    for (int64_t q = 0; q < nd; ++q) p.y_new[idx[l] * nd + q] = z[q][l];
}

// Vertices [r0, r1) through one epoch: their fired edges, then lanes of vertices with about as
// many fired edges (sorted by the count; the order does not change any vertex's result).
template <int D>
void Chunk(const Epoch& p, int64_t r0, int64_t r1, Fired& f) {
  const int64_t rows = r1 - r0;
  f.off.assign(rows + 1, 0);
  f.tails.resize(p.start[r1] - p.start[r0] + 1);  // never empty: Block reads tails[last]
  int64_t top = 0;
  for (int64_t v = 0; v < rows; ++v) {
    int64_t c = f.off[v];
    if (p.ef >= 1.0f) {
      // Branch-free: about a third of the edges fire, in no predictable pattern.
      for (int64_t k = p.start[r0 + v]; k < p.start[r0 + v + 1]; ++k) {
        const float r = p.rate[k];
        f.tails[c] = p.tail[k];
        c += std::floor(p.ef * r) > std::floor((p.ef - 1.0f) * r);
      }
    }
    f.off[v + 1] = c;
    top = std::max(top, c - f.off[v]);
  }
  f.bucket.assign(top + 2, 0);
  for (int64_t v = 0; v < rows; ++v) ++f.bucket[f.off[v + 1] - f.off[v] + 1];
  for (int64_t c = 0; c <= top; ++c) f.bucket[c + 1] += f.bucket[c];
  f.order.resize(rows);
  for (int64_t v = 0; v < rows; ++v) f.order[f.bucket[f.off[v + 1] - f.off[v]]++] = static_cast<int32_t>(r0 + v);
  int64_t idx[kLanes];
  for (int64_t b0 = 0; b0 < rows; b0 += kLanes) {
    const int count = static_cast<int>(std::min<int64_t>(kLanes, rows - b0));
    for (int l = 0; l < kLanes; ++l) idx[l] = f.order[b0 + std::min(l, count - 1)];
    Block<D>(p, idx, count, f, r0);
  }
}

ffi::Error LayoutImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> yt, ffi::Buffer<ffi::S32> epoch0,
                      ffi::Buffer<ffi::U32> seeds, ffi::Buffer<ffi::S32> head, ffi::Buffer<ffi::S32> tail,
                      ffi::Buffer<ffi::F32> rate, ffi::Buffer<ffi::F32> negw, ffi::Buffer<ffi::F32> hyper,
                      ffi::ResultBuffer<ffi::F32> out, int64_t m, int64_t decay_steps) {
  auto yd = yt.dimensions();
  if (yd.size() != 2 || yd[0] > kMaxDim || yd[0] < 1 || hyper.element_count() != 4 ||
      negw.element_count() != yd[1] || head.element_count() != tail.element_count() ||
      head.element_count() != rate.element_count())
    return ffi::Error::InvalidArgument("umap layout: inconsistent shapes");
  const int64_t dim = yd[0], n = yd[1], edges = head.element_count();
  const int64_t steps = seeds.element_count();
  const int32_t* hp = head.typed_data();
  const int32_t* tp = tail.typed_data();
  for (int64_t e = 0; e < edges; ++e)
    if (hp[e] < 0 || hp[e] >= n || tp[e] < 0 || tp[e] >= n || (e > 0 && hp[e] < hp[e - 1]))
      return ffi::Error::InvalidArgument("umap layout: edges must be sorted by head, with ends in [0, n)");
  // Row offsets of the head-sorted edges.
  std::vector<int64_t> start(n + 1, 0);
  for (int64_t e = 0; e < edges; ++e) ++start[hp[e] + 1];
  for (int64_t i = 0; i < n; ++i) start[i + 1] += start[i];
  // Inside, positions are interleaved (n, dim): one cache line per random access, not dim.
  std::vector<float> buf_a(dim * n), buf_b(dim * n);
  for (int64_t q = 0; q < dim; ++q)
    for (int64_t i = 0; i < n; ++i) buf_a[i * dim + q] = yt.typed_data()[q * n + i];
  Epoch p;
  p.start = start.data();
  p.tail = tail.typed_data();
  p.rate = rate.typed_data();
  p.negw = negw.typed_data();
  p.n = n;
  p.dim = dim;
  p.m = m;
  p.a = hyper.typed_data()[0];
  p.b = hyper.typed_data()[1];
  p.gamma = hyper.typed_data()[2];
  const float lr = hyper.typed_data()[3];
  float* cur = buf_a.data();
  float* next = buf_b.data();
  const int chunks = static_cast<int>(std::min<int64_t>((n + kLanes - 1) / kLanes, 16 * (pool.num_threads() + 1)));
  for (int64_t t = 0; t < steps; ++t) {
    const int32_t e = epoch0.typed_data()[0] + static_cast<int32_t>(t);
    p.ef = static_cast<float>(e);
    p.alpha = lr * (1.0f - p.ef / static_cast<float>(decay_steps));
    p.rep_alpha = e >= 1 ? p.alpha : 0.0f;
    p.seed = seeds.typed_data()[t];
    p.y = cur;
    p.y_new = next;
    RunChunks(pool, chunks, [&](int c) {
      Fired f;
      const int64_t r0 = n * c / chunks, r1 = n * (c + 1) / chunks;
      if (dim == 2)
        Chunk<2>(p, r0, r1, f);
      else if (dim == 3)
        Chunk<3>(p, r0, r1, f);
      else
        Chunk<0>(p, r0, r1, f);
    });
    std::swap(cur, next);
  }
  for (int64_t q = 0; q < dim; ++q)
    for (int64_t i = 0; i < n; ++i) out->typed_data()[q * n + i] = cur[i * dim + q];
  return ffi::Error::Success();
}

// The transform's layout (_umap_transform._step, every epoch from 0): each new point runs
// umap-learn's SGD against the fixed reference, edge by edge: a firing edge pulls it, then nsr
// uniform reference points push it, each step from where the last one left it,
//   o = murmur3_finaliser(seed_t + ((i k + s) nsr + u) * 0x9E3779B1) mod n  (the XLA path's draw)
//   y_i += alpha_t clip(coefficient (y_i - y_o), 4).
// The new points do not interact: kLanes of them run all their epochs side by side, one per SIMD
// lane, each epoch through the lanes' firing edges (a lane with fewer idles with weight 0).
struct Transform {
  const float* ref;  // (n, dim)
  const int32_t* cols;
  const float* weights;
  const float* rate;
  const uint32_t* seeds;
  const float* y0;
  float* out;
  int64_t n, dim, k, nsr, steps, num_steps;
  float a, b, gamma, lr;
};

template <int D>
void TransformBlock(const Transform& p, int64_t i0, int count, std::vector<int32_t>& fired) {
  const int64_t nd = D > 0 ? D : p.dim;
  int64_t idx[kLanes];
  for (int l = 0; l < kLanes; ++l) idx[l] = i0 + std::min(l, count - 1);
  float z[kMaxDim][kLanes];
  for (int64_t q = 0; q < nd; ++q)
    for (int l = 0; l < kLanes; ++l) z[q][l] = p.y0[idx[l] * nd + q];
  fired.resize(p.k * kLanes);
  const double n = static_cast<double>(p.n), inv_n = 1.0 / n;
  int32_t num[kLanes], tgt[kLanes], slot[kLanes], pull[kLanes], push[kLanes];
  float fac[kLanes];
  for (int l = 0; l < kLanes; ++l) pull[l] = 1, push[l] = 0;
  for (int64_t t = 1; t < p.steps; ++t) {  // nothing fires at epoch 0
    const float ef = static_cast<float>(t);
    const float alpha = p.lr * (1.0f - ef / static_cast<float>(p.num_steps));
    const uint32_t seed = p.seeds[t];
    int32_t most = 0;
    for (int l = 0; l < kLanes; ++l) {
      int32_t c = 0;
      for (int64_t s = 0; s < p.k && l < count; ++s) {
        const int64_t e = idx[l] * p.k + s;
        const float r = p.rate[e];
        fired[c * kLanes + l] = static_cast<int32_t>(s);
        c += p.weights[e] > 0.0f && std::floor(ef * r) > std::floor((ef - 1.0f) * r);
      }
      num[l] = c;
      most = std::max(most, c);
    }
    for (int32_t f = 0; f < most; ++f) {
      for (int l = 0; l < kLanes; ++l) {
        const bool on = f < num[l];
        slot[l] = on ? fired[f * kLanes + l] : 0;
        const int32_t j = p.cols[idx[l] * p.k + slot[l]];
        tgt[l] = std::min<int32_t>(std::max<int32_t>(j, 0), static_cast<int32_t>(p.n - 1));  // as XLA clamps
        fac[l] = on ? alpha : 0.0f;
      }
      Step<D>(z, p.ref, tgt, fac, pull, nd, p.a, p.b, p.gamma);
      for (int64_t u = 0; u < p.nsr; ++u) {
        for (int l = 0; l < kLanes; ++l) {
          const uint32_t draw = static_cast<uint32_t>((idx[l] * p.k + slot[l]) * p.nsr + u);
          tgt[l] = Mod(Draw(seed, draw), n, inv_n);
        }
        Step<D>(z, p.ref, tgt, fac, push, nd, p.a, p.b, p.gamma);
      }
    }
  }
  for (int l = 0; l < count; ++l)
    for (int64_t q = 0; q < nd; ++q) p.out[idx[l] * nd + q] = z[q][l];
}

ffi::Error TransformImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y0, ffi::Buffer<ffi::F32> ref,
                         ffi::Buffer<ffi::S32> cols, ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> rate,
                         ffi::Buffer<ffi::U32> seeds, ffi::Buffer<ffi::F32> hyper,
                         ffi::ResultBuffer<ffi::F32> out, int64_t nsr, int64_t num_steps) {
  auto yd = y0.dimensions();
  auto rd = ref.dimensions();
  auto cd = cols.dimensions();
  if (yd.size() != 2 || rd.size() != 2 || cd.size() != 2 || yd[1] != rd[1] || yd[1] > kMaxDim ||
      yd[1] < 1 || cd[0] != yd[0] || weights.element_count() != cols.element_count() ||
      rate.element_count() != cols.element_count() || hyper.element_count() != 4 || rd[0] < 1)
    return ffi::Error::InvalidArgument("umap transform: inconsistent shapes");
  Transform p;
  const int64_t m = yd[0];
  p.dim = yd[1];
  p.n = rd[0];
  p.k = cd[1];
  p.nsr = nsr;
  p.steps = seeds.element_count();
  p.num_steps = num_steps;
  p.a = hyper.typed_data()[0];
  p.b = hyper.typed_data()[1];
  p.gamma = hyper.typed_data()[2];
  p.lr = hyper.typed_data()[3];
  p.ref = ref.typed_data();
  p.cols = cols.typed_data();
  p.weights = weights.typed_data();
  p.rate = rate.typed_data();
  p.seeds = seeds.typed_data();
  p.y0 = y0.typed_data();
  p.out = out->typed_data();
  const int64_t blocks = (m + kLanes - 1) / kLanes;
  const int chunks = static_cast<int>(std::min<int64_t>(blocks, 4 * (pool.num_threads() + 1)));
  RunChunks(pool, chunks, [&](int c) {
    std::vector<int32_t> fired;
    for (int64_t blk = blocks * c / chunks; blk < blocks * (c + 1) / chunks; ++blk) {
      const int count = static_cast<int>(std::min<int64_t>(kLanes, m - blk * kLanes));
      if (p.dim == 2)
        TransformBlock<2>(p, blk * kLanes, count, fired);
      else if (p.dim == 3)
        TransformBlock<3>(p, blk * kLanes, count, fired);
      else
        TransformBlock<0>(p, blk * kLanes, count, fired);
    }
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxUmapLayout, LayoutImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // yt (dim, n)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // epoch0 ()
                                  .Arg<ffi::Buffer<ffi::U32>>()   // seeds (steps,)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // head (E,)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // tail (E,)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // rate (E,)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // negative weight (n,)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // a, b, gamma, learning rate
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("m")
                                  .Attr<int64_t>("decay_steps"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxUmapTransform, TransformImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // y0 (m, dim): the new points
                                  .Arg<ffi::Buffer<ffi::F32>>()   // the reference (n, dim)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // cols (m, k)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // weights (m, k)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // rate (m, k)
                                  .Arg<ffi::Buffer<ffi::U32>>()   // seeds (steps,)
                                  .Arg<ffi::Buffer<ffi::F32>>()   // a, b, gamma, learning rate
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("nsr")
                                  .Attr<int64_t>("num_steps"));
