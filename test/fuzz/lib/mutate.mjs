/**
 * A havoc-style mutator in the manner of AFL and libFuzzer: each call stacks 1–16 random
 * edits on a parent input. The edits that matter for length-prefixed binary protocols get
 * their own operators: length fields set to the bytes that really follow (plus or minus a
 * little, or absurdly), boundary integers in both byte orders, varints of every width
 * (including over-long ones), dictionary tokens and splices of two corpus entries.
 */

const BOUNDARY_INTS = [
  0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xffff,
  0x10000, 0xffffff, 0x1000000, 0x7ffffffe, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff,
];

function writeUInt(out, at, value, width, littleEndian) {
  for (let i = 0; i < width && at + i < out.length; i++) {
    const shift = 8 * (littleEndian ? i : width - 1 - i);
    out[at + i] = Math.floor(value / 2 ** shift) & 0xff;
  }
}

/** Unsigned LEB128 of `value`, optionally padded to `width` bytes (over-long encodings). */
function varint(value, width = 0) {
  const bytes = [];
  let rest = value;
  do {
    bytes.push(rest & 0x7f);
    rest = Math.floor(rest / 128);
  } while (rest > 0);
  while (bytes.length < width) bytes.push(0);
  for (let i = 0; i < bytes.length - 1; i++) bytes[i] |= 0x80;
  return Buffer.from(bytes);
}

function splice(buffer, at, removeCount, insert) {
  return Buffer.concat([buffer.subarray(0, at), insert, buffer.subarray(at + removeCount)]);
}

/**
 * Mutates `parent` (never modified) into a new Buffer of at most `maxLen` bytes.
 * `corpus` supplies splice partners, `dictionary` protocol tokens, `ints` extra
 * interesting integers (limits of the target, for example); 2^maxEditsLog2 edits at most.
 */
export function mutate(parent, rng, { corpus = [], dictionary = [], ints = [], maxLen = 4096, maxEditsLog2 = 4 } = {}) {
  let out = Buffer.from(parent);
  const interesting = ints.length ? [...BOUNDARY_INTS, ...ints] : BOUNDARY_INTS;
  const edits = 2 ** rng.int(0, maxEditsLog2);
  for (let e = 0; e < edits; e++) {
    const len = out.length;
    const pos = () => rng.int(0, Math.max(0, len - 1));
    switch (rng.int(0, 15)) {
      case 0: // flip one bit
        if (len) out[pos()] ^= 1 << rng.int(0, 7);
        break;
      case 1: // random byte
        if (len) out[pos()] = rng.int(0, 255);
        break;
      case 2: // small arithmetic on a byte
        if (len) {
          const at = pos();
          out[at] = (out[at] + rng.int(-35, 35)) & 0xff;
        }
        break;
      case 3: { // insert random or repeated bytes
        const count = rng.int(1, rng.chance(0.1) ? 256 : 8);
        const bytes = rng.chance(0.5) ? Buffer.alloc(count, rng.int(0, 255)) : Buffer.from(Array.from({ length: count }, () => rng.int(0, 255)));
        out = splice(out, rng.int(0, len), 0, bytes);
        break;
      }
      case 4: // delete a range
        if (len) {
          const at = pos();
          out = splice(out, at, rng.int(1, Math.min(len - at, rng.chance(0.2) ? len : 16)), Buffer.alloc(0));
        }
        break;
      case 5: // duplicate a range somewhere else
        if (len) {
          const at = pos();
          const piece = Buffer.from(out.subarray(at, at + rng.int(1, Math.min(len - at, 64))));
          out = splice(out, rng.int(0, len), 0, piece);
        }
        break;
      case 6: // boundary integer, 1/2/4 bytes, either byte order, maybe negated
        if (len) {
          const width = rng.pick([1, 2, 4]);
          let value = rng.pick(interesting);
          if (rng.chance(0.2)) value = (2 ** (8 * width) - value) % 2 ** (8 * width);
          writeUInt(out, pos(), value % 2 ** (8 * width), width, rng.chance(0.2));
        }
        break;
      case 7: // a 4-byte big-endian length: what really follows, give or take a little, or absurd
      case 8:
        if (len >= 4) {
          const at = rng.int(0, len - 4);
          const follows = len - at - 4;
          const value = rng.chance(0.7)
            ? Math.max(0, follows + rng.pick([0, 0, 0, -1, 1, -2, 2, -4, 4, rng.int(-300, 300)]))
            : rng.pick(interesting);
          writeUInt(out, at, value >>> 0, 4, false);
        }
        break;
      case 9: { // varint of some width, over-long 10% of the time
        const value = rng.chance(0.5) ? rng.pick(interesting) : rng.int(0, len + 8);
        const encoded = varint(value, rng.chance(0.1) ? rng.int(1, 7) : 0);
        const at = rng.int(0, len);
        out = splice(out, at, rng.chance(0.5) ? Math.min(encoded.length, len - at) : 0, encoded);
        break;
      }
      case 10: // dictionary token, inserted or overwriting
        if (dictionary.length) {
          const token = rng.pick(dictionary);
          const at = rng.int(0, len);
          out = splice(out, at, rng.chance(0.5) ? Math.min(token.length, len - at) : 0, token);
        }
        break;
      case 11: // splice: our head, another entry's tail
        if (corpus.length) {
          const other = rng.pick(corpus);
          out = Buffer.concat([out.subarray(0, rng.int(0, len)), other.subarray(rng.int(0, other.length))]);
        }
        break;
      case 12: // append or prepend another entry whole (streams of several frames)
        if (corpus.length) {
          const other = rng.pick(corpus);
          out = rng.chance(0.8) ? Buffer.concat([out, other]) : Buffer.concat([other, out]);
        }
        break;
      case 13: // truncate
        if (len) out = out.subarray(0, rng.int(0, len - 1));
        break;
      case 14: // swap two ranges' first bytes
        if (len >= 2) {
          const a = pos();
          const b = pos();
          const t = out[a];
          out[a] = out[b];
          out[b] = t;
        }
        break;
      case 15: // overwrite a range with one value (0x00, 0xff, 0x80, ...)
        if (len) {
          const at = pos();
          out.fill(rng.pick([0, 0xff, 0x7f, 0x80, rng.int(0, 255)]), at, at + rng.int(1, Math.min(len - at, 32)));
        }
        break;
    }
    if (out.length > maxLen) out = out.subarray(0, maxLen);
  }
  return Buffer.from(out);
}

export { varint };
