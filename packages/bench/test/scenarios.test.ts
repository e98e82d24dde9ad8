import { describe, expect, it } from 'vitest';
import { notApplicable } from '../src/run/measure.js';
import { benchScenarios } from '../src/scenarios.js';

const scenario = (name: string) => benchScenarios(400, 100).find((s) => s.name === name)!;

describe('which servers run which scenario', () => {
  it('runs the blocking mixed load on Thrift servers only: catalog.proto has no blockFor', () => {
    const blocking = scenario('mixed-blocking-slow');
    expect(blocking.calls.map((call) => call.method)).toEqual(['hashRounds', 'blockFor']);
    expect(notApplicable(blocking, false, 'thrift-binary-framed')).toBeNull();
    expect(notApplicable(blocking, false, 'kmux-protobuf')).toBe('calls a method catalog.proto lacks');
    expect(notApplicable(blocking, false, 'grpc')).toBe('calls a method catalog.proto lacks');
    expect(notApplicable(blocking, true, 'thrift-binary-framed')).toBe('serves echo only');
  });

  it('runs the other mixed loads on every protocol', () => {
    for (const protocol of ['thrift-binary-framed', 'kmux-protobuf', 'grpc']) {
      expect(notApplicable(scenario('mixed-same-method'), false, protocol)).toBeNull();
      expect(notApplicable(scenario('mixed-methods'), false, protocol)).toBeNull();
    }
  });
});
