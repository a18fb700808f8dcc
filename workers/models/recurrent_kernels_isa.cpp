// The kernels of recurrent_kernels.h for one instruction set: CMake compiles this file once per
// set with its -m flags and KDX_KERNEL_ISA naming the namespace (avx512, avx2). Written with
// GCC vector extensions over 16 floats, so one text serves both widths (a 16-float vector is
// one AVX-512 register or two AVX2 ones).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
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

// out[r][0 .. 16Q) = add[r][off[q] ..] + h[r] . W^T over one panel of 16Q columns stored row by
// row ([k][stride], 16Q of each row read: one contiguous stream when stride is 16Q), R rows at
// once: R x Q independent accumulators, each panel row loaded once for all R rows. off maps the
// panel's q-th 16 columns to where their addend lies (the LSTM's gate order differs from the
// packed one).
template <int R, int Q>
void panel(const float* w, int64_t k, int64_t stride, const float* const* h,
           const float* const* add, const int64_t* off, float* const* out) {
  v16 acc[R][Q];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < Q; ++q) acc[r][q] = load(add[r] + off[q]);
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
// stay in registers (32 AVX-512 registers; 16 AVX2 ones, each v16 taking two). At many rows,
// blocks of kBlock rows against slices of 16 kSliver columns; measured at batch 32 against
// 4 x 4: 8 rows x 2 vectors slower (48.5 against 40.7 ms, hidden 256), 6 x 4 within noise.
#ifdef KDX_KERNEL_WIDE
constexpr int kWide = 8, kRows = 2, kBlock = 4, kSliver = 4;
#else
constexpr int kWide = 4, kRows = 1, kBlock = 1, kSliver = 4;
#endif

int64_t panel_width(int64_t n, int64_t c) {
  return n - c >= 16 * kWide ? 16 * kWide : 64;
}

// The packed LSTM matrix's columns hold, per 16 hidden units, their i, f, g, o gates side by side
// (64 columns); the addends (x W_ih^T + b) keep PyTorch's order, [i | f | g | o] of hidden each.
void gate_offsets(int64_t col, int count, int64_t hidden, int64_t* off) {
  for (int q = 0; q < count; ++q, col += 16) off[q] = (col % 64) / 16 * hidden + col / 64 * 16;
}

// out[b][c0 .. c1) = add[b] + h[b] . W^T over the packed columns [c0, c1) (panel bounds), for
// `rows` rows given by pointers (out[b] points at column 0). Few rows (batch 1): a row (or two)
// against each panel in turn, the matrix streamed once. Many rows: each 64-column slice of a
// panel against every block of rows (4 with AVX-512) in turn, so the slice is read from L1 while
// the rows pass, not once per block from L2.
void product(const PackedMatrix& w, int64_t c0, int64_t c1, int64_t rows, int64_t hidden,
             const float* const* h, const float* const* add, float* const* out) {
  const float* base = w.data.data();
  const float* hp[8];
  const float* ap[8];
  float* op[8];
  int64_t off[8];
  auto point = [&](int64_t r0, int64_t nr, int64_t c) {
    for (int64_t i = 0; i < nr; ++i) {
      hp[i] = h[r0 + i];
      ap[i] = add[r0 + i];
      op[i] = out[r0 + i] + c;
    }
  };
  if (rows >= 4) {
    for (int64_t c = c0; c < c1;) {
      const int64_t width = panel_width(w.n, c);
      for (int64_t part = 0; part < width; part += 16 * kSliver) {
        const float* pw = base + c * w.k + part;
        gate_offsets(c + part, kSliver, hidden, off);
        int64_t r0 = 0;
        for (; r0 + kBlock <= rows; r0 += kBlock) {
          point(r0, kBlock, c + part);
          panel<kBlock, kSliver>(pw, w.k, width, hp, ap, off, op);
        }
        for (; r0 < rows; ++r0) {
          point(r0, 1, c + part);
          panel<1, kSliver>(pw, w.k, width, hp, ap, off, op);
        }
      }
      c += width;
    }
    return;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t nr = std::min<int64_t>(kRows, rows - r0);
    for (int64_t c = c0; c < c1;) {
      const int64_t width = panel_width(w.n, c);
      point(r0, nr, c);
      gate_offsets(c, static_cast<int>(width / 16), hidden, off);
      const float* pw = base + c * w.k;
      if (width == 16 * kWide) {
        if (nr == kRows)
          panel<kRows, kWide>(pw, w.k, width, hp, ap, off, op);
        else
          for (int64_t i = 0; i < nr; ++i)
            panel<1, kWide>(pw, w.k, width, hp + i, ap + i, off, op + i);
      } else {
        for (int64_t i = 0; i < nr; ++i) panel<1, 4>(pw, w.k, width, hp + i, ap + i, off, op + i);
      }
      c += width;
    }
  }
}

// The threads of one team meeting after every step of a recurrence. A step lasts microseconds
// and OpenMP's own barrier sleeps in the kernel between them (measured: about 6 ms more than
// this one over the 256 steps of the 300/512 student), so they spin, pausing; after many
// spins they yield, in case the team shares its cores with other work.
class SpinBarrier {
 public:
  void set_team(int n) { n_ = n; }
  void wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < 20000)
        __builtin_ia32_pause();
      else
        std::this_thread::yield();
    }
  }

 private:
  int n_ = 1;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

// What the parts of one direction share: h double-buffered (a step reads all of h while each
// part writes its slice of the next), c and the gates (each part its own columns).
struct LstmShared {
  AlignedFloats h[2], c, gates;
  int64_t longest = 0;
  std::vector<int64_t> starts;  // the packed matrix's panel bounds, then its width
  explicit LstmShared(const LstmDirection& a) {
    const int64_t B = a.batch, H = a.hidden, N = 4 * H;
    for (auto& v : h) v.assign(static_cast<size_t>(B * H), 0.f);
    c.assign(static_cast<size_t>(B * H), 0.f);
    gates.resize(static_cast<size_t>(B * N));
    for (int64_t b = 0; b < B; ++b) longest = std::max(longest, a.lengths[b]);
    for (int64_t col = 0; col < N; col += panel_width(N, col)) starts.push_back(col);
    starts.push_back(N);
  }
  // Part p of `parts`: a run of whole panels (empty where there are more parts than panels).
  int64_t bound(int64_t p, int64_t parts) const {
    const int64_t panels = static_cast<int64_t>(starts.size()) - 1;
    return starts[static_cast<size_t>(p * panels / parts)];
  }
};

// The packed columns [c0, c1) of every step, and their hidden units' cell updates. With a
// barrier, every thread of the enclosing OpenMP team runs this on its own columns and all meet
// there after each step.
void lstm_part(const LstmDirection& a, LstmShared& s, int64_t c0, int64_t c1, SpinBarrier* sync) {
  const int64_t B = a.batch, T = a.time, H = a.hidden, N = 4 * H;
  std::vector<const float*> hp(static_cast<size_t>(B)), xp(static_cast<size_t>(B));
  std::vector<float*> gp(static_cast<size_t>(B));
  std::vector<int64_t> rows(static_cast<size_t>(B)), at(static_cast<size_t>(B));
  for (int64_t step = 0; step < s.longest; ++step) {
    const float* h = s.h[step % 2].data();
    float* h_next = s.h[(step + 1) % 2].data();
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (step >= a.lengths[b]) continue;
      const size_t i = static_cast<size_t>(n++);
      const int64_t t = a.reverse ? a.lengths[b] - 1 - step : step;
      rows[i] = b;
      at[i] = t;
      hp[i] = h + b * H;
      xp[i] = a.xp + (b * T + t) * N;
      gp[i] = s.gates.data() + b * N;
    }
    product(*a.w_hh, c0, c1, n, H, hp.data(), xp.data(), gp.data());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = rows[static_cast<size_t>(i)], t = at[static_cast<size_t>(i)];
      float* o = a.out + (b * T + t) * a.out_stride;
      for (int64_t col = c0; col < c1; col += 64) {
        const int64_t j = col / 4;  // the 16 hidden units whose gates are these 64 columns
        const float* g = s.gates.data() + b * N + col;
        float* cb = s.c.data() + b * H + j;
        v16 ig = sigmoid16(load(g)), fg = sigmoid16(load(g + 16));
        v16 gg = tanh16(load(g + 32)), og = sigmoid16(load(g + 48));
        v16 cn = fg * load(cb) + ig * gg;
        v16 hn = og * tanh16(cn);
        store(cb, cn);
        store(h_next + b * H + j, hn);
        store(o + j, hn);
      }
    }
    if (sync) sync->wait();  // the next step reads all of h_next
  }
}

}  // namespace

PackedMatrix pack_transposed(const float* w, int64_t n, int64_t k) {
  PackedMatrix m;
  m.n = n;
  m.k = k;
  m.data.resize(static_cast<size_t>(n * k));
  for (int64_t c = 0; c < n;) {  // the panels product() walks, in its order
    const int64_t width = panel_width(n, c);
    float* dst = m.data.data() + c * k;
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < width; ++j) dst[kk * width + j] = w[(c + j) * k + kk];
    c += width;
  }
  return m;
}

PackedMatrix pack_lstm(const float* w_hh, int64_t hidden) {
  std::vector<float> w(static_cast<size_t>(4 * hidden * hidden));
  for (int64_t row = 0; row < 4 * hidden; ++row) {  // packed row: block, gate, unit in block
    const int64_t block = row / 64, gate = row % 64 / 16, unit = row % 16;
    std::memcpy(w.data() + row * hidden, w_hh + (gate * hidden + block * 16 + unit) * hidden,
                static_cast<size_t>(hidden) * sizeof(float));
  }
  return pack_transposed(w.data(), 4 * hidden, hidden);
}

void lstm_layer(const LstmDirection& fwd, const LstmDirection& bwd, int threads, bool split,
                int64_t fit_threads) {
  const LstmDirection* dirs[2] = {&fwd, &bwd};
  LstmShared shared[2] = {LstmShared(fwd), LstmShared(bwd)};
  const int64_t N = 4 * fwd.hidden;
  // The team is whatever OpenMP gives (1 inside another parallel region): every choice below
  // holds for any team size, so no barrier can wait for a thread that does not exist.
  if (threads <= 1 || omp_in_parallel()) {
    for (int d = 0; d < 2; ++d) lstm_part(*dirs[d], shared[d], 0, N, nullptr);
  } else if (split) {
    // No more threads than cores, than panels, nor than it takes for each share of W_hh to fit
    // in half of one core's L2 (beyond that they would only spin at every step's barrier).
    const int64_t panels = static_cast<int64_t>(shared[0].starts.size()) - 1;
    const int team_size = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>({threads, omp_get_num_procs(), panels, fit_threads})));
    SpinBarrier sync;
#pragma omp parallel num_threads(team_size)
    {
      const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
#pragma omp single
      sync.set_team(static_cast<int>(team));  // the single's own barrier publishes it
      for (int d = 0; d < 2; ++d)
        lstm_part(*dirs[d], shared[d], shared[d].bound(me, team), shared[d].bound(me + 1, team),
                  team > 1 ? &sync : nullptr);
    }
  } else {
#pragma omp parallel num_threads(2)
    {
      const int team = omp_get_num_threads(), me = omp_get_thread_num();
      for (int d = 0; d < 2; ++d)
        if (team == 1 || d == me) lstm_part(*dirs[d], shared[d], 0, N, nullptr);
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

// Both return the hidden units they did (a multiple of 16); the caller does the rest.
int64_t lstm_cell_forward(const LstmCellForward& a) {
  const int64_t H = a.hidden, done = H - H % 16;
  for (int64_t r = 0; r < a.rows; ++r) {
    float* g = a.g + r * a.g_stride;
    const float* cp = a.c_prev ? a.c_prev + r * a.c_stride : nullptr;
    float* c = a.c + r * a.c_stride;
    float* h = a.h + r * a.h_stride;
    for (int64_t j = 0; j < done; j += 16) {
      v16 ig = sigmoid16(load(g + j)), fg = sigmoid16(load(g + H + j));
      v16 gg = tanh16(load(g + 2 * H + j)), og = sigmoid16(load(g + 3 * H + j));
      v16 cn = cp ? fg * load(cp + j) + ig * gg : ig * gg;
      store(g + j, ig);
      store(g + H + j, fg);
      store(g + 2 * H + j, gg);
      store(g + 3 * H + j, og);
      store(c + j, cn);
      store(h + j, og * tanh16(cn));
    }
  }
  return done;
}

int64_t lstm_cell_backward(const LstmCellBackward& a) {
  const int64_t H = a.hidden, done = H - H % 16;
  const v16 one = splat(1.f);
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* g = a.g + r * a.g_stride;
    const float* cp = a.c_prev ? a.c_prev + r * a.c_stride : nullptr;
    const float* c = a.c + r * a.c_stride;
    const float* dy = a.dy + r * a.dy_stride;
    const float* dhn = a.dh ? a.dh + r * H : nullptr;
    float* dc = a.dc + r * H;
    float* dg = a.dg + r * a.dg_stride;
    for (int64_t j = 0; j < done; j += 16) {
      v16 ig = load(g + j), fg = load(g + H + j), gg = load(g + 2 * H + j),
          og = load(g + 3 * H + j);
      v16 dh = dhn ? load(dy + j) + load(dhn + j) : load(dy + j);
      v16 tc = tanh16(load(c + j));
      v16 dct = load(dc + j) + dh * og * (one - tc * tc);
      v16 cprev = cp ? load(cp + j) : splat(0.f);
      store(dg + j, dct * gg * ig * (one - ig));
      store(dg + H + j, dct * cprev * fg * (one - fg));
      store(dg + 2 * H + j, dct * ig * (one - gg * gg));
      store(dg + 3 * H + j, dh * tc * og * (one - og));
      store(dc + j, dct * fg);
    }
  }
  return done;
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
