import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { loadService } from '@kmux/protobuf';
import { MethodTable } from '../src/method-table.js';
import { PRICING_BUNDLE, PRICING_PROTO, PRICING_SERVICE } from './helpers.js';

describe('loadService', () => {
  it('finds the same service in the .proto file and in its committed JSON bundle (run examples/protobuf/generate.sh if not)', async () => {
    const fromProto = await loadService(PRICING_PROTO, PRICING_SERVICE);
    const fromBundle = await loadService(PRICING_BUNDLE, PRICING_SERVICE);
    expect(fromBundle.root.toJSON()).toEqual(fromProto.root.toJSON());
    expect(fromProto.methodsArray.map((method) => method.name)).toEqual(['GetPrice', 'QuoteBasket', 'Echo', 'Sleep']);
    expect(fromProto.methods.QuoteBasket!.resolvedRequestType!.fullName).toBe('.kmux.example.v1.QuoteRequest');
  });

  it('names the services a schema declares when the one asked for is not there', async () => {
    await expect(loadService(PRICING_PROTO, 'kmux.example.v1.Pricer')).rejects.toThrow(
      /declares no service 'kmux\.example\.v1\.Pricer'; it declares kmux\.example\.v1\.Pricing$/,
    );
    await expect(loadService(PRICING_BUNDLE, 'kmux.example.v1.Price')).rejects.toThrow(/declares no service/);
  });
});

describe('MethodTable', () => {
  const { root } = protobuf.parse(`
    syntax = "proto3";
    package kmux.test;
    message Symbol { string name = 1; }
    message Tick { uint32 price = 1; }
    service Ticker {
      rpc Latest(Symbol) returns (Tick);
      rpc Watch(Symbol) returns (stream Tick);
      rpc ToString(Symbol) returns (Tick);
    }`);
  const service = root.lookupService('kmux.test.Ticker');
  const handler = { latest: () => ({ price: 1 }), watch: () => ({ price: 2 }) };
  const table = new MethodTable(service, handler);

  it('binds each unary method to the handler function named in lowerCamelCase', () => {
    const bound = table.lookup('Latest');
    expect(typeof bound).toBe('object');
    expect(bound).toMatchObject({ requestType: { name: 'Symbol' }, responseType: { name: 'Tick' } });
  });

  it('explains why a method cannot be served', () => {
    expect(table.lookup('Watch')).toBe('kmux.test.Ticker.Watch streams; kmux serves unary methods only');
    // Object.prototype.toString is not the handler's own function.
    expect(table.lookup('ToString')).toBe('kmux.test.Ticker.ToString has no handler (toString)');
    expect(table.lookup('latest')).toBe("unknown method 'latest' in kmux.test.Ticker");
  });
});
