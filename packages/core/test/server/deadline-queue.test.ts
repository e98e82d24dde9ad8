import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
// Internal: not exported from the package index.
import { DeadlineQueue } from '../../dist/server/deadline-queue.js';

describe('DeadlineQueue', () => {
  let inFlight: Set<number>;
  let expired: number[];
  let queue: DeadlineQueue;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    inFlight = new Set();
    expired = [];
    queue = new DeadlineQueue(
      (key) => inFlight.has(key),
      (key) => {
        inFlight.delete(key);
        expired.push(key);
      },
    );
  });
  afterEach(() => {
    queue.clear();
    vi.useRealTimers();
  });

  const add = (key: number, timeoutMs: number): void => {
    inFlight.add(key);
    queue.add(key, timeoutMs, Date.now() + timeoutMs);
  };

  it('expires keys in deadline order across different timeouts', () => {
    add(1, 100);
    add(2, 50);
    add(3, 100);
    vi.advanceTimersByTime(49);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([2]);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([2, 1, 3]);
  });

  it('does not expire keys that completed', () => {
    add(1, 100);
    add(2, 100);
    add(3, 100);
    inFlight.delete(1);
    inFlight.delete(3);
    vi.advanceTimersByTime(200);
    expect(expired).toEqual([2]);
  });

  it('keeps one timer, re-armed for the next deadline', () => {
    for (let key = 1; key <= 100; key++) add(key, 1000 + (key % 3) * 10);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(expired).toHaveLength(33);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(20);
    expect(expired).toHaveLength(100);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fires a later-added earlier deadline first', () => {
    add(1, 5000);
    vi.advanceTimersByTime(10);
    add(2, 20);
    vi.advanceTimersByTime(20);
    expect(expired).toEqual([2]);
    vi.advanceTimersByTime(5000);
    expect(expired).toEqual([2, 1]);
  });

  it('serves keys added after everything expired', () => {
    add(1, 10);
    vi.advanceTimersByTime(10);
    add(2, 10);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual([1, 2]);
  });

  it('clear() cancels everything', () => {
    add(1, 10);
    add(2, 20);
    queue.clear();
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
