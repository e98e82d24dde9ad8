// System-call failures as JS errors shaped like Node's own (err.code "EPIPE",
// err.errno, err.syscall), so the TS layer and the core can switch on code.
#pragma once

#include <napi.h>

#include <cstring>
#include <string>

#include "sys_failure.h"

namespace kmux {

/** "EAFNOSUPPORT", or "errno 523" for values glibc cannot name. */
inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "errno " + std::to_string(err);
}

/** Error object for a failed call: message "call: CODE (strerror)". */
inline Napi::Error SysError(Napi::Env env, const std::string& call, int err) {
  const std::string code = ErrnoName(err);
  Napi::Error error = Napi::Error::New(env, call + ": " + code + " (" + std::strerror(err) + ")");
  Napi::Object fields = error.Value();
  fields.Set("code", code);
  fields.Set("errno", Napi::Number::New(env, err));
  fields.Set("syscall", call);
  return error;
}

inline Napi::Error SysError(Napi::Env env, const SysFailure& failure) { return SysError(env, failure.call, failure.err); }

/**
 * Runs a JS callback from a libuv callback (no JS on the stack). MakeCallback
 * drains microtasks; a throwing callback becomes an uncaught exception, as it
 * would for a Node socket's 'data' listener, instead of unwinding into libuv.
 */
inline void CallFromLoop(Napi::Env env, const Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  Napi::HandleScope scope(env);
  try {
    fn.MakeCallback(env.Global(), args);  // napi_make_callback needs an object receiver
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

}  // namespace kmux
