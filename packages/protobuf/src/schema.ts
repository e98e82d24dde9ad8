/**
 * Finds a service in a schema, from either of the two forms protobufjs reads without
 * generated code: a `.proto` file, parsed at load time, or a JSON bundle written ahead of
 * time by `pbjs -t json` (no parsing at load time, and no .proto files to ship).
 */
import { readFile } from 'node:fs/promises';
import protobuf from 'protobufjs';

/**
 * Loads `schema` (a `.proto` file, whose imports resolve relative to it, or a `.json`
 * bundle) and returns the service named `service` (fully qualified, e.g.
 * "kmux.example.v1.Pricing") with every type it uses resolved.
 */
export async function loadService(schema: string, service: string): Promise<protobuf.Service> {
  const root = schema.endsWith('.json')
    ? protobuf.Root.fromJSON(JSON.parse(await readFile(schema, 'utf8')) as protobuf.INamespace)
    : await protobuf.load(schema);
  root.resolveAll();
  const found = root.lookup(service);
  if (!(found instanceof protobuf.Service)) {
    const services = listServices(root);
    throw new TypeError(
      `${schema} declares no service '${service}'; it declares ${services.length ? services.join(', ') : 'no services'}`,
    );
  }
  return found;
}

/** Fully qualified names of every service under `namespace`. */
function listServices(namespace: protobuf.NamespaceBase): string[] {
  return namespace.nestedArray.flatMap((nested) => {
    if (nested instanceof protobuf.Service) return [nested.fullName.replace(/^\./, '')];
    return nested instanceof protobuf.Namespace ? listServices(nested) : [];
  });
}
