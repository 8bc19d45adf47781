// t-SNE's attractive force on XLA:CPU, as an XLA FFI handler; built and loaded on first use by
// latentjax/look/_tsne_native.py (see there for why).
//
// Input: the embedding y (n, e) and P in the sliced-ELL layout of _fitsne.Pieces: owner (v,)
// sorted, cols (v, width), weights (v, width) (zero weights: padding). Output (n, e):
//   out_i = sum over the pieces of row i, over their slots j: w_ij (y_i - y_j) / (1 + |y_i - y_j|^2).
// Each row is summed in slot order by one thread, so the result does not depend on scheduling.
//
// Threads: the rows are cut into chunks (RunChunks, latentjax/_native_pool.h); a chunk owns its
// rows, so no two threads write one row.
#include <algorithm>
#include <cstdint>

#include "../_native_pool.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using latentjax::RunChunks;

template <int E>
void Pieces(const float* y, int64_t e, const int32_t* owner, const int32_t* cols, const float* w,
            int64_t width, int64_t lo, int64_t hi, float* out) {
  const int64_t dim = E > 0 ? E : e;
  for (int64_t v = lo; v < hi; ++v) {
    const int64_t i = owner[v];
    const float* yi = y + i * dim;
    float acc[E > 0 ? E : 16] = {0};
    float* o = out + i * dim;
    for (int64_t s = 0; s < width; ++s) {
      const float wv = w[v * width + s];
      if (wv == 0.0f) continue;
      const float* yj = y + static_cast<int64_t>(cols[v * width + s]) * dim;
      float d2 = 0.0f;
      for (int64_t c = 0; c < dim; ++c) {
        const float d = yi[c] - yj[c];
        d2 += d * d;
      }
      const float q = wv / (1.0f + d2);
      for (int64_t c = 0; c < dim; ++c) acc[c] += q * (yi[c] - yj[c]);
    }
    for (int64_t c = 0; c < dim; ++c) o[c] += acc[c];
  }
}

ffi::Error AttractionImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::S32> owner,
                          ffi::Buffer<ffi::S32> cols, ffi::Buffer<ffi::F32> weights,
                          ffi::ResultBuffer<ffi::F32> out) {
  auto yd = y.dimensions();
  auto cd = cols.dimensions();
  auto wd = weights.dimensions();
  if (yd.size() != 2 || cd.size() != 2 || owner.dimensions().size() != 1 ||
      wd.size() != 2 || wd[0] != cd[0] || wd[1] != cd[1] || owner.dimensions()[0] != cd[0])
    return ffi::Error::InvalidArgument("attraction: expected y (n, e), owner (v,), cols and weights (v, width)");
  const int64_t n = yd[0], e = yd[1], v = cd[0], width = cd[1];
  if (e > 16) return ffi::Error::InvalidArgument("attraction: at most 16 embedding dimensions");
  const float* yp = y.typed_data();
  const int32_t* op = owner.typed_data();
  const int32_t* cp = cols.typed_data();
  const float* wp = weights.typed_data();
  float* outp = out->typed_data();
  std::fill(outp, outp + n * e, 0.0f);
  if (v == 0) return ffi::Error::Success();
  // Chunks of rows; a chunk's pieces are those whose owner lies in its rows (owner is sorted).
  const int chunks = static_cast<int>(std::min<int64_t>(v, 8 * (pool.num_threads() + 1)));
  RunChunks(pool, chunks, [&](int c) {
    const int32_t r0 = static_cast<int32_t>(n * c / chunks), r1 = static_cast<int32_t>(n * (c + 1) / chunks);
    const int64_t lo = std::lower_bound(op, op + v, r0) - op;
    const int64_t hi = std::lower_bound(op, op + v, r1) - op;
    if (e == 2)
      Pieces<2>(yp, e, op, cp, wp, width, lo, hi, outp);
    else
      Pieces<0>(yp, e, op, cp, wp, width, lo, hi, outp);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LatentjaxTsneAttraction, AttractionImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
