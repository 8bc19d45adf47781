// The exact kNN's candidate search on XLA:CPU, as an XLA FFI handler: for each query, the `c`
// points of smallest squared distance by the matrix-product expansion, distances and selection
// fused so the (m, n) distance matrix never leaves the cache. Built and loaded on first use by
// latentjax/look/_knn_native.py (see there for why and for the layout).
//
// Inputs: q (m, d) queries, panels (t, d, 32) the points in tiles of 32 (point j of tile p at
// panels[p, :, j]; padding points anywhere), xs (t * 32,) the points' squared norms (+inf for
// padding: never chosen), skip (m,) a point index each query must not choose (-1: none), count
// (1,) how many leading queries to search. Outputs: idx (m, c) int32 and d2 (m, c) float32, the c
// smallest
//   d2_ij = max(|q_i|^2 + xs_j - 2 q_i . x_j, 0)           (direct = 0: the expansion)
//   d2_ij = sum_k (q_ik - x_jk)^2 + xs_j   (xs: 0 or inf)   (direct = 1: no cancellation)
// in increasing (d2, j) order: ties go to the smaller index, as XLA's top_k does.
//
// Threads: the queries are cut into blocks of 64 (RunChunks, latentjax/_native_pool.h); a block's
// rows are written by one thread, in one order, so the result does not depend on scheduling.
// Within a block, the points are read in chunks of 2,048 (a 400 KB panel for d = 50, held in L2)
// by register tiles of kRows queries x 32 points (8 with AVX-512, 2 with AVX2).
#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <limits>
#include <vector>

#include "../_native_pool.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using latentjax::RunChunks;

constexpr int kTile = 32;  // points per panel tile (_knn_native.TILE)
#if defined(__AVX512F__)
constexpr int kWidth = 16;
#else
constexpr int kWidth = 8;
#endif
typedef float V __attribute__((vector_size(kWidth * sizeof(float))));
constexpr int kVecs = kTile / kWidth;          // vectors per tile row
constexpr int kRows = (kWidth == 16) ? 8 : 2;  // queries per register tile (kRows * kVecs accumulators)
constexpr int kBlock = 64;                     // queries per thread chunk (a multiple of kRows)
constexpr int kChunkTiles = 64;                // tiles per point chunk
constexpr float kInf = std::numeric_limits<float>::infinity();

// (d2, j) as one integer, d2's bits above j's: for d2 >= 0 the integers order as (d2, j) do.
inline uint64_t Key(float v, int32_t j) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return (static_cast<uint64_t>(bits) << 32) | static_cast<uint32_t>(j);
}

inline float KeyValue(uint64_t key) {
  const uint32_t bits = static_cast<uint32_t>(key >> 32);
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// The c smallest keys seen so far, in a buffer compacted when full (nth_element).
struct Best {
  std::vector<uint64_t> buf;
  int count = 0, c = 0;
  float thr = kInf;  // a pair enters only when d2 < thr: the c-th smallest once the buffer was full
  void Reset(int c_, int cap) {
    c = c_;
    buf.resize(cap);
    count = 0;
    thr = kInf;
  }
  void Push(float v, int32_t j) {
    buf[count++] = Key(v, j);
    if (count == static_cast<int>(buf.size())) {
      std::nth_element(buf.begin(), buf.begin() + (c - 1), buf.begin() + count);
      count = c;
      thr = KeyValue(buf[c - 1]);  // later pairs of this d2 have larger j: they lose the tie
    }
  }
  void Write(int32_t* idx, float* d2) {
    const int keep = std::min(count, c);
    std::nth_element(buf.begin(), buf.begin() + std::max(keep - 1, 0), buf.begin() + count);
    std::sort(buf.begin(), buf.begin() + keep);
    for (int s = 0; s < c; ++s) {
      idx[s] = s < keep ? static_cast<int32_t>(static_cast<uint32_t>(buf[s])) : 0;
      d2[s] = s < keep ? KeyValue(buf[s]) : kInf;
    }
  }
};

inline V Load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

inline V Splat(float a) { return a - V{}; }  // GCC broadcasts a scalar operand; a - 0 is a

// Bit l set where lane l of s is below thr.
inline uint32_t Below(V s, float thr) {
#if defined(__AVX512F__)
  return _mm512_cmp_ps_mask(reinterpret_cast<__m512>(s), _mm512_set1_ps(thr), _CMP_LT_OQ);
#elif defined(__AVX__)
  return _mm256_movemask_ps(_mm256_cmp_ps(reinterpret_cast<__m256>(s), _mm256_set1_ps(thr), _CMP_LT_OQ));
#else
  uint32_t bits = 0;
  for (int l = 0; l < kWidth; ++l) bits |= static_cast<uint32_t>(s[l] < thr) << l;
  return bits;
#endif
}

// One register tile: rows r .. r + kRows of the block against the tile p (points j0 .. j0 + 32).
// Direct: sum((q - x)^2) + xs (xs 0, or +inf for padding), without the expansion's cancellation.
template <bool Direct>
inline void Tile(const float* q, const float* qsq, const float* panel, const float* xs, int64_t d,
                 int64_t j0, const int32_t* skip, Best* best) {
  V acc[kRows][kVecs];
  for (int i = 0; i < kRows; ++i)
    for (int v = 0; v < kVecs; ++v) acc[i][v] = Splat(0.0f);
  for (int64_t k = 0; k < d; ++k) {
    V xv[kVecs];
    for (int v = 0; v < kVecs; ++v) xv[v] = Load(panel + k * kTile + v * kWidth);
    for (int i = 0; i < kRows; ++i) {
      const V qi = Splat(q[i * d + k]);
      for (int v = 0; v < kVecs; ++v) {
        if (Direct) {
          const V diff = qi - xv[v];
          acc[i][v] += diff * diff;
        } else {
          acc[i][v] += qi * xv[v];
        }
      }
    }
  }
  V xsv[kVecs];
  for (int v = 0; v < kVecs; ++v) xsv[v] = Load(xs + j0 + v * kWidth);
  const V zero = Splat(0.0f), two = Splat(2.0f);
  for (int i = 0; i < kRows; ++i) {
    V s[kVecs];
    const V qs = Splat(qsq[i]);
    V lo = Splat(kInf);
    for (int v = 0; v < kVecs; ++v) {
      if (Direct) {
        s[v] = acc[i][v] + xsv[v];
      } else {
        V t = qs + xsv[v] - two * acc[i][v];
        s[v] = t > zero ? t : zero;
      }
      lo = s[v] < lo ? s[v] : lo;
    }
    float m = lo[0];
    for (int l = 1; l < kWidth; ++l) m = lo[l] < m ? lo[l] : m;
    if (!(m < best[i].thr)) continue;
    float row[kTile];
    std::memcpy(row, s, sizeof(row));
    const int64_t own = skip[i] - j0;
    if (own >= 0 && own < kTile) row[own] = kInf;
    for (int v = 0; v < kVecs; ++v) {
      // the lanes below the threshold, as a bit mask (the threshold only falls within the loop)
      uint32_t bits = Below(s[v], best[i].thr);
      while (bits) {
        const int l = v * kWidth + __builtin_ctz(bits);
        bits &= bits - 1;
        if (row[l] < best[i].thr) best[i].Push(row[l], static_cast<int32_t>(j0 + l));
      }
    }
  }
}

ffi::Error CandidatesImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> panels,
                          ffi::Buffer<ffi::F32> xs, ffi::Buffer<ffi::S32> skip, ffi::Buffer<ffi::S32> count,
                          ffi::ResultBuffer<ffi::S32> idx, ffi::ResultBuffer<ffi::F32> d2, int64_t direct) {
  auto qd = q.dimensions();
  auto pd = panels.dimensions();
  auto od = idx->dimensions();
  if (qd.size() != 2 || pd.size() != 3 || pd[1] != qd[1] || pd[2] != kTile || xs.dimensions().size() != 1 ||
      xs.dimensions()[0] != pd[0] * kTile || skip.dimensions().size() != 1 || skip.dimensions()[0] != qd[0] ||
      od.size() != 2 || d2->dimensions().size() != 2 || od[0] != qd[0] || d2->dimensions()[0] != qd[0] ||
      d2->dimensions()[1] != od[1])
    return ffi::Error::InvalidArgument(
        "knn candidates: expected q (m, d), panels (t, d, 32), xs (t * 32,), skip (m,), outputs (m, c)");
  if (count.element_count() != 1) return ffi::Error::InvalidArgument("knn candidates: count must be (1,)");
  // only the first `count` queries are searched (the rest of the outputs are left as they are)
  const int64_t m = std::min<int64_t>(qd[0], std::max<int32_t>(count.typed_data()[0], 0));
  const int64_t d = qd[1], tiles = pd[0];
  const int c = static_cast<int>(od[1]);
  if (c < 1 || c > pd[0] * kTile) return ffi::Error::InvalidArgument("knn candidates: c must be in [1, n]");
  const float* qp = q.typed_data();
  const float* pp = panels.typed_data();
  const float* xp = xs.typed_data();
  const int32_t* sp = skip.typed_data();
  int32_t* ip = idx->typed_data();
  float* dp = d2->typed_data();
  const int cap = std::max(2 * c, c + 64);
  const int blocks = static_cast<int>((m + kBlock - 1) / kBlock);
  RunChunks(pool, blocks, [&](int b) {
    const int64_t r0 = static_cast<int64_t>(b) * kBlock, rows = std::min<int64_t>(kBlock, m - r0);
    // The block's queries, padded to whole register tiles with copies of its first row.
    std::vector<float> qb(kBlock * d), qsq(kBlock);
    std::vector<int32_t> sk(kBlock, -1);
    std::vector<Best> best(kBlock);
    for (int64_t i = 0; i < kBlock; ++i) {
      const int64_t src = r0 + (i < rows ? i : 0);
      std::memcpy(&qb[i * d], qp + src * d, d * sizeof(float));
      float s = 0.0f;
      for (int64_t k = 0; k < d; ++k) s += qb[i * d + k] * qb[i * d + k];
      qsq[i] = s;
      sk[i] = sp[src];
      best[i].Reset(c, cap);
    }
    for (int64_t t0 = 0; t0 < tiles; t0 += kChunkTiles) {
      const int64_t t1 = std::min<int64_t>(tiles, t0 + kChunkTiles);
      for (int64_t i = 0; i < kBlock; i += kRows)
        for (int64_t t = t0; t < t1; ++t)
          if (direct)
            Tile<true>(&qb[i * d], &qsq[i], pp + t * d * kTile, xp, d, t * kTile, &sk[i], &best[i]);
          else
            Tile<false>(&qb[i * d], &qsq[i], pp + t * d * kTile, xp, d, t * kTile, &sk[i], &best[i]);
    }
    for (int64_t i = 0; i < rows; ++i) best[i].Write(ip + (r0 + i) * c, dp + (r0 + i) * c);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxKnnCandidates, CandidatesImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("direct"));
