// UMAP's negative-sampling layout on XLA:CPU, as an XLA FFI handler: all of a run's epochs in one
// call. Built and loaded on first use by latentjax/look/_umap_native.py (see there for why).
//
// The same synchronous epochs as _umap_kernels.layout_step, step for step: every update of an
// epoch is computed from the positions at its start (two buffers), so vertices can be updated in
// parallel, in any order, with the same result. Per epoch t (epoch e = epoch0 + t):
//   alpha = lr * (1 - e / decay_steps)
//   each edge (head i, tail j) fires when floor(e * rate) > floor((e - 1) * rate) and e >= 1;
//   att_i = sum over fired edges with d2 > 0 of clip(-2ab d2^b / (d2 (1 + a d2^b)) (y_i - y_j), 4)
//   rep_i = sum over s < m of clip(2 gamma b / ((1e-3 + d2) (1 + a d2^b)) (y_i - y_o), 4),
//           o = murmur3_finaliser(seed_t + (i m + s) * 0x9E3779B1) mod n  (the XLA path's draw)
//   y_i += 2 alpha att_i + (e >= 1 ? alpha : 0) * negative_weight_i * rep_i
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

ffi::Error LayoutImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> yt, ffi::Buffer<ffi::S32> epoch0,
                      ffi::Buffer<ffi::U32> seeds, ffi::Buffer<ffi::S32> head, ffi::Buffer<ffi::S32> tail,
                      ffi::Buffer<ffi::F32> rate, ffi::Buffer<ffi::F32> negw, ffi::Buffer<ffi::F32> hyper,
                      ffi::ResultBuffer<ffi::F32> out, int64_t m, int64_t decay_steps) {
  auto yd = yt.dimensions();
  if (yd.size() != 2 || yd[0] > kMaxDim || hyper.element_count() != 4 || negw.element_count() != yd[1] ||
      head.element_count() != tail.element_count() || head.element_count() != rate.element_count())
    return ffi::Error::InvalidArgument("umap layout: inconsistent shapes");
  const int64_t dim = yd[0], n = yd[1], edges = head.element_count();
  const int64_t steps = seeds.element_count();
  const float a = hyper.typed_data()[0], b = hyper.typed_data()[1];
  const float gamma = hyper.typed_data()[2], lr = hyper.typed_data()[3];
  const int32_t* hp = head.typed_data();
  const int32_t* tp = tail.typed_data();
  const float* rp = rate.typed_data();
  const float* wp = negw.typed_data();
  // Row offsets of the head-sorted edges.
  std::vector<int64_t> start(n + 1, 0);
  for (int64_t e = 0; e < edges; ++e) ++start[hp[e] + 1];
  for (int64_t i = 0; i < n; ++i) start[i + 1] += start[i];
  // Inside, positions are interleaved (n, dim): one cache line per random access, not dim.
  std::vector<float> buf_a(dim * n), buf_b(dim * n);
  for (int64_t q = 0; q < dim; ++q)
    for (int64_t i = 0; i < n; ++i) buf_a[i * dim + q] = yt.typed_data()[q * n + i];
  float* cur = buf_a.data();
  float* next = buf_b.data();
  const int chunks = static_cast<int>(std::min<int64_t>(n, 16 * (pool.num_threads() + 1)));
  for (int64_t t = 0; t < steps; ++t) {
    const int32_t e = epoch0.typed_data()[0] + static_cast<int32_t>(t);
    const float ef = static_cast<float>(e);
    const float alpha = lr * (1.0f - ef / static_cast<float>(decay_steps));
    const float rep_alpha = e >= 1 ? alpha : 0.0f;
    const uint32_t seed = seeds.typed_data()[t];
    const float* y = cur;
    float* y_new = next;
    RunChunks(pool, chunks, [&](int c) {
      const int64_t r0 = n * c / chunks, r1 = n * (c + 1) / chunks;
      // Per vertex: the pairs' offsets and squared distances first, then the kernel over all of
      // them in one loop (vectorised, exp/log from libmvec), then the clipped sums.
      std::vector<float> dd, d2s, g;
      for (int64_t i = r0; i < r1; ++i) {
        float att[kMaxDim] = {0}, rep[kMaxDim] = {0};
        const float* yi = y + i * dim;
        int64_t count = 0;
        const int64_t deg = start[i + 1] - start[i];
        dd.resize((deg + m) * dim);
        d2s.resize(deg + m);
        g.resize(deg + m);
        if (e >= 1) {
          for (int64_t k = start[i]; k < start[i + 1]; ++k) {
            const float r = rp[k];
            if (!(std::floor(ef * r) > std::floor((ef - 1.0f) * r))) continue;
            const float* yj = y + static_cast<int64_t>(tp[k]) * dim;
            float d2 = 0.0f;
            for (int64_t q = 0; q < dim; ++q) {
              const float d = yi[q] - yj[q];
              dd[count * dim + q] = d;
              d2 += d * d;
            }
            d2s[count++] = d2;
          }
        }
        const int64_t fired = count;
        for (int64_t s = 0; s < fired; ++s) {
          // Coincident points (d2 = 0) get 0; a safe d2 keeps inf/NaN out (-ffast-math assumes none).
          const float d2 = d2s[s] > 0.0f ? d2s[s] : 1.0f;
          const float d2b = PowB(d2, b);
          const float v = -2.0f * a * b * d2b / (d2 * (1.0f + a * d2b));
          g[s] = d2s[s] > 0.0f ? v : 0.0f;
        }
        for (int64_t s = 0; s < fired; ++s)
          for (int64_t q = 0; q < dim; ++q) att[q] += Clip(g[s] * dd[s * dim + q]);
        if (rep_alpha != 0.0f && wp[i] != 0.0f) {
          for (int64_t s = 0; s < m; ++s) {
            const int64_t o = Draw(seed, static_cast<uint32_t>(i * m + s)) % static_cast<uint32_t>(n);
            const float* yo = y + o * dim;
            float d2 = 0.0f;
            for (int64_t q = 0; q < dim; ++q) {
              const float d = yi[q] - yo[q];
              dd[s * dim + q] = d;
              d2 += d * d;
            }
            d2s[s] = d2;
          }
          for (int64_t s = 0; s < m; ++s) {
            const float d2 = d2s[s] > 0.0f ? d2s[s] : 1.0f;
            const float d2b = PowB(d2, b);
            const float v = 2.0f * gamma * b / ((1e-3f + d2) * (1.0f + a * d2b));
            g[s] = d2s[s] > 0.0f ? v : 0.0f;
          }
          for (int64_t s = 0; s < m; ++s)
            for (int64_t q = 0; q < dim; ++q) rep[q] += Clip(g[s] * dd[s * dim + q]);
        }
        const float rs = rep_alpha * wp[i];
        float* yn = y_new + i * dim;
        for (int64_t q = 0; q < dim; ++q) yn[q] = yi[q] + 2.0f * alpha * att[q] + rs * rep[q];
      }
    });
    std::swap(cur, next);
  }
  for (int64_t q = 0; q < dim; ++q)
    for (int64_t i = 0; i < n; ++i) out->typed_data()[q * n + i] = cur[i * dim + q];
  return ffi::Error::Success();
}

// The transform's layout (_umap_transform._step, every epoch from 0): new points move along their
// edges to the fixed reference, and away from nsr uniform reference points per firing edge,
//   o = murmur3_finaliser(seed_t + ((i k + s) nsr + u) * 0x9E3779B1) mod n  (the XLA path's draw)
//   y_i += alpha_t * (sum clip(att * diff, 4) + sum clip(rep * diff, 4)).
// The new points do not interact, so each runs all its epochs at once, in its own registers.
ffi::Error TransformImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y0, ffi::Buffer<ffi::F32> ref,
                         ffi::Buffer<ffi::S32> cols, ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> rate,
                         ffi::Buffer<ffi::U32> seeds, ffi::Buffer<ffi::F32> hyper,
                         ffi::ResultBuffer<ffi::F32> out, int64_t nsr, int64_t num_steps) {
  auto yd = y0.dimensions();
  auto rd = ref.dimensions();
  auto cd = cols.dimensions();
  if (yd.size() != 2 || rd.size() != 2 || cd.size() != 2 || yd[1] != rd[1] || yd[1] > kMaxDim ||
      cd[0] != yd[0] || weights.element_count() != cols.element_count() ||
      rate.element_count() != cols.element_count() || hyper.element_count() != 4 || rd[0] < 1)
    return ffi::Error::InvalidArgument("umap transform: inconsistent shapes");
  const int64_t m = yd[0], dim = yd[1], n = rd[0], k = cd[1], steps = seeds.element_count();
  const float a = hyper.typed_data()[0], b = hyper.typed_data()[1];
  const float gamma = hyper.typed_data()[2], lr = hyper.typed_data()[3];
  const float* rp = ref.typed_data();
  const int32_t* cp = cols.typed_data();
  const float* wp = weights.typed_data();
  const float* ratep = rate.typed_data();
  const uint32_t* sp = seeds.typed_data();
  const float* yp = y0.typed_data();
  float* op = out->typed_data();
  const int chunks = static_cast<int>(std::min<int64_t>(std::max<int64_t>(m, 1), 16 * (pool.num_threads() + 1)));
  RunChunks(pool, chunks, [&](int c) {
    for (int64_t i = m * c / chunks; i < m * (c + 1) / chunks; ++i) {
      float y[kMaxDim], move[kMaxDim], d[kMaxDim];
      for (int64_t q = 0; q < dim; ++q) y[q] = yp[i * dim + q];
      for (int64_t t = 0; t < steps; ++t) {
        const float ef = static_cast<float>(t);
        const float alpha = lr * (1.0f - ef / static_cast<float>(num_steps));
        for (int64_t q = 0; q < dim; ++q) move[q] = 0.0f;
        for (int64_t s = 0; s < k && t >= 1; ++s) {
          const float r = ratep[i * k + s];
          if (!(wp[i * k + s] > 0.0f) || !(std::floor(ef * r) > std::floor((ef - 1.0f) * r))) continue;
          const int64_t j = std::min<int64_t>(std::max<int32_t>(cp[i * k + s], 0), n - 1);  // as XLA clamps
          const float* yj = rp + j * dim;
          float d2 = 0.0f;
          for (int64_t q = 0; q < dim; ++q) {
            d[q] = y[q] - yj[q];
            d2 += d[q] * d[q];
          }
          if (d2 > 0.0f) {
            const float d2b = PowB(d2, b);
            const float g = -2.0f * a * b * d2b / (d2 * (1.0f + a * d2b));
            for (int64_t q = 0; q < dim; ++q) move[q] += Clip(g * d[q]);
          }
          for (int64_t u = 0; u < nsr; ++u) {
            const uint32_t slot = static_cast<uint32_t>((i * k + s) * nsr + u);
            const float* yo = rp + static_cast<int64_t>(Draw(sp[t], slot) % static_cast<uint32_t>(n)) * dim;
            float nd2 = 0.0f;
            for (int64_t q = 0; q < dim; ++q) {
              d[q] = y[q] - yo[q];
              nd2 += d[q] * d[q];
            }
            if (!(nd2 > 0.0f)) continue;
            const float g = 2.0f * gamma * b / ((1e-3f + nd2) * (1.0f + a * PowB(nd2, b)));
            for (int64_t q = 0; q < dim; ++q) move[q] += Clip(g * d[q]);
          }
        }
        for (int64_t q = 0; q < dim; ++q) y[q] += alpha * move[q];
      }
      for (int64_t q = 0; q < dim; ++q) op[i * dim + q] = y[q];
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
