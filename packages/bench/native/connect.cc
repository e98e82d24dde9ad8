// The generator's connections: opened one by one, and in idle mode settled in batches.
#include "generator.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "generator_internal.h"
#include "output.h"

using namespace generator_internal;

void Generator::connectAll() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* address = nullptr;
  int resolved = getaddrinfo(spec_.host.c_str(), spec_.port.c_str(), &hints, &address);
  if (resolved != 0) return fail(spec_.host + ": " + gai_strerror(resolved));
  uint32_t slotBits = spec_.rate > 0 ? kOpenLoopSlotBits : bitsFor(spec_.idle ? 1 : spec_.depth);
  connections_.resize(spec_.connections);
  int64_t started = nowNs();
  int64_t nextProgress = started + kSecond;
  uint32_t settled = 0;
  for (uint32_t i = 0; i < spec_.connections && fatal_.empty(); i++) {
    Connection& c = connections_[i];
    c.index = i;
    c.slotBits = slotBits;
    c.slots.assign(size_t{1} << slotBits, Slot{});
    for (uint32_t s = c.slots.size(); s-- > 0;) c.freeSlots.push_back(s);
    c.cursor = i % spec_.schedule.size();  // connections start at different points of the mix
    c.fd = socket(address->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // Blocking connect: simple, and it paces the connects to the server's accept queue.
    if (c.fd < 0 || connect(c.fd, address->ai_addr, address->ai_addrlen) != 0) {
      fail("connection " + std::to_string(i) + ": " + std::strerror(errno));
      break;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u32 = i;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event);
    if (spec_.idle && (i + 1 - settled == kConnectBatch || i + 1 == spec_.connections)) {
      settleConnections(settled, i + 1);
      settled = i + 1;
    }
    int64_t now = nowNs();
    if (now >= nextProgress) {
      emitProgress("connect", (now - started) / 1e9, i + 1);
      nextProgress = now + kSecond;
    }
  }
  freeaddrinfo(address);
}

/**
 * Sends one request on each of connections [from, to) and waits for the replies. A listen
 * backlog that overflows drops SYNs, and each drop costs a connect a one-second retry;
 * waiting for a batch to be served keeps the server's accept queue short.
 */
void Generator::settleConnections(uint32_t from, uint32_t to) {
  int64_t now = nowNs();
  for (uint32_t i = from; i < to && fatal_.empty(); i++) {
    enqueue(connections_[i], spec_.schedule[0], now, false);
    flush(connections_[i]);
  }
  epoll_event events[256];
  while (fatal_.empty() && outstanding_ > 0) {
    if (nowNs() - now > kSettleTimeoutNs) return fail("the server left new connections unanswered for 10 s");
    int ready = epoll_wait(epoll_, events, 256, 100);
    if (ready < 0 && errno != EINTR) return fail(std::string("epoll_wait: ") + std::strerror(errno));
    dispatch(events, ready);
  }
}
