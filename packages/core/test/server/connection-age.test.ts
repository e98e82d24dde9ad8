import { describe, expect, it } from 'vitest';
import { connectionLifetimeMs } from '../../src/server/connection-age.js';

describe('connectionLifetimeMs', () => {
  it('draws each lifetime within ±10 % of the maximum age', () => {
    expect(connectionLifetimeMs(60_000, () => 0)).toBe(54_000);
    expect(connectionLifetimeMs(60_000, () => 0.5)).toBe(60_000);
    expect(connectionLifetimeMs(60_000, () => 0.999999)).toBe(66_000);
    const drawn = Array.from({ length: 1000 }, () => connectionLifetimeMs(1000));
    expect(Math.min(...drawn)).toBeGreaterThanOrEqual(900);
    expect(Math.max(...drawn)).toBeLessThanOrEqual(1100);
    // Spread, not one value: connections opened together must not all end together.
    expect(new Set(drawn).size).toBeGreaterThan(100);
  });
});
