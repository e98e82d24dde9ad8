import { describe, expect, it } from 'vitest';
import { ServiceRoutes } from '../src/service-routes.js';

describe('ServiceRoutes.wireNames: the names a call carries on the wire, for readers outside JS (slowMethods on native)', () => {
  it('is the name itself for one service', () => {
    expect(new ServiceRoutes([], undefined).wireNames('report')).toEqual(['report']);
  });

  it('adds the bare name of a call to the default service, and only to it', () => {
    const routes = new ServiceRoutes(['Catalog', 'Inventory'], 'Catalog');
    expect(routes.wireNames('Catalog:report')).toEqual(['Catalog:report', 'report']);
    expect(routes.wireNames('Inventory:report')).toEqual(['Inventory:report']);
    // A bare name is routed to the default service: no call is known by it.
    expect(routes.wireNames('report')).toEqual([]);
  });

  it('keeps bare names as they are without a default service', () => {
    const routes = new ServiceRoutes(['Catalog'], undefined);
    expect(routes.wireNames('report')).toEqual(['report']);
    expect(routes.wireNames('Catalog:report')).toEqual(['Catalog:report']);
  });
});
