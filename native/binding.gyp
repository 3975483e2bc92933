# TinySilero native addon, built by native/build.mjs (run from the root package's "install" script).
# -O3 and no -march: the AVX2+FMA kernels use function-level target attributes and are chosen at run time.
{
  "targets": [{
    "target_name": "tinysilero",
    "sources": ["src/binding.c", "src/ts_kernel.c"],
    "cflags!": ["-O2", "-O0", "-O1", "-Os", "-fno-omit-frame-pointer"],
    "cflags_c": ["-std=gnu11", "-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    "defines": ["NAPI_VERSION=8"],
    "xcode_settings": {
      "OTHER_CFLAGS": ["-std=gnu11", "-O3", "-fno-math-errno"]
    }
  }]
}
