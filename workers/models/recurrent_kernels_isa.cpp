// The kernels of recurrent_kernels.h for one instruction set: CMake compiles this file once per
// set with its -m flags and KDX_KERNEL_ISA naming the namespace (avx512, avx2). Written with
// GCC vector extensions over 16 floats, so one text serves both widths (a 16-float vector is
// one AVX-512 register or two AVX2 ones).
#include <algorithm>
#include <cstring>
#include <vector>

#include "workers/models/recurrent_kernels.h"

#ifndef KDX_KERNEL_ISA
#error "KDX_KERNEL_ISA names the instruction set this copy is compiled for"
#endif

namespace kdx::models::kernels::KDX_KERNEL_ISA {
namespace {

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));

inline v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, v16 v) {
  std::memcpy(p, &v, sizeof v);
}
// Listed, not v16{} + x: adding 0 is not an identity for -0.0, so the compiler would keep an
// add before every broadcast of the recurrent product.
inline v16 splat(float x) {
  return v16{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

// e^x for x in [-87, 88] within about 2 ulp: x = n ln 2 + r, |r| <= ln 2 / 2, e^r by Cephes'
// degree-6 polynomial, 2^n built in the exponent bits. Below -87 it clamps (e^-87 ~ 1.6e-38,
// where every use here is already 0 or 1 in float).
inline v16 exp16(v16 x) {
  const v16 hi = splat(88.f), lo = splat(-87.f);
  x = x < hi ? x : hi;
  x = x > lo ? x : lo;
  const float round_magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  v16 t = x * 1.44269504088896341f + round_magic;
  v16 n = t - round_magic;
  v16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v16 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  i16 e = (__builtin_bit_cast(i16, t) - 0x4B400000 + 127) << 23;
  return p * __builtin_bit_cast(v16, e);
}
inline v16 sigmoid16(v16 x) {
  return 1.f / (1.f + exp16(-x));
}
inline v16 tanh16(v16 x) {
  return 2.f / (1.f + exp16(-2.f * x)) - 1.f;
}

// out[r][0 .. 16Q) = add[r][..] + h[r] . W^T over one panel of 16Q columns stored row by row
// ([k][stride], 16Q of each row read: one contiguous stream when stride is 16Q), R rows at once: R
// x Q independent accumulators, each panel row loaded once for all R rows.
template <int R, int Q>
void panel(const float* w, int64_t k, int64_t stride, const float* const* h,
           const float* const* add, float* const* out) {
  v16 acc[R][Q];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < Q; ++q) acc[r][q] = load(add[r] + q * 16);
  for (int64_t kk = 0; kk < k; ++kk) {
    v16 wv[Q];
#pragma GCC unroll 8
    for (int q = 0; q < Q; ++q) wv[q] = load(w + kk * stride + q * 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      v16 hv = splat(h[r][kk]);
#pragma GCC unroll 8
      for (int q = 0; q < Q; ++q) acc[r][q] += hv * wv[q];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < Q; ++q) store(out[r] + q * 16, acc[r][q]);
}

// Panel width and rows per block: enough accumulators to hide the FMA latency, few enough to
// stay in registers (32 AVX-512 registers; 16 AVX2 ones, each v16 taking two).
#ifdef KDX_KERNEL_WIDE
constexpr int kWide = 8, kRows = 2, kBlock = 4;
#else
constexpr int kWide = 4, kRows = 1, kBlock = 1;
#endif

// out[b] = add[b] + h[b] . W^T for `rows` rows given by pointers. Few rows (batch 1): a row
// (or two) against each panel in turn, the matrix streamed once. Many rows: each 64-column
// slice of a panel against every block of rows (4 with AVX-512) in turn, so the slice is read from
// L1 while the rows pass, not once per block from L2.
void product(const PackedMatrix& w, int64_t rows, const float* const* h, const float* const* add,
             float* const* out) {
  const float* base = w.data.data();
  const float* hp[4];
  const float* ap[4];
  float* op[4];
  auto point = [&](int64_t r0, int64_t nr, int64_t c) {
    for (int64_t i = 0; i < nr; ++i) {
      hp[i] = h[r0 + i];
      ap[i] = add[r0 + i] + c;
      op[i] = out[r0 + i] + c;
    }
  };
  if (rows >= 4) {
    for (int64_t c = 0; c < w.n;) {
      const int64_t width = w.n - c >= 16 * kWide ? 16 * kWide : 64;
      for (int64_t half = 0; half < width; half += 64) {
        const float* pw = base + c * w.k + half;
        int64_t r0 = 0;
        for (; r0 + kBlock <= rows; r0 += kBlock) {
          point(r0, kBlock, c + half);
          panel<kBlock, 4>(pw, w.k, width, hp, ap, op);
        }
        for (; r0 < rows; ++r0) {
          point(r0, 1, c + half);
          panel<1, 4>(pw, w.k, width, hp, ap, op);
        }
      }
      c += width;
    }
    return;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t nr = std::min<int64_t>(kRows, rows - r0);
    for (int64_t c = 0; c < w.n;) {
      const int64_t width = w.n - c >= 16 * kWide ? 16 * kWide : 64;
      point(r0, nr, c);
      const float* pw = base + c * w.k;
      if (width == 16 * kWide) {
        if (nr == kRows)
          panel<kRows, kWide>(pw, w.k, width, hp, ap, op);
        else
          for (int64_t i = 0; i < nr; ++i) panel<1, kWide>(pw, w.k, width, hp + i, ap + i, op + i);
      } else {
        for (int64_t i = 0; i < nr; ++i) panel<1, 4>(pw, w.k, width, hp + i, ap + i, op + i);
      }
      c += width;
    }
  }
}

}  // namespace

PackedMatrix pack_transposed(const float* w, int64_t n, int64_t k) {
  PackedMatrix m;
  m.n = n;
  m.k = k;
  m.data.resize(static_cast<size_t>(n * k));
  for (int64_t c = 0; c < n;) {  // the panels product() walks, in its order
    const int64_t width = n - c >= 16 * kWide ? 16 * kWide : 64;
    float* dst = m.data.data() + c * k;
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < width; ++j) dst[kk * width + j] = w[(c + j) * k + kk];
    c += width;
  }
  return m;
}

void lstm_direction(const LstmDirection& a) {
  const int64_t B = a.batch, T = a.time, H = a.hidden, N = 4 * H;
  std::vector<float> h(static_cast<size_t>(B * H), 0.f), c(static_cast<size_t>(B * H), 0.f),
      gates(static_cast<size_t>(B * N));
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) longest = std::max(longest, a.lengths[b]);
  std::vector<const float*> hp(static_cast<size_t>(B)), xp(static_cast<size_t>(B));
  std::vector<float*> gp(static_cast<size_t>(B));
  std::vector<int64_t> rows(static_cast<size_t>(B)), at(static_cast<size_t>(B));
  for (int64_t step = 0; step < longest; ++step) {
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (step >= a.lengths[b]) continue;
      int64_t t = a.reverse ? a.lengths[b] - 1 - step : step;
      rows[static_cast<size_t>(n)] = b;
      at[static_cast<size_t>(n)] = t;
      hp[static_cast<size_t>(n)] = h.data() + b * H;
      xp[static_cast<size_t>(n)] = a.xp + (b * T + t) * N;
      gp[static_cast<size_t>(n)] = gates.data() + b * N;
      ++n;
    }
    product(*a.w_hh, n, hp.data(), xp.data(), gp.data());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = rows[static_cast<size_t>(i)], t = at[static_cast<size_t>(i)];
      const float* g = gates.data() + b * N;
      float* hb = h.data() + b * H;
      float* cb = c.data() + b * H;
      float* o = a.out + (b * T + t) * a.out_stride;
      for (int64_t j = 0; j < H; j += 16) {
        v16 ig = sigmoid16(load(g + j)), fg = sigmoid16(load(g + H + j));
        v16 gg = tanh16(load(g + 2 * H + j)), og = sigmoid16(load(g + 3 * H + j));
        v16 cn = fg * load(cb + j) + ig * gg;
        v16 hn = og * tanh16(cn);
        store(cb + j, cn);
        store(hb + j, hn);
        store(o + j, hn);
      }
    }
  }
}

void sru_layer(const SruLayerArgs& a) {
  const int64_t T = a.time, D = a.hidden, K = a.blocks;
  for (int64_t b = 0; b < a.batch; ++b) {
    const int64_t len = a.lengths[b];
    for (int64_t dir = 0; dir < 2; ++dir) {
      const float* vf = a.v + (dir * 2) * D;
      const float* vr = a.v + (dir * 2 + 1) * D;
      const float* bf = a.b + (dir * 2) * D;
      const float* br = a.b + (dir * 2 + 1) * D;
      for (int64_t j = 0; j < D; j += 16) {
        const v16 vfj = load(vf + j), vrj = load(vr + j), bfj = load(bf + j), brj = load(br + j);
        v16 c = splat(0.f);
        for (int64_t step = 0; step < len; ++step) {
          const int64_t t = dir ? len - 1 - step : step;
          const float* u = a.u + ((b * T + t) * 2 + dir) * K * D + j;
          const v16 x_tilde = load(u), fu = load(u + D), ru = load(u + 2 * D);
          const v16 xh =
              K == 4 ? load(u + 3 * D) : load(a.x + (b * T + t) * 2 * D + dir * D + j) * a.scale_x;
          const v16 f = sigmoid16(fu + vfj * c + bfj);
          const v16 r = sigmoid16(ru + vrj * c + brj);
          c = f * c + (1.f - f) * x_tilde;
          store(a.out + (b * T + t) * 2 * D + dir * D + j, r * c + (1.f - r) * xh);
        }
      }
    }
  }
}

float stream_sum(const float* p, int64_t n) {
  v16 acc[8] = {};
  int64_t i = 0;
  for (; i + 128 <= n; i += 128)
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) acc[q] += load(p + i + q * 16);
  v16 all = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  float s = 0.f;
  for (int j = 0; j < 16; ++j) s += all[j];
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace kdx::models::kernels::KDX_KERNEL_ISA
