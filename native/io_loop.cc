#include "io_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>

#include "byte_order.h"
#include "sys_failure.h"

namespace kmux {
namespace {

/** Bytes asked of each read: one read takes many small frames. */
constexpr size_t kChunk = 256 * 1024;
constexpr uint16_t kTcpTag = 0xFFFF;
constexpr uint64_t kWakeKey = 0;
/** kTLS: readable wakeups in a row with no whole record before reads pause for a tick (kBackoffMs). */
constexpr uint32_t kEmptyReadsBeforeBackoff = 4;
constexpr int kBackoffMs = 1;
/** kTLS: a record carries at most 16 KiB of plaintext. */
constexpr size_t kMaxRecord = 16 * 1024;
/** Reads per readable wakeup before other connections get their turn. */
constexpr int kReadRounds = 4;
/** Sheds a connection may cost per request answered (REFUSALS_PER_SERVED in packages/core's server/push-back.ts). */
constexpr int64_t kRefusalsPerServed = 4;

void AppendBe32(std::string* out, uint32_t value) {
  const uint32_t be = htonl(value);
  out->append(reinterpret_cast<const char*>(&be), sizeof be);
}

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Key(uint64_t id, uint16_t tag) { return (id << 16) | tag; }

}  // namespace

IoLoop::IoLoop(const IoConfig& config, std::function<void()> notify)
    : config_(config),
      notify_(std::move(notify)),
      workers_(config.workers, config.slow_workers, config.queue_depth, config.share_ns, config.backlog_ns, config.gc_pauses),
      scratch_(kChunk) {
  epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.Valid()) ThrowErrno("epoll_create1");
  wake_.Reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_.Valid()) ThrowErrno("eventfd");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeKey;
  if (epoll_ctl(epoll_.Get(), EPOLL_CTL_ADD, wake_.Get(), &event) != 0) ThrowErrno("epoll_ctl(eventfd)");
  thread_ = std::thread([this] { Run(); });
}

IoLoop::~IoLoop() { Stop(); }

void IoLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& entry : connections_) {
    for (WorkerPair& pair : entry.second->pairs) ClosePair(pair);
  }
  connections_.clear();
}

uint64_t IoLoop::Add(int tcp_fd, std::vector<int>* worker_fds, const IoTls* tls) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto c = std::make_unique<Connection>(next_id_++, config_.max_frame);
  if (tls != nullptr) {
    c->tls = std::make_unique<TlsRecords>(tls->tls13);
    c->key_update_records = tls->key_update_records;
    c->key_update_bytes = tls->key_update_bytes;
  }
  c->tcp.Reset(fcntl(tcp_fd, F_DUPFD_CLOEXEC, 0));
  if (!c->tcp.Valid()) ThrowErrno("fcntl(F_DUPFD_CLOEXEC)");
  c->pairs.resize(config_.workers);
  try {
    for (uint32_t slot = 0; slot < config_.workers; ++slot) OpenPair(*c, slot);
  } catch (const SysFailure&) {
    for (WorkerPair& pair : c->pairs) ClosePair(pair);
    throw;
  }
  worker_fds->clear();
  for (const WorkerPair& pair : c->pairs) worker_fds->push_back(pair.worker_fd());
  Connection& added = *c;
  connections_.emplace(c->id, std::move(c));
  UpdateTcp(added);
  return added.id;
}

void IoLoop::OpenPair(Connection& c, uint32_t slot) {
  c.pairs[slot].Open();
  UpdatePair(c, slot);
}

void IoLoop::ClosePair(WorkerPair& pair) {
  if (pair.events != 0) epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, pair.io_fd(), nullptr);
  pair.Reset();
}

void IoLoop::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  for (uint32_t slot = 0; slot < c.pairs.size(); ++slot) {
    workers_.Forget(slot, c.pairs[slot].unanswered());
    ClosePair(c.pairs[slot]);
  }
  if (c.tcp_events != 0) epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, c.tcp.Get(), nullptr);
  if (c.tls && !c.failed) {
    // Our orderly end, as KtlsSocket ends: close_notify (not after a KeyUpdate we could not
    // follow: the peer's key moved on; nor after ours before the kernel has our next key: the
    // peer's did), then a FIN after the replies.
    if (!c.linger && !c.tx_parked) TlsRecords::SendCloseNotify(c.tcp.Get());
    shutdown(c.tcp.Get(), SHUT_WR);
  }
  buffered_ -= c.splitter.held() + c.queued_bytes + c.held_frames.size();
  queued_ -= c.waiting();
  held_ -= c.held;
  shed_.erase(id);
  connections_.erase(it);
}

std::vector<int> IoLoop::WorkerFds(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> fds;
  auto it = connections_.find(id);
  if (it == connections_.end()) return fds;
  for (const WorkerPair& pair : it->second->pairs) fds.push_back(pair.worker_fd());
  return fds;
}

IoCounts IoLoop::Counts(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  IoCounts counts;
  auto it = connections_.find(id);
  if (it == connections_.end()) return counts;
  const Connection& c = *it->second;
  counts.parsed = c.splitter.parsed();
  counts.refused = c.refused;
  counts.unsent = c.out.size() - c.out_sent;
  for (const WorkerPair& pair : c.pairs) {
    int queued = 0;
    // What the worker wrote that this thread has not read yet (a partial record here included).
    if (pair.worker_fd() >= 0 && ioctl(pair.worker_fd(), SIOCOUTQ, &queued) == 0) counts.unsent += static_cast<uint64_t>(queued);
    counts.unsent += pair.partial_answer_bytes();
  }
  // Closed with the peer's records after its KeyUpdate unread, the socket would reset and drop
  // replies not yet acknowledged: the owner waits for those too.
  int unacked = 0;
  if (c.linger && counts.unsent == 0 && ioctl(c.tcp.Get(), SIOCOUTQ, &unacked) == 0) counts.unsent = static_cast<uint64_t>(unacked);
  return counts;
}

void IoLoop::Reply(uint64_t id, std::string frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  it->second->out.append(frame);
  MarkDirty(*it->second);
  Wake();
}

std::vector<LostRequests> IoLoop::TakeWorker(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LostRequests> lost;
  if (slot >= workers_.size()) return lost;
  now_ns_ = NowNs();
  for (auto& entry : connections_) {
    Connection& c = *entry.second;
    // What it answered before dying still goes out.
    if (c.pairs[slot].open()) ReadAnswers(c, slot);
    LostRequests requests{c.id, c.pairs[slot].TakeUnanswered()};
    c.held -= static_cast<uint32_t>(requests.heads.size());
    held_ -= requests.heads.size();
    MaybeResume(c);
    MarkDirty(c);
    ClosePair(c.pairs[slot]);
    try {
      OpenPair(c, slot);
    } catch (const SysFailure& failure) {
      End(c, failure.err, "socketpair for a replacement worker");
    }
    if (!requests.heads.empty()) lost.push_back(std::move(requests));
  }
  workers_.Died(slot);
  Wake();
  return lost;
}

std::vector<std::string> IoLoop::Detached(uint64_t id, uint32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || slot >= it->second->pairs.size()) return {};
  Connection& c = *it->second;
  now_ns_ = NowNs();
  WorkerPair& pair = c.pairs[slot];
  if (pair.open()) ReadAnswers(c, slot);
  pair.detached = true;
  // A worker lets go only with nothing of this connection in flight: what it holds unanswered
  // now arrived after its last read, and no one will read it.
  std::vector<std::string> unread = pair.TakeUnanswered();
  c.held -= static_cast<uint32_t>(unread.size());
  held_ -= unread.size();
  MaybeResume(c);
  MarkDirty(c);
  Wake();
  return unread;
}

void IoLoop::SetAlive(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (slot >= workers_.size()) return;
  workers_.SetAlive(slot);
  // Frames may wait for it: the loop drains them on its next round.
  Wake();
}

uint64_t IoLoop::Queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_;
}

std::vector<IoHangup> IoLoop::TakeHangups() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<IoHangup> taken;
  taken.swap(hangups_);
  return taken;
}

void IoLoop::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  constexpr int kEvents = 256;
  epoll_event events[kEvents];
  const uint64_t sweep_ns = std::clamp<uint64_t>(config_.frame_timeout_ms * 1'000'000 / 4, 5'000'000, 250'000'000);
  next_sweep_ns_ = NowNs() + sweep_ns;
  while (!stopping_) {
    const uint64_t before = NowNs();
    int timeout_ms = next_sweep_ns_ > before ? static_cast<int>((next_sweep_ns_ - before) / 1'000'000) + 1 : 0;
    if (!backoff_.empty()) timeout_ms = std::min(timeout_ms, kBackoffMs);
    if (!reread_.empty()) timeout_ms = 0;
    lock.unlock();
    const int n = epoll_wait(epoll_.Get(), events, kEvents, timeout_ms);
    lock.lock();
    if (stopping_) break;
    now_ns_ = NowNs();
    ForEachPending(backoff_, [this](Connection& c) {
      c.backoff = false;
      UpdateTcp(c);
    });
    ForEachPending(reread_, [this](Connection& c) {
      if (Reading(c)) ReadTcp(c);
    });
    for (int i = 0; i < n; ++i) {
      const uint64_t key = events[i].data.u64;
      if (key == kWakeKey) {
        uint64_t count;
        (void)!read(wake_.Get(), &count, sizeof count);
        continue;
      }
      auto it = connections_.find(key >> 16);
      if (it == connections_.end()) continue;  // removed while this thread waited
      const uint16_t tag = static_cast<uint16_t>(key & 0xFFFF);
      if (tag == kTcpTag) HandleTcp(*it->second, events[i].events);
      else if (tag < it->second->pairs.size()) HandlePair(*it->second, tag, events[i].events);
    }
    Resume();
    Drain();
    Feed();
    ForEachPending(dirty_, [this](Connection& c) {
      c.dirty = false;
      bool pairs_flushed = true;
      for (uint32_t slot = 0; slot < c.pairs.size(); ++slot) {
        FlushPair(c, slot);
        pairs_flushed = pairs_flushed && !c.pairs[slot].has_output();
      }
      FlushTcp(c);
      // The peer's FIN is reported once every frame it sent is in a worker's stream, so a
      // worker told to finish reads them all (KernelConnection.detach flushes its watcher).
      if (c.eof && !c.ended && c.waiting() == 0 && pairs_flushed) End(c, 0, c.eof_call);
    });
    if (now_ns_ >= next_sweep_ns_) {
      next_sweep_ns_ = now_ns_ + sweep_ns;
      Sweep();
    }
  }
}

void IoLoop::HandleTcp(Connection& c, uint32_t events) {
  if ((events & EPOLLOUT) != 0) MarkDirty(c);
  if (c.failed) return;
  if ((events & EPOLLERR) != 0) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.tcp.Get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return End(c, err, "poll");
  }
  if (!c.eof && !c.rx_parked && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) return ReadTcp(c);
  // Both directions are shut with no error: nobody reads the replies.
  if ((events & EPOLLHUP) != 0) End(c, EPIPE, "poll");
}

void IoLoop::ReadTcp(Connection& c) {
  for (int round = 0; round < kReadRounds; ++round) {
    if (Starving()) {
      if (!c.starved) starved_.push_back(c.id);
      c.starved = true;
      return UpdateTcp(c);
    }
    uint8_t type = TlsRecords::kApplicationData;
    const ssize_t n = c.tls ? TlsRecords::Receive(c.tcp.Get(), scratch_.data(), scratch_.size(), &type)
                            : recv(c.tcp.Get(), scratch_.data(), scratch_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return End(c, errno, c.tls ? "recvmsg (kTLS)" : "recv");
      if (c.tls && round == 0 && ++c.empty_reads >= kEmptyReadsBeforeBackoff) BackOff(c);
      return;
    }
    c.empty_reads = 0;
    if (n == 0) return Eof(c, c.tls ? "eof" : "read");
    if (type != TlsRecords::kApplicationData) {
      if (!Control(c, type, scratch_.data(), static_cast<size_t>(n))) return;
      continue;
    }
    if (!Split(c, scratch_.data(), static_cast<size_t>(n))) return;
    if (c.pushed_back) return UpdateTcp(c);
    // On TCP a short read drained the socket. On kTLS it may have stopped at a control record
    // the kernel decrypted to learn its type; if that is a KeyUpdate, the socket polls as not
    // readable until the next key is set (Linux >= 6.14), so only reading on finds it.
    if (!c.tls && static_cast<size_t>(n) < scratch_.size()) return;
  }
  // Rounds used up: TCP polls readable again, a kTLS socket may not (above): read on next round.
  if (c.tls) reread_.push_back(c.id);
}

void IoLoop::Eof(Connection& c, const char* call) {
  // A frame cut short by the end was never whole: it is dropped, as the kernel parsers drop it.
  c.eof = true;
  c.eof_call = call;
  buffered_ -= c.splitter.held();
  c.splitter.Drop();
  UpdateTcp(c);
  MarkDirty(c);
}

bool IoLoop::Control(Connection& c, uint8_t type, const uint8_t* data, size_t len) {
  const TlsRecords::Control control = c.tls->OnControl(type, data, len);
  switch (control.outcome) {
    case TlsRecords::Outcome::kNone:
      return true;
    case TlsRecords::Outcome::kCloseNotify:
      Eof(c, "close_notify");
      return false;
    case TlsRecords::Outcome::kKeyUpdate:
    case TlsRecords::Outcome::kKeyUpdateRequested:
      // Until TLS_RX has the next key, reads fail (EKEYEXPIRED): the main thread sets it.
      c.rx_parked = true;
      UpdateTcp(c);
      Event(c, control.outcome == TlsRecords::Outcome::kKeyUpdate ? IoHangup::Kind::kKeyUpdate
                                                                  : IoHangup::Kind::kKeyUpdateRequested);
      return false;
    case TlsRecords::Outcome::kFatal:
      End(c, control.err, control.why.c_str());
      return false;
  }
  return false;
}

void IoLoop::BackOff(Connection& c) {
  c.empty_reads = 0;
  if (c.backoff) return;
  c.backoff = true;
  backoff_.push_back(c.id);
  UpdateTcp(c);
}

void IoLoop::Event(Connection& c, IoHangup::Kind event) {
  hangups_.push_back({c.id, 0, {}, event});
  notify_();
}

void IoLoop::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_.Get(), &one, sizeof one);
}

void IoLoop::ResumeRead(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || !it->second->rx_parked) return;
  it->second->rx_parked = false;
  UpdateTcp(*it->second);
  // Records that arrived under the new key while reading was parked do not make the socket
  // poll readable again (measured on 7.3: the connection stalled with them queued): read now.
  reread_.push_back(id);
  Wake();
}

void IoLoop::EndRead(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second->ended) return;
  Connection& c = *it->second;
  c.rx_parked = false;
  c.linger = true;
  Eof(c, "key_update");
  Wake();
}

void IoLoop::KeyUpdateTx(uint64_t id, std::string message) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second->failed || it->second->tx_pending) return;
  Connection& c = *it->second;
  c.tx_update = std::move(message);
  c.tx_mark = c.out.size();
  c.tx_pending = true;
  MarkDirty(c);
  Wake();
}

void IoLoop::ResumeWrite(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || !it->second->tx_parked) return;
  it->second->tx_parked = false;
  MarkDirty(*it->second);
  Wake();
}

bool IoLoop::Split(Connection& c, const uint8_t* data, size_t len) {
  const size_t before = c.splitter.held();
  const uint32_t refused = c.splitter.Push(data, len, now_ns_, [this, &c](const uint8_t* frame, size_t size) { Frame(c, frame, size); });
  buffered_ = buffered_ - before + c.splitter.held();
  if (refused == 0) return true;
  Refuse(c, refused);
  return false;
}

void IoLoop::Refuse(Connection& c, uint32_t length) {
  // Kept for the main thread: a "length" that starts an unframed message names the client's mistake.
  c.refused = length;
  End(c, EMSGSIZE, "frame length above maxFrameBytes");
}

void IoLoop::Frame(Connection& c, const uint8_t* frame, size_t len) {
  if (c.pushed_back) {
    c.held_frames.append(reinterpret_cast<const char*>(frame), len);
    buffered_ += len;
    return;
  }
  const Lane lane = config_.slow_methods.Match(frame + 4, len - 4) ? kSlowLane : kAnyLane;
  if (c.queued[lane].empty()) {
    const int slot = workers_.Pick(now_ns_, lane);
    if (slot >= 0) return Commit(c, static_cast<uint32_t>(slot), frame, len);
  }
  if (OverLimit(c)) return Shed(c, frame, len);
  c.queued[lane].emplace_back(reinterpret_cast<const char*>(frame), len);
  c.queued_bytes += len;
  buffered_ += len;
  queued_++;
  if (!c.in_ring[lane]) {
    rings_[lane].push_back(c.id);
    c.in_ring[lane] = true;
  }
}

void IoLoop::Commit(Connection& c, uint32_t slot, const uint8_t* frame, size_t len) {
  // A drain: the chosen worker let go of this connection; another that still serves it takes
  // the frame, or, when none is left, it is refused like a shed one.
  if (c.pairs[slot].detached) {
    const auto serving = std::find_if(c.pairs.begin(), c.pairs.end(), [](const WorkerPair& pair) { return pair.open() && !pair.detached; });
    if (serving == c.pairs.end()) return Refuse(c, frame, len);
    slot = static_cast<uint32_t>(serving - c.pairs.begin());
  }
  c.pairs[slot].Queue(frame, len);
  workers_.Sent(slot, now_ns_);
  c.held++;
  held_++;
  MarkDirty(c);
}

bool IoLoop::OverLimit(const Connection& c) {
  const uint64_t mine = c.waiting() + c.held;
  if (mine >= config_.max_in_flight_per_connection) return true;
  if (queued_ + held_ < config_.max_in_flight) return false;
  if (fair_share_at_ns_ != now_ns_) {
    fair_share_at_ns_ = now_ns_;
    uint64_t holding = 0;
    for (const auto& entry : connections_) holding += entry.second->waiting() == 0 && entry.second->held == 0 ? 0 : 1;
    fair_share_ = config_.max_in_flight / std::max<uint64_t>(holding, 1);
  }
  return mine >= std::max<uint64_t>(fair_share_, 1);
}

void IoLoop::Refuse(Connection& c, const uint8_t* frame, size_t len) {
  std::vector<std::string>& heads = shed_[c.id];
  if (heads.empty() && shed_.size() == 1) Event(c, IoHangup::Kind::kShed);
  heads.emplace_back(reinterpret_cast<const char*>(frame) + 4, std::min(len - 4, WorkerPair::kHeadBytes));
}

void IoLoop::Shed(Connection& c, const uint8_t* frame, size_t len) {
  Refuse(c, frame, len);
  // Over a limit, it holds at least one request, whose answer will resume it.
  if (c.refusal_credit < 0) c.refusal_credit = RefusalAllowance();
  if (--c.refusal_credit > 0) return;
  c.pushed_back = true;
  c.resume_at = (c.waiting() + c.held) / 2;
}

int64_t IoLoop::RefusalAllowance() const { return kRefusalsPerServed * config_.max_in_flight_per_connection; }

void IoLoop::MaybeResume(Connection& c) {
  if (!c.pushed_back || c.waiting() + c.held > c.resume_at || c.in_resumed) return;
  c.in_resumed = true;
  resumed_.push_back(c.id);
}

void IoLoop::Resume() {
  ForEachPending(resumed_, [this](Connection& c) {
    c.in_resumed = false;
    c.pushed_back = false;
    if (c.failed) return;
    // The held frames go first, in order, until it is pushed back again.
    std::string frames;
    frames.swap(c.held_frames);
    buffered_ -= frames.size();
    size_t at = 0;
    while (at < frames.size() && !c.pushed_back) {
      const size_t len = 4 + static_cast<size_t>(ReadBe32(reinterpret_cast<const uint8_t*>(frames.data()) + at));
      Frame(c, reinterpret_cast<const uint8_t*>(frames.data()) + at, len);
      at += len;
    }
    if (at < frames.size()) {
      c.held_frames.assign(frames, at, std::string::npos);
      buffered_ += c.held_frames.size();
    }
    if (c.pushed_back) return;
    c.splitter.Restart(now_ns_);
    UpdateTcp(c);
    // A KeyUpdate the kernel decrypted before reads stopped keeps a kTLS socket from polling readable.
    if (c.tls) reread_.push_back(c.id);
  });
}

std::vector<LostRequests> IoLoop::TakeShed() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LostRequests> shed;
  for (auto& entry : shed_) shed.push_back({entry.first, std::move(entry.second)});
  shed_.clear();
  return shed;
}

void IoLoop::Drain() {
  for (const Lane lane : {kAnyLane, kSlowLane}) {
    std::deque<uint64_t>& ring = rings_[lane];
    while (!ring.empty()) {
      const int slot = workers_.Pick(now_ns_, lane);
      if (slot < 0) break;
      const uint64_t id = ring.front();
      ring.pop_front();
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      std::deque<std::string>& queued = c.queued[lane];
      c.in_ring[lane] = false;
      if (queued.empty()) continue;
      std::string frame = std::move(queued.front());
      queued.pop_front();
      c.queued_bytes -= frame.size();
      buffered_ -= frame.size();
      queued_--;
      Commit(c, static_cast<uint32_t>(slot), reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
      if (!queued.empty()) {
        ring.push_back(id);
        c.in_ring[lane] = true;
      }
    }
  }
}

void IoLoop::HandlePair(Connection& c, uint32_t slot, uint32_t events) {
  if ((events & EPOLLOUT) != 0) MarkDirty(c);
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) ReadAnswers(c, slot);
}

void IoLoop::ReadAnswers(Connection& c, uint32_t slot) {
  WorkerPair& pair = c.pairs[slot];
  const auto on_answer = [this, &c, slot](uint32_t index, const uint8_t* reply, uint32_t len) {
    Answered(c, slot, index);
    // Answers are always read, so that a client that reads no replies holds up no worker; past
    // maxPendingWriteBytes of replies before this one, its connection ends instead.
    if (reply != nullptr && c.out.size() - c.out_sent > config_.max_pending_write) {
      End(c, ENOBUFS, "replies the client does not read above maxPendingWriteBytes");
    }
    if (reply != nullptr && !c.failed) {
      AppendBe32(&c.out, len);
      c.out.append(reinterpret_cast<const char*>(reply), len);
      MarkDirty(c);
    }
  };
  if (pair.Read(scratch_.data(), scratch_.size(), on_answer) == WorkerPair::ReadEnd::kDrained) return;
  // The worker's end is closed: the connection is going away, or the worker died (TakeWorker
  // replaces the pair and fails what it held).
  epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, pair.io_fd(), nullptr);
  pair.events = 0;
  pair.CloseIo();
}

void IoLoop::Answered(Connection& c, uint32_t slot, uint32_t index) {
  if (!c.pairs[slot].Answer(index)) return;
  workers_.Answered(slot, now_ns_);
  c.held--;
  held_--;
  if (c.refusal_credit >= 0) c.refusal_credit = std::min(RefusalAllowance(), c.refusal_credit + kRefusalsPerServed);
  MaybeResume(c);
}

void IoLoop::FlushPair(Connection& c, uint32_t slot) {
  c.pairs[slot].Flush();
  UpdatePair(c, slot);
}

void IoLoop::FlushTcp(Connection& c) {
  // kTLS: our KeyUpdate goes between two replies (each send ends a record), then the new key.
  const size_t end = c.tx_pending ? c.tx_mark : c.out.size();
  if (c.out_sent < end && !c.failed && !c.tx_parked) {
    for (;;) {
      const ssize_t n = send(c.tcp.Get(), c.out.data() + c.out_sent, end - c.out_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        c.out.clear();
        c.out_sent = 0;
        End(c, errno, "send");
        return;
      }
      if (n > 0) c.out_sent += static_cast<size_t>(n);
      if (n > 0 && c.tls) CountSent(c, static_cast<size_t>(n));
      break;
    }
  }
  if (c.tx_pending && c.out_sent == c.tx_mark && !c.failed) {
    const auto* message = reinterpret_cast<const uint8_t*>(c.tx_update.data());
    const ssize_t n = TlsRecords::Send(c.tcp.Get(), 22, message, c.tx_update.size());
    if (n == static_cast<ssize_t>(c.tx_update.size())) {
      c.tx_pending = false;
      c.tx_parked = true;
      c.tx_due = false;
      c.records_under_key = 0;
      c.bytes_under_key = 0;
      Event(c, IoHangup::Kind::kTxParked);
    } else if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      c.out.clear();
      c.out_sent = 0;
      End(c, n < 0 ? errno : EPROTO, "sendmsg(TLS_SET_RECORD_TYPE, KeyUpdate)");
      return;
    }
  }
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
    c.tx_mark = 0;
  } else if (c.out_sent > kChunk) {
    c.out.erase(0, c.out_sent);
    c.tx_mark -= std::min(c.tx_mark, c.out_sent);
    c.out_sent = 0;
  }
  UpdateTcp(c);
}

void IoLoop::CountSent(Connection& c, size_t bytes) {
  // kTLS ends a record at the end of each send: one record per 16 KiB started.
  c.records_under_key += (bytes + kMaxRecord - 1) / kMaxRecord;
  c.bytes_under_key += bytes;
  const bool over = (c.key_update_records != 0 && c.records_under_key >= c.key_update_records) ||
                    (c.key_update_bytes != 0 && c.bytes_under_key >= c.key_update_bytes);
  // A KeyUpdate already on its way starts the count again.
  if (!over || c.tx_due || c.tx_pending || c.tx_parked) return;
  c.tx_due = true;
  Event(c, IoHangup::Kind::kTxDue);
}

void IoLoop::Sweep() {
  const uint64_t timeout_ns = config_.frame_timeout_ms * 1'000'000;
  for (auto& entry : connections_) {
    Connection& c = *entry.second;
    const uint64_t since = c.splitter.partial_since_ns();
    // Pushed back, the wait is this thread's: the clock restarts on Resume.
    if (!c.ended && !c.pushed_back && since != 0 && now_ns_ - since >= timeout_ns) {
      End(c, ETIMEDOUT, "a partial frame outlived frameTimeoutMs");
    }
  }
}

void IoLoop::End(Connection& c, int err, const char* call) {
  if (!c.ended) {
    c.ended = true;
    hangups_.push_back({c.id, err, call});
    notify_();
  }
  if (err != 0 && !c.failed) {
    c.failed = true;
    // Nothing more is read or answered on it: drop what waits, stop watching TCP.
    buffered_ -= c.splitter.held() + c.queued_bytes + c.held_frames.size();
    c.splitter.Drop();
    std::string().swap(c.held_frames);
    queued_ -= c.waiting();
    for (std::deque<std::string>& lane : c.queued) lane.clear();
    c.queued_bytes = 0;
    if (c.tcp_events != 0) epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, c.tcp.Get(), nullptr);
    c.tcp_events = 0;
    c.out.clear();
    c.out_sent = 0;
  }
  UpdateTcp(c);
}

void IoLoop::Watch(int fd, uint64_t key, uint32_t* current, uint32_t wanted) {
  if (wanted == *current) return;
  epoll_event event{};
  event.events = wanted;
  event.data.u64 = key;
  const int op = *current == 0 ? EPOLL_CTL_ADD : wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_.Get(), op, fd, &event) == 0) *current = wanted;
}

void IoLoop::UpdateTcp(Connection& c) {
  if (c.failed) return;
  uint32_t wanted = 0;
  if (Reading(c)) wanted |= EPOLLIN | EPOLLRDHUP;
  if ((c.out_sent < c.out.size() || c.tx_pending) && !c.tx_parked) wanted |= EPOLLOUT;
  Watch(c.tcp.Get(), Key(c.id, kTcpTag), &c.tcp_events, wanted);
}

void IoLoop::UpdatePair(Connection& c, uint32_t slot) {
  WorkerPair& pair = c.pairs[slot];
  if (!pair.open()) return;
  uint32_t wanted = EPOLLIN;
  if (pair.has_output()) wanted |= EPOLLOUT;
  Watch(pair.io_fd(), Key(c.id, static_cast<uint16_t>(slot)), &pair.events, wanted);
}

void IoLoop::MarkDirty(Connection& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(c.id);
}

void IoLoop::Feed() {
  if (Starving() || starved_.empty()) return;
  ForEachPending(starved_, [this](Connection& c) {
    c.starved = false;
    UpdateTcp(c);
    // A KeyUpdate the kernel decrypted before reads stopped keeps a kTLS socket from polling readable.
    if (c.tls) reread_.push_back(c.id);
  });
}

}  // namespace kmux
