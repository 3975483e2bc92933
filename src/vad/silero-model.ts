/**
 * The Silero VAD v5 model file: located in the npm package @ricky0123/vad-web, checked against its sha256, and
 * (for TinySilero) parsed with protobufjs into Float32Array weights. Parsing happens once per process, lazily;
 * every stream of every call shares the result.
 *
 * Graph facts this relies on (see the research notes): the top-level node is `If(sr == 16000)`, the then-branch
 * is the 16 kHz network and the else-branch the 8 kHz one, each with its own weights stored as `Constant` nodes
 * named `If_0_<branch>_branch__Inline_0__<pytorch name>` (float32 `raw_data`); there are no initializers.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";
import { AppError } from "../errors.js";
import type { SileroRate } from "./types.js";

export const SILERO_PACKAGE = "@ricky0123/vad-web";
export const SILERO_V5_FILE = "dist/silero_vad_v5.onnx";
export const SILERO_V5_SHA256 = "2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f";

/** PyTorch names of the weights, in the order the kernels take them (native/src/ts_kernel.h). */
export const SILERO_WEIGHT_NAMES = [
  "stft.forward_basis_buffer",
  "encoder.0.reparam_conv.weight",
  "encoder.0.reparam_conv.bias",
  "encoder.1.reparam_conv.weight",
  "encoder.1.reparam_conv.bias",
  "encoder.2.reparam_conv.weight",
  "encoder.2.reparam_conv.bias",
  "encoder.3.reparam_conv.weight",
  "encoder.3.reparam_conv.bias",
  "decoder.rnn.weight_ih",
  "decoder.rnn.weight_hh",
  "decoder.rnn.bias_ih",
  "decoder.rnn.bias_hh",
  "decoder.decoder.2.weight",
  "decoder.decoder.2.bias",
] as const;

/** Expected shapes per rate (K = DFT size, nb = K/2 + 1 frequency bins). */
export function sileroWeightShapes(sampleRate: SileroRate): number[][] {
  const K = sampleRate === 16000 ? 256 : 128;
  const nb = K / 2 + 1;
  return [
    [2 * nb, 1, K],
    [128, nb, 3], [128],
    [64, 128, 3], [64],
    [64, 64, 3], [64],
    [128, 64, 3], [128],
    [512, 128], [512, 128], [512], [512],
    [1, 128, 1], [1],
  ];
}

export interface SileroWeights {
  readonly sampleRate: SileroRate;
  /** In SILERO_WEIGHT_NAMES order. */
  readonly tensors: readonly Float32Array[];
}

/** The ONNX IR subset we read (field numbers from the ONNX IR spec, onnx.proto). */
const ONNX_SUBSET = `
syntax = "proto2";
package onnxsub;
message Model { optional int64 ir_version = 1; optional string producer_name = 2; optional Graph graph = 7; }
message Attribute {
  optional string name = 1; optional float f = 2; optional int64 i = 3; optional bytes s = 4;
  optional Tensor t = 5; optional Graph g = 6; optional int32 type = 20;
}
message Node {
  repeated string input = 1; repeated string output = 2; optional string name = 3;
  optional string op_type = 4; repeated Attribute attribute = 5;
}
message Tensor {
  repeated int64 dims = 1; optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  optional string name = 8; optional bytes raw_data = 9;
}
message Graph { repeated Node node = 1; optional string name = 2; repeated Tensor initializer = 5; }
`;

interface PbTensor { dims: (number | { toNumber(): number })[]; dataType?: number; floatData: number[]; rawData?: Uint8Array }
interface PbAttribute { name?: string; t?: PbTensor; g?: PbGraph }
interface PbNode { output: string[]; opType?: string; attribute: PbAttribute[] }
interface PbGraph { node: PbNode[] }
interface PbModel { graph?: PbGraph }

const FLOAT = 1;

/** Where the model file of the installed package is. Throws PROVIDER_ERROR when the package is missing. */
export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${SILERO_PACKAGE}/package.json`);
  } catch (err) {
    throw new AppError("PROVIDER_ERROR", `Silero VAD model not found: the npm package ${SILERO_PACKAGE} is not installed (run npm ci)`, {
      cause: err,
      retryable: false,
      details: { provider: "vad", package: SILERO_PACKAGE },
    });
  }
  return join(dirname(pkgJson), SILERO_V5_FILE);
}

const bytesCache = new Map<string, Buffer>();

/** Reads the model file once per path and checks its sha256 (INTERNAL error on a mismatch). */
export function readSileroModel(path: string = sileroModelPath()): Buffer {
  const cached = bytesCache.get(path);
  if (cached) return cached;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new AppError("PROVIDER_ERROR", `Silero VAD model ${path} cannot be read (${(err as Error).message})`, {
      cause: err,
      retryable: false,
      details: { provider: "vad", path },
    });
  }
  const sha = createHash("sha256").update(bytes).digest("hex");
  if (sha !== SILERO_V5_SHA256) {
    throw new AppError("INTERNAL", `Silero VAD model ${path} has sha256 ${sha}, expected ${SILERO_V5_SHA256} (silero_vad_v5.onnx of ${SILERO_PACKAGE})`, {
      retryable: false,
      details: { provider: "vad", path, sha256: sha },
    });
  }
  bytesCache.set(path, bytes);
  return bytes;
}

let modelType: protobuf.Type | undefined;

function tensorToFloat32(t: PbTensor, name: string): Float32Array {
  const n = t.dims.reduce<number>((a, d) => a * Number(typeof d === "number" ? d : d.toNumber()), 1);
  if (t.dataType !== FLOAT) throw new Error(`${name}: expected a float tensor, got data type ${t.dataType}`);
  const out = new Float32Array(n);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== n * 4) throw new Error(`${name}: ${raw.length} bytes for ${n} floats`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  } else {
    if (t.floatData.length !== n) throw new Error(`${name}: ${t.floatData.length} floats for ${n}`);
    out.set(t.floatData);
  }
  return out;
}

function parseWeights(bytes: Uint8Array): Record<SileroRate, SileroWeights> {
  modelType ??= protobuf.parse(ONNX_SUBSET).root.lookupType("onnxsub.Model");
  const model = modelType.decode(bytes) as unknown as PbModel;
  const ifNode = model.graph?.node.find((n) => n.opType === "If");
  if (!ifNode) throw new Error("no top-level If node (is this Silero VAD v5?)");
  const out: Partial<Record<SileroRate, SileroWeights>> = {};
  for (const attr of ifNode.attribute) {
    // The If condition is `sr == 16000`: then = 16 kHz, else = 8 kHz (any other rate).
    const rate: SileroRate | undefined = attr.name === "then_branch" ? 16000 : attr.name === "else_branch" ? 8000 : undefined;
    if (rate === undefined || !attr.g) continue;
    const byName = new Map<string, PbTensor>();
    for (const node of attr.g.node) {
      const t = node.attribute.find((a) => a.name === "value")?.t;
      const output = node.output[0];
      if (node.opType !== "Constant" || !t || output === undefined || t.dataType !== FLOAT) continue;
      byName.set(output.replace(/^If_0_(then|else)_branch__Inline_0__/, ""), t);
    }
    const shapes = sileroWeightShapes(rate);
    const tensors = SILERO_WEIGHT_NAMES.map((name, i) => {
      const t = byName.get(name);
      if (!t) throw new Error(`${rate} Hz branch has no constant ${name}`);
      const dims = t.dims.map((d) => Number(typeof d === "number" ? d : d.toNumber()));
      const want = shapes[i] as number[];
      if (dims.join(",") !== want.join(",")) throw new Error(`${name} (${rate} Hz) has shape [${dims}], expected [${want}]`);
      return tensorToFloat32(t, name);
    });
    out[rate] = { sampleRate: rate, tensors };
  }
  if (!out[16000] || !out[8000]) throw new Error("the model lacks the 16 kHz or the 8 kHz branch");
  return out as Record<SileroRate, SileroWeights>;
}

const weightsCache = new Map<string, Record<SileroRate, SileroWeights>>();

/**
 * Weights of both branches, parsed once per process (per path). Throws AppError: PROVIDER_ERROR when the package
 * is missing, INTERNAL when the file is not the expected model.
 */
export function loadSileroWeights(path: string = sileroModelPath()): Record<SileroRate, SileroWeights> {
  const cached = weightsCache.get(path);
  if (cached) return cached;
  const bytes = readSileroModel(path);
  let weights: Record<SileroRate, SileroWeights>;
  try {
    weights = parseWeights(bytes);
  } catch (err) {
    throw new AppError("INTERNAL", `Silero VAD model ${path} could not be parsed: ${(err as Error).message}`, {
      cause: err,
      retryable: false,
      details: { provider: "vad", path },
    });
  }
  weightsCache.set(path, weights);
  return weights;
}
