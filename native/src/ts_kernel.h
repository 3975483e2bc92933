/* TinySilero native kernel: the forward pass of Silero VAD v5 (16 and 8 kHz) in C.
 * No Node dependency; binding.c wraps it for Node-API.
 *
 * A ts_model holds the (re-laid-out) weights of one sample rate plus scratch buffers. It is shared by every
 * stream of that rate in one JS environment; calls must not overlap (Node calls it from one thread).
 * The per-stream state is owned by the caller: 256 floats (h[128], c[128], the ONNX `state` layout). */
#ifndef TS_KERNEL_H
#define TS_KERNEL_H
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_model ts_model;

/* Weight order (float32, shapes of the ONNX constants of the sample-rate branch; K = 256 at 16 kHz, 128 at 8 kHz,
 * nb = K/2 + 1):
 *  0 stft.forward_basis_buffer [2nb,1,K] (only row 0, the window, is used: the kernel runs a real FFT)
 *  1 encoder.0 weight [128,nb,3]  2 bias [128]    3 encoder.1 weight [64,128,3]  4 bias [64]
 *  5 encoder.2 weight [64,64,3]   6 bias [64]     7 encoder.3 weight [128,64,3]  8 bias [128]
 *  9 decoder.rnn.weight_ih [512,128]  10 weight_hh [512,128]  11 bias_ih [512]  12 bias_hh [512]
 * 13 decoder.decoder.2.weight [1,128,1]  14 decoder.decoder.2.bias [1] */
enum { TS_NWEIGHTS = 15, TS_STATE_FLOATS = 256 };

/* Weight element counts expected for a sample rate (for argument checks), or 0 for a bad index/rate. */
long ts_weight_size(int sr, int index);
/* isa: -1 = best available, 0 = portable baseline, 1 = AVX2+FMA (falls back to 0 when the CPU lacks it).
 * Returns NULL for an unsupported rate or when memory runs out. The weights are copied. */
/* The instruction set ts_create would use for `isa`: 0 baseline, 1 avx2+fma. */
int ts_select_isa(int isa);
ts_model *ts_create(int sr, const float *const w[TS_NWEIGHTS], int isa);
void ts_free(ts_model *m);
int ts_chunk(const ts_model *m);   /* 512 (16 kHz) or 256 (8 kHz) new samples per call */
int ts_context(const ts_model *m); /* 64 or 32 samples of the previous input in front of them */
int ts_isa(const ts_model *m);     /* 0 baseline, 1 avx2+fma */
/* One model call. input: ts_context + ts_chunk samples (the ONNX `input`); state: 256 floats, updated in place.
 * Returns the speech probability. */
float ts_forward(ts_model *m, float *state, const float *input);

#ifdef __cplusplus
}
#endif
#endif
