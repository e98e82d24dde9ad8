/**
 * What a peer speaks on its port: Thrift framed + binary protocol (the example Catalog
 * service), kmux's protobuf envelope (WIRE.md) or gRPC, both over proto/catalog.proto.
 */
export type PeerProtocol = 'thrift-binary-framed' | 'kmux-protobuf' | 'grpc';

/** What a peer server child process reports to the bench over IPC. */
export type PeerMessage =
  | {
      type: 'ready';
      port: number;
      /** The transport in use and why, for kmux; null for servers without a choice. */
      transport: string | null;
      /** The process serving the port, for its CPU and RSS: the child, or the C server it runs. */
      pid?: number;
      protocol?: PeerProtocol;
    }
  | {
      type: 'closed';
      /** Requests each worker thread completed, for kmux; null for single-threaded servers. */
      workerRequests: number[] | null;
    };

/** The bench's only request to a peer: shut down and report. */
export interface PeerCloseRequest {
  type: 'close';
}

/** Settings a peer child gets as its one argv argument (JSON). */
export interface PeerSettings {
  /** Worker threads, for servers that have them. */
  readonly workers: number;
  /** kmux's transport: auto, userspace, kcm or sockmap. */
  readonly transport?: string;
  /** More kmux ServerOptions (JSON values only), e.g. { threadSliceUs: false }, to compare settings. */
  readonly kmuxOptions?: Readonly<Record<string, unknown>>;
}
