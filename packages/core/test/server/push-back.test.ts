import { describe, expect, it } from 'vitest';
import { PushBack, REFUSALS_PER_SERVED } from '../../src/server/push-back.js';

describe('PushBack', () => {
  it('pushes back once its first allowance of refusals is spent, and lets go at half of what was in flight', () => {
    const pushBack = new PushBack(REFUSALS_PER_SERVED * 2);
    for (let i = 1; i < 8; i++) expect(pushBack.refused(6)).toBe(false);
    expect(pushBack.refused(6)).toBe(true);
    expect(pushBack.active).toBe(true);
    // Refusals while pushed back (frames of the same read) do not push it back twice.
    expect(pushBack.refused(6)).toBe(false);
    expect([5, 4].map((left) => pushBack.finished(left))).toEqual([false, false]);
    expect(pushBack.finished(3)).toBe(true);
    expect(pushBack.active).toBe(false);
  });

  it('earns REFUSALS_PER_SERVED refusals per request served, never more than its allowance', () => {
    const pushBack = new PushBack(10);
    for (let i = 0; i < 100; i++) pushBack.finished(1);
    for (let i = 1; i < 10; i++) expect(pushBack.refused(1)).toBe(false);
    expect(pushBack.refused(4)).toBe(true);
    pushBack.finished(2);
    // One request served: REFUSALS_PER_SERVED more before it is pushed back again.
    for (let i = 1; i < REFUSALS_PER_SERVED; i++) expect(pushBack.refused(2)).toBe(false);
    expect(pushBack.refused(2)).toBe(true);
  });

  it('hands held frames on in order, stopping where a delivery pushes it back again', () => {
    const pushBack = new PushBack(1);
    expect(pushBack.refused(2)).toBe(true);
    for (const text of ['a', 'bb', 'ccc', 'dddd']) pushBack.hold(Buffer.from(text));
    expect(pushBack.heldBytes).toBe(10);
    expect(pushBack.finished(1)).toBe(true);
    const delivered: string[] = [];
    pushBack.release(
      (body) => {
        delivered.push(body.toString());
        // The second is refused past the credit the one answer earned.
        if (delivered.length === 2) for (let i = 0; i < REFUSALS_PER_SERVED; i++) pushBack.refused(2);
      },
      () => true,
    );
    expect(delivered).toEqual(['a', 'bb']);
    expect(pushBack.active).toBe(true);
    expect(pushBack.heldBytes).toBe(7);
    pushBack.clear();
    expect([pushBack.heldBytes, pushBack.active]).toEqual([0, false]);
  });
});
