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
  napi_value result;
  // The C call, not Napi's MakeCallback: when the thread is stopping (a worker exiting
  // or terminated while its loop still has a poll event) JS cannot run, the call fails
  // with no exception pending, and Napi would abort the process building an Error for it.
  const napi_status status =
      napi_make_callback(env, nullptr, env.Global(), fn.Value(), args.size(), args.begin(), &result);
  if (status == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value error;
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
}

/**
 * Whether this thread may still run JS. Once it is stopping (a worker exiting, terminated,
 * or out of its heap limit) libuv still runs the rest of the loop turn's callbacks, but
 * nothing can reach JS: a property check, which Node refuses then, tells.
 */
inline bool JsCanRun(napi_env env) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value object;
  bool has = false;
  const bool can = napi_create_object(env, &object) == napi_ok && napi_has_named_property(env, object, "kmux", &has) == napi_ok;
  napi_close_handle_scope(env, scope);
  return can;
}

/**
 * Runs `body` in a libuv callback. Once its thread is stopping (a worker exiting or
 * terminated), building a JS value fails and node-addon-api throws Napi::Error: unwound
 * into libuv, that would terminate the whole process. Nobody is left to tell then.
 */
template <typename Body>
void GuardLoopCallback(Body&& body) {
  try {
    body();
  } catch (const Napi::Error&) {
  }
}

}  // namespace kmux
