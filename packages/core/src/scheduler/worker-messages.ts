/** Messages a worker sends on its port. Requests go the other way as bare ArrayBuffers. */
export type WorkerMessage =
  | { readonly type: 'ready'; readonly threadId: number }
  | { readonly type: 'replies'; readonly batch: ArrayBuffer }
  | { readonly type: 'codec-error'; readonly key: number; readonly message: string };
