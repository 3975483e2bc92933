/* Node-API wrapper (plain C, node_api.h) around ts_kernel. JS passes preallocated Float32Arrays and we work on
 * their backing stores, so a call allocates nothing.
 *   create(sampleRate, weights: Float32Array[15], isa: -1|0|1) -> external model handle
 *   forward(model, state: Float32Array(256), input: Float32Array(context + chunk)) -> probability
 *   isa(model) -> "avx2+fma" | "baseline"
 *   selectIsa(isa: -1|0|1) -> the instruction set create() would use, as isa() names it */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdio.h>
#include "ts_kernel.h"

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "tinysilero: " #call " failed");         \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static void finalize_model(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ts_free((ts_model *)data);
}

static int get_f32(napi_env env, napi_value v, float **ptr, size_t *len) {
  napi_typedarray_type type;
  size_t n, off;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &n, &data, &ab, &off) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "tinysilero: expected a Float32Array");
    return 0;
  }
  *ptr = (float *)data;
  *len = n;
  return 1;
}

static ts_model *get_model(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "tinysilero: bad model handle");
    return NULL;
  }
  return (ts_model *)p;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "tinysilero: create(sampleRate, weights, isa)"); return NULL; }
  int32_t sr = 0, isa = -1;
  uint32_t n = 0;
  CHECK(napi_get_value_int32(env, argv[0], &sr));
  if (argc > 2) CHECK(napi_get_value_int32(env, argv[2], &isa));
  if (sr != 16000 && sr != 8000) { napi_throw_range_error(env, NULL, "tinysilero: sample rate must be 16000 or 8000"); return NULL; }
  CHECK(napi_get_array_length(env, argv[1], &n));
  if (n != TS_NWEIGHTS) { napi_throw_range_error(env, NULL, "tinysilero: need 15 weight arrays"); return NULL; }
  const float *w[TS_NWEIGHTS];
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    float *p;
    size_t len;
    CHECK(napi_get_element(env, argv[1], i, &e));
    if (!get_f32(env, e, &p, &len)) return NULL;
    if ((long)len != ts_weight_size(sr, (int)i)) {
      char msg[96];
      snprintf(msg, sizeof msg, "tinysilero: weight %u has %zu values, expected %ld", i, len, ts_weight_size(sr, (int)i));
      napi_throw_range_error(env, NULL, msg);
      return NULL;
    }
    w[i] = p;
  }
  ts_model *m = ts_create(sr, w, isa);
  if (!m) { napi_throw_error(env, NULL, "tinysilero: out of memory"); return NULL; }
  napi_value ext;
  if (napi_create_external(env, m, finalize_model, NULL, &ext) != napi_ok) {
    ts_free(m);
    napi_throw_error(env, NULL, "tinysilero: napi_create_external failed");
    return NULL;
  }
  return ext;
}

static napi_value js_forward(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, NULL, "tinysilero: forward(model, state, input)"); return NULL; }
  ts_model *m = get_model(env, argv[0]);
  if (!m) return NULL;
  float *state, *in;
  size_t ns, ni;
  if (!get_f32(env, argv[1], &state, &ns) || !get_f32(env, argv[2], &in, &ni)) return NULL;
  if (ns < TS_STATE_FLOATS) { napi_throw_range_error(env, NULL, "tinysilero: state needs 256 floats"); return NULL; }
  if ((int)ni < ts_chunk(m) + ts_context(m)) { napi_throw_range_error(env, NULL, "tinysilero: input too short"); return NULL; }
  napi_value r;
  CHECK(napi_create_double(env, ts_forward(m, state, in), &r));
  return r;
}

static napi_value js_isa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "tinysilero: isa(model)"); return NULL; }
  ts_model *m = get_model(env, argv[0]);
  if (!m) return NULL;
  napi_value r;
  CHECK(napi_create_string_utf8(env, ts_isa(m) ? "avx2+fma" : "baseline", NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_value js_select_isa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t isa = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc > 0) CHECK(napi_get_value_int32(env, argv[0], &isa));
  napi_value r;
  CHECK(napi_create_string_utf8(env, ts_select_isa(isa) ? "avx2+fma" : "baseline", NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"forward", NULL, js_forward, NULL, NULL, NULL, napi_default, NULL},
      {"isa", NULL, js_isa, NULL, NULL, NULL, napi_default, NULL},
      {"selectIsa", NULL, js_select_isa, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof d / sizeof d[0], d) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
