// The native transport's JS face (JS class NativeMux): one per server, on the
// main thread. It starts the I/O thread (io_loop.h), hands it accepted sockets,
// and reports each connection's end through a uv_async on the main loop, so the
// main thread handles accept, hangups and lifecycle but no request or reply.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "io_loop.h"

namespace kmux {

class NativeMux : public Napi::ObjectWrap<NativeMux> {
 public:
  static Napi::Function Define(Napi::Env env);

  /**
   * new NativeMux(workers, maxFrameBytes, frameTimeoutMs, maxBufferedBytes, workerQueueDepth, maxInFlight,
   *               maxInFlightPerConnection, maxPendingWriteBytes, busyWorkerGraceUs, workerBacklogUs, onHangup(id, error, notice): notice 'shed' (error null): takeShed() has frames to answer, or a kTLS KeyUpdate step,
   *               gcPauses (Int32Array | null), lanes ({ workers, format, names } | null: slow_methods.h))
   */
  explicit NativeMux(const Napi::CallbackInfo& info);
  ~NativeMux() override;

 private:
  /** add(tcpFd, tls, tls13, keyUpdateRecords, keyUpdateBytes (0: none)) → connection id; the fd is duplicated and must not be read by anyone else. */
  Napi::Value Add(const Napi::CallbackInfo& info);
  /** workerFds(id) → the worker ends of the connection's pairs, one per slot. */
  Napi::Value WorkerFds(const Napi::CallbackInfo& info);
  /** counts(id) → { parsed, refused, unsent } (io_loop.h IoCounts). */
  Napi::Value Counts(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  /** reply(id, frame): a whole frame for the connection's TCP socket (an error reply built on the main thread). */
  Napi::Value Reply(const Napi::CallbackInfo& info);
  /** takeWorker(slot) → [{ id, heads: Buffer[] }]: what the dead worker held (IoLoop::TakeWorker). */
  Napi::Value TakeWorker(const Napi::CallbackInfo& info);
  /** detached(id, slot) → Buffer[]: worker `slot` let go of connection `id`; the heads it will never read (IoLoop::Detached). */
  Napi::Value Detached(const Napi::CallbackInfo& info);
  /** takeShed() → [{ id, heads: Buffer[] }]: frames shed over the in-flight limits (IoLoop::TakeShed). */
  Napi::Value TakeShed(const Napi::CallbackInfo& info);
  static Napi::Value Heads(Napi::Env env, const std::vector<LostRequests>& lost);
  /** queued() → frames waiting in the I/O thread for a worker. */
  Napi::Value Queued(const Napi::CallbackInfo& info);
  Napi::Value SetAlive(const Napi::CallbackInfo& info);
  /** kTLS KeyUpdate steps (IoLoop::ResumeRead, EndRead, KeyUpdateTx, ResumeWrite), each taking the connection id first. */
  Napi::Value ResumeRead(const Napi::CallbackInfo& info);
  Napi::Value EndRead(const Napi::CallbackInfo& info);
  Napi::Value KeyUpdateTx(const Napi::CallbackInfo& info);
  Napi::Value ResumeWrite(const Napi::CallbackInfo& info);
  static uint64_t Id(const Napi::CallbackInfo& info);
  static MethodWire WireOf(Napi::Env env, const Napi::String& format);
  static std::vector<std::string> NamesOf(const Napi::Array& names);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnAsync(uv_async_t* handle);
  static void OnEnvCleanup(void* self);
  IoLoop& Loop(Napi::Env env);
  void Shutdown();

  Napi::Env env_;
  std::unique_ptr<IoLoop> loop_;
  uv_async_t* async_ = nullptr;  // freed in its close callback
  Napi::FunctionReference on_hangup_;
  // The workers' GC pause cells the I/O thread reads (WorkerClocks); kept alive with the loop.
  Napi::Reference<Napi::Int32Array> gc_pauses_;
};

}  // namespace kmux
