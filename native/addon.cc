// The @kmux/native module. Context-aware (Napi::Addon): every Node environment,
// the main thread and each worker thread, gets its own instance and nothing is
// shared through static mutable state, so loading it in workers is safe. The
// classes (KcmMux, MessageWatcher, NativeMux, PollGroup, Sockmap) poll on the loop of the environment
// that creates them.
#include <napi.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "errors.h"
#include "gc_watch.h"
#include "kcm_mux.h"
#include "ktls.h"  // kTLS record layer (ktls.cc, fd_poll.cc)
#include "message_watcher.h"
#include "native_mux.h"
#include "poll_group.h"
#include "probe.h"
#include "sched_slice.h"
#include "sockmap.h"

namespace kmux {
namespace {

/** { ok, errno, code, reason }: reason names the call and, on failure, the errno. */
Napi::Object ToJs(Napi::Env env, const Check& check) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", check.ok);
  out.Set("errno", check.err);
  if (check.ok) {
    out.Set("code", env.Null());
    out.Set("reason", check.call + ": ok");
  } else {
    const std::string code = ErrnoName(check.err);
    out.Set("code", code);
    out.Set("reason", check.call + ": " + code + " (" + std::strerror(check.err) + ")");
  }
  return out;
}

Napi::Object ToJs(Napi::Env env, const KernelProbe& probe) {
  Napi::Object ciphers = Napi::Object::New(env);
  for (const CipherCheck& cipher : probe.tls_ciphers) {
    Napi::Object directions = Napi::Object::New(env);
    directions.Set("tx", ToJs(env, cipher.tx));
    directions.Set("rx", ToJs(env, cipher.rx));
    ciphers.Set(cipher.name, directions);
  }
  Napi::Object ktls = Napi::Object::New(env);
  ktls.Set("ulp", ToJs(env, probe.tls_ulp));
  ktls.Set("ciphers", ciphers);
  ktls.Set("rekey", ToJs(env, probe.tls_rekey));

  Napi::Object sockmap = Napi::Object::New(env);
  sockmap.Set("map", ToJs(env, probe.sockmap_map));
  sockmap.Set("streamParser", ToJs(env, probe.sockmap_parser));
  sockmap.Set("insertTcp", ToJs(env, probe.sockmap_insert));

  Napi::Object caps = Napi::Object::New(env);
  caps.Set("query", ToJs(env, probe.caps.query));
  caps.Set("bpf", probe.caps.bpf);
  caps.Set("netAdmin", probe.caps.net_admin);

  Napi::Object out = Napi::Object::New(env);
  out.Set("release", probe.release);
  out.Set("kcm", ToJs(env, probe.kcm));
  out.Set("kcmAttach", ToJs(env, probe.kcm_attach));
  out.Set("ktls", ktls);
  out.Set("bpf", ToJs(env, probe.bpf_prog));
  out.Set("sockmap", sockmap);
  out.Set("capabilities", caps);
  return out;
}

class NativeAddon : public Napi::Addon<NativeAddon> {
 public:
  NativeAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {InstanceMethod("probeKernel", &NativeAddon::ProbeKernel),
                          InstanceMethod("setFrameTimeout", &NativeAddon::SetFrameTimeout),
                          InstanceMethod("setThreadSlice", &NativeAddon::SetThreadSlice),
                          InstanceMethod("watchGcPauses", &NativeAddon::WatchGcPauses),
                          InstanceValue("KcmMux", KcmMux::Define(env)),
                          InstanceValue("MessageWatcher", MessageWatcher::Define(env)),
                          InstanceValue("NativeMux", NativeMux::Define(env)),
                          InstanceValue("PollGroup", PollGroup::Define(env)),
                          InstanceValue("Sockmap", Sockmap::Define(env)),
                          InstanceValue("ktls", ktls::Define(env))});
  }

 private:
  Napi::Value ProbeKernel(const Napi::CallbackInfo& info) { return ToJs(info.Env(), kmux::ProbeKernel()); }

  // setThreadSlice(us): a short EEVDF slice for the calling thread; a check, never a throw.
  Napi::Value SetThreadSlice(const Napi::CallbackInfo& info) {
    const int64_t us = info[0].As<Napi::Number>().Int64Value();
    return ToJs(info.Env(), kmux::SetThreadSlice(static_cast<uint64_t>(us > 0 ? us : 0)));
  }

  // watchGcPauses(cells, index): cells[index] is 1 while this thread's heap is in a GC
  // pause. One watch per thread: a second call replaces the first.
  Napi::Value WatchGcPauses(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Napi::TypeError::New(env, "watchGcPauses(cells: Int32Array, index: number)");
    }
    Napi::Int32Array cells = info[0].As<Napi::Int32Array>();
    const int64_t index = info[1].As<Napi::Number>().Int64Value();
    if (index < 0 || static_cast<size_t>(index) >= cells.ElementLength()) throw Napi::RangeError::New(env, "watchGcPauses: index out of range");
    gc_watch_.reset();
    gc_watch_ = std::make_unique<GcWatch>(cells, static_cast<uint32_t>(index));
    return env.Undefined();
  }

  // setFrameTimeout(fd, ms): SO_RCVTIMEO on a TCP socket that a kernel stream parser
  // (KCM, sockmap) splits. strparser takes it as the time a message may take to complete
  // from its first byte; past it, it aborts the parser and reports ETIMEDOUT on the socket.
  Napi::Value SetFrameTimeout(const Napi::CallbackInfo& info) {
    const int fd = info[0].As<Napi::Number>().Int32Value();
    const int64_t ms = info[1].As<Napi::Number>().Int64Value();
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) throw SysError(info.Env(), "setsockopt(SO_RCVTIMEO)", errno);
    return info.Env().Undefined();
  }

  // Dropped with the addon instance, when the thread's environment ends.
  std::unique_ptr<GcWatch> gc_watch_;
};

}  // namespace
}  // namespace kmux

using kmux::NativeAddon;
NODE_API_ADDON(NativeAddon)
