// checkMessage against protobufjs: what protobufjs encodes passes, and every field whose
// declared length overruns the message holding it fails with a ProtocolError naming it,
// where protobufjs's Buffer reader would cut a string short (the first case) and decode.
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { ProtocolError } from '@kmux/core';
import { checkMessage } from '../src/message-check.js';

const { root } = protobuf.parse(`
  syntax = "proto3";
  message Inner { string name = 1; bytes blob = 2; }
  enum Kind { KIND_NONE = 0; KIND_ONE = 1; }
  message Outer {
    string text = 1;
    bytes data = 2;
    Inner inner = 3;
    repeated Inner inners = 4;
    map<string, Inner> by_name = 5;
    map<uint32, string> labels = 6;
    repeated uint32 counts = 7;
    repeated fixed32 fixeds = 8;
    Kind kind = 9;
    double ratio = 10;
    Outer next = 11;
  }
`);
root.resolveAll();
const Outer = root.lookupType('Outer');

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const ascii = (text: string): string => Buffer.from(text).toString('hex');
const check = (bytes: Buffer): void => checkMessage(Outer, bytes);

describe('checkMessage', () => {
  it('passes what protobufjs encodes: every field kind, nested, maps, packed runs, recursion', () => {
    const full = Outer.encode(
      Outer.fromObject({
        text: 'kb-001',
        data: Buffer.from([1, 2, 3]),
        inner: { name: 'a', blob: Buffer.from('b') },
        inners: [{ name: 'x' }, {}],
        byName: { k: { name: 'v' } },
        labels: { 7: 'seven' },
        counts: [1, 300, 70_000],
        fixeds: [1, 2],
        kind: 1,
        ratio: 0.5,
        next: { text: 'deeper', next: { counts: [5] } },
      }),
    ).finish();
    expect(() => check(Buffer.from(full))).not.toThrow();
    expect(() => check(Buffer.alloc(0))).not.toThrow();
  });

  it('passes a repeated scalar sent unpacked, and unknown fields of every wire type, groups included', () => {
    expect(() => check(hex('38 01 38 02'))).not.toThrow(); // counts 1, 2 as two varints
    expect(() => check(hex(`f8 01 05  f9 01 0102030405060708  fa 01 02 6869  fd 01 01020304  fb 01 0a 01 61 fc 01`))).not.toThrow();
  });

  const overruns: readonly [string, string, RegExp][] = [
    ['a string (the issue: GetPrice 0a 07 "kb-001")', `0a 07 ${ascii('kb-001')}`, /^Outer\.text: a 7-byte field overruns its message \(6 bytes left\)$/],
    ['a string declaring far more', `0a 10 ${ascii('abc')}`, /^Outer\.text: a 16-byte field/],
    ['bytes', `12 04 010203`, /^Outer\.data: /],
    ['a message', `1a 05 0a 01 61`, /^Outer\.inner: /],
    ['a string inside a message, within the payload but past its message', `1a 03 0a 05 61  0a 01 62`, /^Inner\.name: a 5-byte field overruns its message \(1 bytes left\)$/],
    ['a repeated message', `22 02 0a 00  22 09 0a 01 61`, /^Outer\.inners: /],
    ['a map entry', `2a 08 0a 01 6b`, /^Outer\.byName: /],
    ['a map key', `2a 04 0a 05 6b 6b`, /^Outer\.byName key: /],
    ['a map value message', `2a 06 0a 01 6b 12 05 0a`, /^Outer\.byName value: /],
    ['a map value string', `32 04 08 07 12 05`, /^Outer\.labels value: /],
    ['a packed run', `3a 05 01 02`, /^Outer\.counts: /],
    ['a packed run ending inside a varint', `3a 02 01 ac  38 01`, /truncated varint/],
    ['a packed fixed32 run that is not whole elements', `42 06 010000000200`, /truncated fixed-width field/],
    ['an unknown length-delimited field', `fa 01 09 6869`, /^field 31: /],
    ['a message nested in a recursive field', `5a 06 5a 04 0a 05 61 62`, /^Outer\.text: /],
  ];
  for (const [what, bytes, message] of overruns) {
    it(`fails ${what} that declares more bytes than its message has left`, () => {
      expect(() => check(hex(bytes))).toThrow(ProtocolError);
      expect(() => check(hex(bytes))).toThrow(message);
    });
  }

  it("fails a known field that arrives with another wire type (protobufjs would read it as the declared type)", () => {
    expect(() => check(hex(`08 06 ${ascii('kb-001')}`))).toThrow(/^Outer\.text \(field 1\) arrived with wire type 0, declared 2$/);
    expect(() => check(hex('55 00000000'))).toThrow(/Outer\.ratio \(field 10\) arrived with wire type 5, declared 1/);
  });

  it('fails a group that does not end, an end without a group, and nesting past 100', () => {
    expect(() => check(hex('fb 01 0a 01 61'))).toThrow(/group 31 does not end/);
    expect(() => check(hex('fc 01'))).toThrow(/end of group 31 where none is open/);
    let deep = hex(`0a 06 ${ascii('bottom')}`);
    for (let i = 0; i < 120; i++) deep = Buffer.from(protobuf.Writer.create().uint32(0x5a).bytes(deep).finish());
    expect(() => check(deep)).toThrow(/nested deeper than 100/);
  });
});
