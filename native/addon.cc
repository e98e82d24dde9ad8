// The @kmux/native module. Context-aware (Napi::Addon): every Node environment,
// the main thread and each worker thread, gets its own instance and nothing is
// shared through static mutable state, so loading it in workers is safe.
#include <napi.h>

#include <cstring>
#include <string>

#include "probe.h"

namespace kmux {
namespace {

/** "EAFNOSUPPORT", or "errno 523" for values glibc cannot name. */
std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "errno " + std::to_string(err);
}

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
  NativeAddon(Napi::Env /*env*/, Napi::Object exports) {
    DefineAddon(exports, {InstanceMethod("probeKernel", &NativeAddon::ProbeKernel)});
  }

 private:
  Napi::Value ProbeKernel(const Napi::CallbackInfo& info) { return ToJs(info.Env(), kmux::ProbeKernel()); }
};

}  // namespace
}  // namespace kmux

using kmux::NativeAddon;
NODE_API_ADDON(NativeAddon)
