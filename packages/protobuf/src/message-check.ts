/**
 * Checks a serialized message against its schema before protobufjs decodes it, for what
 * protobufjs lets through: its Buffer reader cuts a string that declares more bytes than
 * are left (`GetPriceRequest` `0a 07 "kb-001"` decodes as sku "kb-001"), and it reads a known
 * field as its declared type whatever wire type the field arrived with. Here every
 * length-delimited field — string, bytes, message, map entry, packed repeated — must fit in
 * the message that holds it, a known field must arrive with its declared wire type (a
 * repeated scalar also packed), and groups must end. A check that fails throws a
 * ProtocolError naming the field; the payload then does not decode (INVALID_ARGUMENT).
 */
import { ProtocolError } from '@kmux/core';
import protobuf from 'protobufjs';
import { WireReader, WireType } from './wire.js';

interface FieldPlan {
  readonly name: string;
  readonly wireType: number;
  /** A repeated scalar: may also arrive packed, as one length-delimited run. */
  readonly packable: boolean;
  /** What a length-delimited or group field holds, when it is a message (or a map entry). */
  readonly contents: (() => FieldTable) | null;
}

type FieldTable = ReadonlyMap<number, FieldPlan>;

/** As protobufjs's own Reader.recursionLimit: deeper input would only exhaust the stack. */
const MAX_DEPTH = 100;

const tables = new WeakMap<protobuf.Type, FieldTable>();

/** Throws a ProtocolError unless `bytes` is a well-formed `type` within its own bounds. */
export function checkMessage(type: protobuf.Type, bytes: Uint8Array): void {
  walk(tableOf(type), new WireReader(bytes), 0, 0);
}

function tableOf(type: protobuf.Type): FieldTable {
  let table = tables.get(type);
  if (!table) {
    table = new Map(type.fieldsArray.map((field) => [field.id, planOf(type, field.resolve())]));
    tables.set(type, table);
  }
  return table;
}

function planOf(type: protobuf.Type, field: protobuf.Field): FieldPlan {
  const name = `${type.name}.${field.name}`;
  if (field instanceof protobuf.MapField) {
    const entry: FieldTable = new Map([
      [1, scalarPlan(`${name} key`, field.keyType, false)],
      [2, field.resolvedType instanceof protobuf.Type ? messagePlan(`${name} value`, field.resolvedType, false) : valuePlan(`${name} value`, field)],
    ]);
    return { name, wireType: WireType.LEN, packable: false, contents: () => entry };
  }
  if (field.resolvedType instanceof protobuf.Type) return messagePlan(name, field.resolvedType, field.delimited);
  return valuePlan(name, field);
}

function messagePlan(name: string, type: protobuf.Type, delimited: boolean): FieldPlan {
  return { name, wireType: delimited ? WireType.START_GROUP : WireType.LEN, packable: false, contents: () => tableOf(type) };
}

/** A scalar or enum field (a map's value included). */
function valuePlan(name: string, field: protobuf.Field): FieldPlan {
  const scalar = field.resolvedType instanceof protobuf.Enum ? 'int32' : field.type;
  return scalarPlan(name, scalar, field.repeated && !field.map);
}

function scalarPlan(name: string, scalar: string, repeated: boolean): FieldPlan {
  const wireType = (protobuf.types.basic as Record<string, number | undefined>)[scalar];
  if (wireType === undefined) throw new TypeError(`${name}: unresolved type ${scalar}`);
  const packable = repeated && (protobuf.types.packed as Record<string, number | undefined>)[scalar] !== undefined;
  return { name, wireType, packable, contents: null };
}

/** Reads fields until the reader's end, or until the end tag of group `group` (0: not a group). */
function walk(table: FieldTable, reader: WireReader, depth: number, group: number): void {
  if (depth > MAX_DEPTH) throw new ProtocolError(`messages nested deeper than ${MAX_DEPTH}`);
  while (!reader.done) {
    const tag = reader.tag();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (wireType === WireType.END_GROUP) {
      if (number === group) return;
      throw new ProtocolError(`end of group ${number} where none is open`);
    }
    const field = table.get(number);
    if (!field) skip(reader, wireType, number, depth);
    else if (wireType === field.wireType) read(field, reader, depth, number);
    else if (wireType === WireType.LEN && field.packable) packed(field, reader);
    else throw new ProtocolError(`${field.name} (field ${number}) arrived with wire type ${wireType}, declared ${field.wireType}`);
  }
  if (group !== 0) throw new ProtocolError(`group ${group} does not end`);
}

function read(field: FieldPlan, reader: WireReader, depth: number, number: number): void {
  if (field.wireType === WireType.START_GROUP) return walk(field.contents!(), reader, depth + 1, number);
  if (field.wireType !== WireType.LEN) return reader.skip(field.wireType);
  const start = overrunChecked(field.name, reader);
  if (field.contents) walk(field.contents(), new WireReader(reader.bytes, start, reader.pos), depth + 1, 0);
}

/** A packed run must hold whole elements only. */
function packed(field: FieldPlan, reader: WireReader): void {
  const start = overrunChecked(field.name, reader);
  const elements = new WireReader(reader.bytes, start, reader.pos);
  while (!elements.done) elements.skip(field.wireType);
}

function skip(reader: WireReader, wireType: number, number: number, depth: number): void {
  if (wireType === WireType.START_GROUP) walk(new Map(), reader, depth + 1, number);
  else if (wireType === WireType.LEN) overrunChecked(`field ${number}`, reader);
  else reader.skip(wireType);
}

/** Skips a length-delimited field, naming it when it overruns; returns where its bytes start. */
function overrunChecked(name: string, reader: WireReader): number {
  try {
    return reader.lengthDelimited();
  } catch (error) {
    if (error instanceof ProtocolError) throw new ProtocolError(`${name}: ${error.message}`);
    throw error;
  }
}
