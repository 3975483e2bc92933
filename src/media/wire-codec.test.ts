import { describe, expect, it } from "vitest";
import { aLawDecode, aLawEncode, g722Decode, g722Encode, muLawDecode, muLawEncode } from "../audio/index.js";
import { WireDecoder, WireEncoder, checkWireFormat, defaultWireRate, wireBytesForSamples } from "./wire-codec.js";

function sine(n: number, rate: number, hz = 440, amp = 8000): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

function le(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) {
    out[2 * i] = (pcm[i] as number) & 0xff;
    out[2 * i + 1] = ((pcm[i] as number) >> 8) & 0xff;
  }
  return out;
}

/** Splits `bytes` at the given cut sizes (cycled) and decodes each part, concatenating the (copied) results. */
function decodeSplit(dec: WireDecoder, bytes: Uint8Array, sizes: number[]): Int16Array {
  const parts: number[] = [];
  let i = 0;
  let k = 0;
  while (i < bytes.length) {
    const n = Math.min(sizes[k++ % sizes.length] as number, bytes.length - i);
    for (const s of dec.decode(bytes.subarray(i, i + n))) parts.push(s);
    i += n;
  }
  return Int16Array.from(parts);
}

describe("checkWireFormat", () => {
  it("accepts the §5.1 table and defaults the rate", () => {
    for (const rate of [8000, 16000, 24000, 48000]) expect(checkWireFormat({ codec: "pcm", sampleRate: rate }).ok).toBe(true);
    expect(checkWireFormat({ codec: "pcmu", sampleRate: 8000 })).toEqual({ ok: true, format: { codec: "pcmu", sampleRate: 8000 } });
    expect(checkWireFormat({ codec: "pcma" })).toEqual({ ok: true, format: { codec: "pcma", sampleRate: 8000 } });
    expect(checkWireFormat({ codec: "g722" })).toEqual({ ok: true, format: { codec: "g722", sampleRate: 16000 } });
    expect(checkWireFormat({ codec: "pcm" })).toEqual({ ok: true, format: { codec: "pcm", sampleRate: 16000 } });
    expect(defaultWireRate("pcmu")).toBe(8000);
  });

  it("rejects with messages naming the field", () => {
    expect(checkWireFormat({ codec: "pcm", sampleRate: 44100 })).toEqual({
      ok: false,
      field: "sampleRate",
      error: "sampleRate 44100 is not supported for pcm",
    });
    expect(checkWireFormat({ codec: "opus", sampleRate: 48000 })).toEqual({ ok: false, field: "codec", error: "codec opus is not supported" });
    expect(checkWireFormat({ codec: "pcmu", sampleRate: 16000 }).ok).toBe(false);
    expect(checkWireFormat({ codec: "g722", sampleRate: 8000 }, { codec: "outputCodec", sampleRate: "outputSampleRate" })).toEqual({
      ok: false,
      field: "outputSampleRate",
      error: "outputSampleRate 8000 is not supported for g722",
    });
    expect(checkWireFormat({ codec: "opus" }, { codec: "outputCodec" })).toMatchObject({ error: "outputCodec opus is not supported" });
    expect(checkWireFormat({ codec: "pcm", sampleRate: "16000" }).ok).toBe(false);
    expect(() => new WireDecoder({ codec: "pcm", sampleRate: 11025 })).toThrow("sampleRate 11025 is not supported for pcm");
  });

  it("gives 20 ms frame sizes of the table", () => {
    expect([8000, 16000, 24000, 48000].map((r) => wireBytesForSamples("pcm", r / 50))).toEqual([320, 640, 960, 1920]);
    expect(wireBytesForSamples("pcmu", 160)).toBe(160);
    expect(wireBytesForSamples("pcma", 160)).toBe(160);
    expect(wireBytesForSamples("g722", 320)).toBe(160);
  });
});

describe("WireDecoder / WireEncoder", () => {
  it("pcm: s16le both ways, an odd trailing byte carried into the next message", () => {
    const pcm = Int16Array.from([0, 1, -1, 32767, -32768, 258, -12345, 4660, 7, -7, 100]);
    const bytes = le(pcm);
    const enc = new WireEncoder({ codec: "pcm", sampleRate: 16000 });
    expect([...enc.encode(pcm)]).toEqual([...bytes]);
    expect(enc.encode(Int16Array.from([0x1234]))).toEqual(Buffer.from([0x34, 0x12]));

    const dec = new WireDecoder({ codec: "pcm", sampleRate: 16000 });
    expect(dec.decode(bytes.subarray(0, 3))).toEqual(Int16Array.from([0]));
    expect(dec.pendingBytes).toBe(1);
    expect(dec.decode(bytes.subarray(3, 4))).toEqual(Int16Array.from([1]));
    expect(dec.pendingBytes).toBe(0);
    expect(dec.decode(bytes.subarray(4, 5)).length).toBe(0);
    expect(dec.decode(bytes.subarray(5, 8))).toEqual(Int16Array.from([-1, 32767]));

    for (const sizes of [[1], [3], [5, 2, 7], [1, 1, 2, 9]]) {
      expect(decodeSplit(new WireDecoder({ codec: "pcm", sampleRate: 8000 }), bytes, sizes)).toEqual(pcm);
    }
  });

  it("pcm decode reuses its output buffer (a view valid until the next decode)", () => {
    const dec = new WireDecoder({ codec: "pcm", sampleRate: 16000 });
    const a = dec.decode(le(Int16Array.from([1, 2, 3])));
    const b = dec.decode(le(Int16Array.from([4, 5, 6])));
    expect(b).toBe(a); // same view object for same-size messages
    expect([...a]).toEqual([4, 5, 6]);
  });

  it("pcmu / pcma: 160 bytes per 20 ms out, equal to the G.711 tables both ways", () => {
    const pcm = sine(160, 8000);
    const mu = new WireEncoder({ codec: "pcmu", sampleRate: 8000 }).encode(pcm);
    const a = new WireEncoder({ codec: "pcma", sampleRate: 8000 }).encode(pcm);
    expect(mu.length).toBe(160);
    expect(a.length).toBe(160);
    expect([...mu]).toEqual([...muLawEncode(pcm)]);
    expect([...a]).toEqual([...aLawEncode(pcm)]);
    expect(mu).not.toEqual(a);
    expect(decodeSplit(new WireDecoder({ codec: "pcmu", sampleRate: 8000 }), mu, [7, 100, 1])).toEqual(muLawDecode(mu));
    expect(decodeSplit(new WireDecoder({ codec: "pcma", sampleRate: 8000 }), a, [33])).toEqual(aLawDecode(a));
  });

  it("g722: state carries across arbitrary splits (equals one-shot) both ways", () => {
    const pcm = sine(3200, 16000, 700, 10000); // 200 ms
    const oneShot = g722Encode(pcm);
    expect(oneShot.length).toBe(1600);
    const enc = new WireEncoder({ codec: "g722", sampleRate: 16000 });
    const parts: number[] = [];
    for (let i = 0; i < pcm.length; i += 320) parts.push(...enc.encode(pcm.subarray(i, i + 320)));
    expect(Uint8Array.from(parts)).toEqual(oneShot);
    expect(new WireEncoder({ codec: "g722", sampleRate: 16000 }).encode(pcm.subarray(0, 320)).length).toBe(160);

    const expected = g722Decode(oneShot);
    for (const sizes of [[1], [13, 160, 2], [999]]) {
      expect(decodeSplit(new WireDecoder({ codec: "g722", sampleRate: 16000 }), oneShot, sizes)).toEqual(expected);
    }
    // A decoder that restarts per message diverges: the state matters.
    const fresh: number[] = [];
    for (let i = 0; i < oneShot.length; i += 13) fresh.push(...g722Decode(oneShot.subarray(i, i + 13)));
    expect(Int16Array.from(fresh)).not.toEqual(expected);
  });

  it("encodeInto writes into a caller buffer", () => {
    const enc = new WireEncoder({ codec: "pcmu", sampleRate: 8000 });
    const out = new Uint8Array(200);
    expect(enc.encodeInto(Int16Array.from([0, 1000]), out)).toBe(2);
    expect(out[0]).toBe(muLawEncode(Int16Array.from([0]))[0]);
    expect(() => enc.encodeInto(new Int16Array(300), out)).toThrow(RangeError);
  });
});
