#include "native_mux.h"

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"
#include "sys_failure.h"

namespace kmux {

Napi::Function NativeMux::Define(Napi::Env env) {
  return DefineClass(env, "NativeMux",
                     {InstanceMethod("add", &NativeMux::Add), InstanceMethod("workerFds", &NativeMux::WorkerFds),
                      InstanceMethod("counts", &NativeMux::Counts), InstanceMethod("remove", &NativeMux::Remove),
                      InstanceMethod("reply", &NativeMux::Reply), InstanceMethod("takeWorker", &NativeMux::TakeWorker),
                      InstanceMethod("detached", &NativeMux::Detached),
                      InstanceMethod("takeShed", &NativeMux::TakeShed), InstanceMethod("queued", &NativeMux::Queued),
                      InstanceMethod("setAlive", &NativeMux::SetAlive), InstanceMethod("resumeRead", &NativeMux::ResumeRead),
                      InstanceMethod("endRead", &NativeMux::EndRead), InstanceMethod("keyUpdateTx", &NativeMux::KeyUpdateTx),
                      InstanceMethod("resumeWrite", &NativeMux::ResumeWrite), InstanceMethod("close", &NativeMux::Close)});
}

NativeMux::NativeMux(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeMux>(info), env_(info.Env()) {
  IoConfig config{};
  config.workers = info[0].As<Napi::Number>().Uint32Value();
  config.max_frame = info[1].As<Napi::Number>().Uint32Value();
  config.frame_timeout_ms = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  config.max_buffered = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  config.queue_depth = info[4].As<Napi::Number>().Uint32Value();
  config.max_in_flight = info[5].As<Napi::Number>().Uint32Value();
  config.max_in_flight_per_connection = info[6].As<Napi::Number>().Uint32Value();
  config.max_pending_write = static_cast<uint64_t>(info[7].As<Napi::Number>().Int64Value());
  config.share_ns = static_cast<uint64_t>(info[8].As<Napi::Number>().Int64Value()) * 1000;
  config.backlog_ns = static_cast<uint64_t>(info[9].As<Napi::Number>().Int64Value()) * 1000;
  on_hangup_ = Napi::Persistent(info[10].As<Napi::Function>());
  if (info[11].IsTypedArray()) {
    Napi::Int32Array gc_pauses = info[11].As<Napi::Int32Array>();
    if (gc_pauses.ElementLength() < config.workers) throw Napi::RangeError::New(env_, "NativeMux: gcPauses has fewer cells than workers");
    gc_pauses_ = Napi::Persistent(gc_pauses);
    config.gc_pauses = gc_pauses.Data();
  }
  config.slow_workers = config.workers;
  if (info[12].IsObject()) {
    Napi::Object lanes = info[12].As<Napi::Object>();
    config.slow_workers = lanes.Get("workers").As<Napi::Number>().Uint32Value();
    config.slow_methods = SlowMethods(WireOf(env_, lanes.Get("format").As<Napi::String>()), NamesOf(lanes.Get("names").As<Napi::Array>()));
  }
  uv_loop_t* uv_loop = nullptr;
  if (napi_get_uv_event_loop(env_, &uv_loop) != napi_ok || uv_loop == nullptr) throw SysError(env_, "napi_get_uv_event_loop", EINVAL);
  async_ = new uv_async_t;
  const int rc = uv_async_init(uv_loop, async_, &NativeMux::OnAsync);
  if (rc != 0) {
    delete async_;
    async_ = nullptr;
    throw SysError(env_, "uv_async_init", -rc);
  }
  async_->data = this;
  // The listener keeps a serving process alive; this handle must not keep a closed one.
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  uv_async_t* async = async_;
  try {
    loop_ = std::make_unique<IoLoop>(config, [async] { uv_async_send(async); });
  } catch (const SysFailure& failure) {
    Shutdown();
    throw SysError(env_, failure);
  }
  napi_add_env_cleanup_hook(env_, &NativeMux::OnEnvCleanup, this);
}

MethodWire NativeMux::WireOf(Napi::Env env, const Napi::String& format) {
  const std::string name = format.Utf8Value();
  if (name == "raw") return MethodWire::kRaw;
  if (name == "thrift-binary") return MethodWire::kThriftBinary;
  if (name == "thrift-compact") return MethodWire::kThriftCompact;
  if (name == "protobuf") return MethodWire::kProtobuf;
  throw Napi::RangeError::New(env, "NativeMux: unknown method name format '" + name + "'");
}

std::vector<std::string> NativeMux::NamesOf(const Napi::Array& names) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < names.Length(); ++i) out.push_back(names.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

NativeMux::~NativeMux() {
  if (async_ != nullptr) napi_remove_env_cleanup_hook(env_, &NativeMux::OnEnvCleanup, this);
  Shutdown();
}

void NativeMux::OnEnvCleanup(void* self) { static_cast<NativeMux*>(self)->Shutdown(); }

void NativeMux::Shutdown() {
  // The thread first: it is the one that signals the async handle.
  if (loop_) loop_->Stop();
  loop_.reset();
  if (async_ != nullptr) {
    async_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
    async_ = nullptr;
  }
}

IoLoop& NativeMux::Loop(Napi::Env env) {
  if (!loop_) throw SysError(env, "native mux closed", EBADF);
  return *loop_;
}

void NativeMux::OnAsync(uv_async_t* handle) {
  auto* self = static_cast<NativeMux*>(handle->data);
  if (self == nullptr || !self->loop_) return;
  std::vector<IoHangup> hangups = self->loop_->TakeHangups();
  // A thread that is stopping cannot run JS; nothing is left to tell.
  GuardLoopCallback([&] {
    for (const IoHangup& hangup : hangups) {
      if (!self->loop_) return;
      Napi::HandleScope scope(self->env_);
      const Napi::Number id = Napi::Number::New(self->env_, static_cast<double>(hangup.id));
      if (hangup.kind != IoHangup::Kind::kNone) {
        const char* event = hangup.kind == IoHangup::Kind::kKeyUpdate            ? "key_update"
                            : hangup.kind == IoHangup::Kind::kKeyUpdateRequested ? "key_update_requested"
                            : hangup.kind == IoHangup::Kind::kTxDue              ? "tx_due"
                            : hangup.kind == IoHangup::Kind::kTxParked           ? "tx_parked"
                                                                                          : "shed";
        CallFromLoop(self->env_, self->on_hangup_, {id, self->env_.Null(), Napi::String::New(self->env_, event)});
        continue;
      }
      Napi::Value error;
      if (hangup.err == 0) {
        Napi::Error eof = Napi::Error::New(self->env_, "the peer closed its side (" + hangup.call + ")");
        eof.Value().Set("code", "EOF");
        eof.Value().Set("errno", Napi::Number::New(self->env_, 0));
        eof.Value().Set("syscall", hangup.call);
        error = eof.Value();
      } else {
        error = SysError(self->env_, hangup.call, hangup.err).Value();
      }
      CallFromLoop(self->env_, self->on_hangup_, {id, error});
    }
  });
}

Napi::Value NativeMux::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int> fds;
  try {
    const bool tls = info[1].ToBoolean().Value();
    const IoTls options{info[2].ToBoolean().Value(), static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()),
                        static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value())};
    const uint64_t id = Loop(env).Add(info[0].As<Napi::Number>().Int32Value(), &fds, tls ? &options : nullptr);
    return Napi::Number::New(env, static_cast<double>(id));
  } catch (const SysFailure& failure) {
    throw SysError(env, failure);
  }
}

Napi::Value NativeMux::WorkerFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<int> fds = Loop(env).WorkerFds(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  Napi::Array out = Napi::Array::New(env, fds.size());
  for (uint32_t i = 0; i < fds.size(); ++i) out.Set(i, fds[i]);
  return out;
}

Napi::Value NativeMux::Counts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const IoCounts counts = Loop(env).Counts(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  Napi::Object out = Napi::Object::New(env);
  out.Set("parsed", counts.parsed);
  out.Set("refused", counts.refused);
  out.Set("unsent", static_cast<double>(counts.unsent));
  return out;
}

Napi::Value NativeMux::Remove(const Napi::CallbackInfo& info) {
  Loop(info.Env()).Remove(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value NativeMux::Reply(const Napi::CallbackInfo& info) {
  auto frame = info[1].As<Napi::Uint8Array>();
  Loop(info.Env()).Reply(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                         std::string(reinterpret_cast<const char*>(frame.Data()), frame.ByteLength()));
  return info.Env().Undefined();
}

Napi::Value NativeMux::TakeWorker(const Napi::CallbackInfo& info) {
  return Heads(info.Env(), Loop(info.Env()).TakeWorker(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value NativeMux::Detached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<std::string> unread =
      Loop(env).Detached(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()), info[1].As<Napi::Number>().Uint32Value());
  Napi::Array out = Napi::Array::New(env, unread.size());
  for (uint32_t i = 0; i < unread.size(); ++i) out.Set(i, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(unread[i].data()), unread[i].size()));
  return out;
}

Napi::Value NativeMux::TakeShed(const Napi::CallbackInfo& info) { return Heads(info.Env(), Loop(info.Env()).TakeShed()); }

Napi::Value NativeMux::Queued(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Loop(info.Env()).Queued()));
}

Napi::Value NativeMux::Heads(Napi::Env env, const std::vector<LostRequests>& lost) {
  Napi::Array out = Napi::Array::New(env, lost.size());
  for (uint32_t i = 0; i < lost.size(); ++i) {
    Napi::Array heads = Napi::Array::New(env, lost[i].heads.size());
    for (uint32_t j = 0; j < lost[i].heads.size(); ++j) {
      const std::string& head = lost[i].heads[j];
      heads.Set(j, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(head.data()), head.size()));
    }
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("id", static_cast<double>(lost[i].id));
    entry.Set("heads", heads);
    out.Set(i, entry);
  }
  return out;
}

Napi::Value NativeMux::SetAlive(const Napi::CallbackInfo& info) {
  Loop(info.Env()).SetAlive(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

uint64_t NativeMux::Id(const Napi::CallbackInfo& info) { return static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()); }

Napi::Value NativeMux::ResumeRead(const Napi::CallbackInfo& info) {
  Loop(info.Env()).ResumeRead(Id(info));
  return info.Env().Undefined();
}

Napi::Value NativeMux::EndRead(const Napi::CallbackInfo& info) {
  Loop(info.Env()).EndRead(Id(info));
  return info.Env().Undefined();
}

Napi::Value NativeMux::KeyUpdateTx(const Napi::CallbackInfo& info) {
  auto message = info[1].As<Napi::Uint8Array>();
  Loop(info.Env()).KeyUpdateTx(Id(info), std::string(reinterpret_cast<const char*>(message.Data()), message.ByteLength()));
  return info.Env().Undefined();
}

Napi::Value NativeMux::ResumeWrite(const Napi::CallbackInfo& info) {
  Loop(info.Env()).ResumeWrite(Id(info));
  return info.Env().Undefined();
}

Napi::Value NativeMux::Close(const Napi::CallbackInfo& info) {
  if (async_ != nullptr) napi_remove_env_cleanup_hook(env_, &NativeMux::OnEnvCleanup, this);
  Shutdown();
  return info.Env().Undefined();
}

}  // namespace kmux
