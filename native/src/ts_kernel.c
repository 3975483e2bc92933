/* TinySilero native kernel. The network body (ts_impl.inc) is compiled twice: a portable baseline written with
 * GCC/clang generic vectors, and an AVX2+FMA variant (function-level target attribute, so the file itself is built
 * without any -m flag). ts_create picks one at run time with __builtin_cpu_supports. */
#include "ts_kernel.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

/* Conv1d k=3, pad=1: Wp is [3*cin][cout] (row r = k*cin + i, matching the im2col layout), b is [cout]. */
typedef struct { int cin, cout, stride, R; float *Wp; float *b; } ts_conv;

struct ts_model {
  int sr, chunk, ctx, N, pad, K, hop, nb, isa;
  ts_conv cv[4];
  float *lstmT;       /* [256][512]: rows 0..127 = W_ih^T, 128..255 = W_hh^T (PyTorch gate order i,f,g,o) */
  float *lstmb;       /* [512] bias_ih + bias_hh */
  float decw[128], decb;
  /* real FFT of K points = complex FFT of M = K/2 points on even/odd packing; 4 frames in the 4 vector lanes */
  float *win, *twr, *twi, *pwr, *pwi;
  int *bitrev;
  v4f *zr, *zi;
  /* scratch (shared by all streams of this model; calls never overlap) */
  float *xp, *mag, *col, *a0, *a1, *a2, *gates;
  float *xh;          /* [x ; h], contiguous so that the LSTM is one GEMV */
};

#define TS_SUFFIX _base
#define TS_ATTR
#include "ts_impl.inc"
#undef TS_SUFFIX
#undef TS_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TS_HAVE_AVX2 1
#define TS_SUFFIX _avx2
#define TS_ATTR __attribute__((target("avx2,fma")))
#define TS_USE_AVX2 1
#include "ts_impl.inc"
#undef TS_USE_AVX2
#undef TS_SUFFIX
#undef TS_ATTR
#endif

static const double TS_PI = 3.14159265358979323846;

static void *alloc_bytes(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, n ? n : 64)) return NULL;
  memset(p, 0, n ? n : 64);
  return p;
}
static float *alloc_f(size_t n) { return (float *)alloc_bytes(n * sizeof(float)); }

long ts_weight_size(int sr, int index) {
  if (sr != 16000 && sr != 8000) return 0;
  const long K = sr == 16000 ? 256 : 128, nb = K / 2 + 1;
  const long sizes[TS_NWEIGHTS] = {2 * nb * K, 128 * nb * 3, 128, 64 * 128 * 3, 64, 64 * 64 * 3, 64, 128 * 64 * 3,
                                   128, 512 * 128, 512 * 128, 512, 512, 128, 1};
  return index >= 0 && index < TS_NWEIGHTS ? sizes[index] : 0;
}

int ts_select_isa(int isa) {
  int can_avx2 = 0;
#ifdef TS_HAVE_AVX2
  __builtin_cpu_init();
  can_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa < 0 ? can_avx2 : (isa == 1 && can_avx2);
}

ts_model *ts_create(int sr, const float *const w[TS_NWEIGHTS], int isa) {
  if (sr != 16000 && sr != 8000) return NULL;
  ts_model *m = (ts_model *)calloc(1, sizeof(ts_model));
  if (!m) return NULL;
  m->sr = sr;
  m->chunk = sr == 16000 ? 512 : 256;
  m->ctx = sr == 16000 ? 64 : 32;
  m->N = m->chunk + m->ctx;
  m->pad = m->ctx; /* the graph reflect-pads 64 {32} samples on the right only */
  m->K = sr == 16000 ? 256 : 128;
  m->hop = m->K / 2;
  m->nb = m->K / 2 + 1;
  int ok = 1;
  const int cins[4] = {m->nb, 128, 64, 64}, couts[4] = {128, 64, 64, 128}, strides[4] = {1, 2, 2, 1};
  for (int l = 0; l < 4; l++) {
    ts_conv *cv = &m->cv[l];
    cv->cin = cins[l]; cv->cout = couts[l]; cv->stride = strides[l]; cv->R = 3 * cins[l];
    cv->Wp = alloc_f((size_t)cv->R * cv->cout);
    cv->b = alloc_f(cv->cout);
    if (!cv->Wp || !cv->b) { ok = 0; continue; }
    const float *W = w[1 + 2 * l], *B = w[2 + 2 * l];
    for (int o = 0; o < cv->cout; o++) {
      cv->b[o] = B[o];
      for (int i = 0; i < cv->cin; i++)
        for (int k = 0; k < 3; k++)
          cv->Wp[(size_t)(k * cv->cin + i) * cv->cout + o] = W[((size_t)o * cv->cin + i) * 3 + k];
    }
  }
  m->lstmT = alloc_f(256 * 512);
  m->lstmb = alloc_f(512);
  if (m->lstmT && m->lstmb) {
    for (int r = 0; r < 512; r++) {
      m->lstmb[r] = w[11][r] + w[12][r];
      for (int j = 0; j < 128; j++) {
        m->lstmT[(size_t)j * 512 + r] = w[9][r * 128 + j];
        m->lstmT[(size_t)(128 + j) * 512 + r] = w[10][r * 128 + j];
      }
    }
  } else ok = 0;
  for (int j = 0; j < 128; j++) m->decw[j] = w[13][j];
  m->decb = w[14][0];

  const int M = m->K / 2;
  int lg = 0;
  while ((1 << lg) < M) lg++;
  m->win = alloc_f(m->K); m->twr = alloc_f(M); m->twi = alloc_f(M);
  m->pwr = alloc_f(m->nb); m->pwi = alloc_f(m->nb);
  m->bitrev = (int *)alloc_bytes((size_t)M * sizeof(int));
  m->zr = (v4f *)alloc_bytes((size_t)M * sizeof(v4f));
  m->zi = (v4f *)alloc_bytes((size_t)M * sizeof(v4f));
  m->xp = alloc_f(m->N + m->pad + 64);
  m->mag = alloc_f(4 * m->nb);
  m->col = alloc_f(4 * 3 * 129);
  m->a0 = alloc_f(4 * 128); m->a1 = alloc_f(2 * 64); m->a2 = alloc_f(64);
  m->gates = alloc_f(512);
  m->xh = alloc_f(256);
  if (!m->win || !m->twr || !m->twi || !m->pwr || !m->pwi || !m->bitrev || !m->zr || !m->zi || !m->xp || !m->mag ||
      !m->col || !m->a0 || !m->a1 || !m->a2 || !m->gates || !m->xh) ok = 0;
  if (!ok) { ts_free(m); return NULL; }
  /* The basis is periodic-Hann(n) * [cos(2 pi k n / K); -sin(2 pi k n / K)]; its row 0 (k = 0) is the window. */
  for (int n = 0; n < m->K; n++) m->win[n] = w[0][n];
  for (int j = 0; j < M; j++) { const double a = -2.0 * TS_PI * j / M; m->twr[j] = (float)cos(a); m->twi[j] = (float)sin(a); }
  for (int k = 0; k < m->nb; k++) { const double a = -2.0 * TS_PI * k / m->K; m->pwr[k] = (float)cos(a); m->pwi[k] = (float)sin(a); }
  for (int n = 0; n < M; n++) {
    int r = 0;
    for (int b = 0; b < lg; b++) if (n & (1 << b)) r |= 1 << (lg - 1 - b);
    m->bitrev[n] = r;
  }
  m->isa = ts_select_isa(isa);
  return m;
}

void ts_free(ts_model *m) {
  if (!m) return;
  for (int l = 0; l < 4; l++) { free(m->cv[l].Wp); free(m->cv[l].b); }
  free(m->lstmT); free(m->lstmb);
  free(m->win); free(m->twr); free(m->twi); free(m->pwr); free(m->pwi); free(m->bitrev); free(m->zr); free(m->zi);
  free(m->xp); free(m->mag); free(m->col); free(m->a0); free(m->a1); free(m->a2); free(m->gates); free(m->xh);
  free(m);
}

int ts_chunk(const ts_model *m) { return m->chunk; }
int ts_context(const ts_model *m) { return m->ctx; }
int ts_isa(const ts_model *m) { return m->isa; }

float ts_forward(ts_model *m, float *state, const float *input) {
#ifdef TS_HAVE_AVX2
  if (m->isa) return forward_avx2(m, state, input);
#endif
  return forward_base(m, state, input);
}
