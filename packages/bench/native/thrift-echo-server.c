/*
 * The bench's physical-limit peer: a raw epoll server that answers the Catalog service's
 * `echo` over Thrift framed + strict binary protocol, with no decoding beyond what a valid
 * reply needs. An echo CALL and its REPLY differ in two places only, so each request frame
 * is turned into its reply in place:
 *
 *   CALL   len | 80 01 00 01 | name len | "echo" | seqid | 0b 00 01 | data len | data | 00
 *   REPLY  len | 80 01 00 02 | name len | "echo" | seqid | 0b 00 00 | data len | data | 00
 *
 * (the args struct's field 1 `data` becomes the result struct's field 0 `success`, both
 * binary). Any other method gets a TApplicationException; oneway calls get nothing. Echo
 * only: it runs no handler, so it bounds what any server can do on this machine.
 *
 * usage: thrift-echo-server THREADS   — listens on an ephemeral 127.0.0.1 port, prints
 * "port N" on stdout, serves until SIGTERM/SIGINT (exit 0) or until its parent dies.
 * One thread accepts and deals connections round-robin to THREADS epoll threads.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CALL = 1, REPLY = 2, EXCEPTION = 3, ONEWAY = 4 };
enum { T_STRING = 11, T_I32 = 8 };
enum { UNKNOWN_METHOD = 1, PROTOCOL_ERROR = 7 }; /* TApplicationException types */

#define MAX_FRAME (16u << 20) /* kmux's default maxFrameBytes */
#define READ_CHUNK (64u << 10)
/* Stop reading a connection whose client leaves this much of its replies unread. */
#define MAX_BACKLOG (4u << 20)
#define MAX_EVENTS 64

struct buf {
  uint8_t *data;
  size_t len, cap;
};

struct conn {
  int fd, epfd;
  int watching_out;
  struct buf in, out;
  size_t out_sent;
};

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static uint8_t *reserve(struct buf *b, size_t more) {
  if (b->cap - b->len < more) {
    size_t cap = b->cap ? b->cap : READ_CHUNK;
    while (cap - b->len < more) cap *= 2;
    if (!(b->data = realloc(b->data, cap))) die("realloc");
    b->cap = cap;
  }
  return b->data + b->len;
}

/* A TApplicationException reply to the call `name`/`seqid`. */
static void append_exception(struct buf *out, const uint8_t *name, uint32_t name_len, uint32_t seqid,
                             uint32_t type, const char *message) {
  uint32_t msg_len = strlen(message);
  uint32_t body = 4 + 4 + name_len + 4 + (3 + 4 + msg_len) + (3 + 4) + 1;
  uint8_t *p = reserve(out, 4 + body);
  put32(p, body), p += 4;
  put32(p, 0x80010000u | EXCEPTION), p += 4;
  put32(p, name_len), p += 4;
  memcpy(p, name, name_len), p += name_len;
  put32(p, seqid), p += 4;
  *p++ = T_STRING, *p++ = 0, *p++ = 1; /* 1: string message */
  put32(p, msg_len), p += 4;
  memcpy(p, message, msg_len), p += msg_len;
  *p++ = T_I32, *p++ = 0, *p++ = 2; /* 2: i32 type */
  put32(p, type), p += 4;
  *p++ = 0; /* stop */
  out->len += 4 + body;
}

/*
 * Appends the reply to one request frame (length prefix included) to `out`.
 * Returns 0, or -1 for a frame that is not a strict binary-protocol call.
 */
static int answer(uint8_t *frame, uint32_t body_len, struct buf *out) {
  uint8_t *body = frame + 4;
  if (body_len < 12 || (be32(body) & 0xffff0000u) != 0x80010000u) return -1;
  uint32_t name_len = be32(body + 4);
  if (name_len > body_len - 12) return -1;
  const uint8_t *name = body + 8;
  uint32_t seqid = be32(body + 8 + name_len);
  uint8_t type = body[3];
  if (type == ONEWAY) return 0;
  if (type != CALL) return -1;

  if (name_len != 4 || memcmp(name, "echo", 4) != 0) {
    append_exception(out, name, name_len, seqid, UNKNOWN_METHOD, "this server answers echo only");
    return 0;
  }
  uint8_t *args = body + 12 + name_len;
  size_t args_len = body_len - 12 - name_len;
  /* exactly: field (string, id 1) | length | data | stop */
  if (args_len < 8 || args[0] != T_STRING || args[1] != 0 || args[2] != 1 ||
      be32(args + 3) != args_len - 8 || args[args_len - 1] != 0) {
    append_exception(out, name, name_len, seqid, PROTOCOL_ERROR, "echo takes exactly its binary data");
    return 0;
  }
  body[3] = REPLY;
  args[2] = 0;
  memcpy(reserve(out, 4 + body_len), frame, 4 + body_len);
  out->len += 4 + body_len;
  return 0;
}

static void watch(struct conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->in.data);
  free(c->out.data);
  free(c);
}

/* Writes what it can; watches for writability while replies remain. Returns -1 on error. */
static int flush(struct conn *c) {
  while (c->out_sent < c->out.len) {
    ssize_t n = write(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return -1;
    c->out_sent += n;
  }
  if (c->out_sent == c->out.len) {
    c->out.len = c->out_sent = 0;
    if (c->watching_out) watch(c, EPOLLIN), c->watching_out = 0;
  } else {
    watch(c, c->out.len - c->out_sent > MAX_BACKLOG ? EPOLLOUT : EPOLLIN | EPOLLOUT);
    c->watching_out = 1;
  }
  return 0;
}

/* Reads once, answers every whole frame read so far with one write. Returns -1 to close. */
static int on_readable(struct conn *c) {
  ssize_t n = read(c->fd, reserve(&c->in, READ_CHUNK), READ_CHUNK);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) return -1;
  c->in.len += n;
  size_t at = 0;
  while (c->in.len - at >= 4) {
    uint32_t body_len = be32(c->in.data + at);
    if (body_len > MAX_FRAME) return -1;
    if (c->in.len - at - 4 < body_len) break;
    if (answer(c->in.data + at, body_len, &c->out) < 0) return -1;
    at += 4 + body_len;
  }
  memmove(c->in.data, c->in.data + at, c->in.len - at);
  c->in.len -= at;
  return flush(c);
}

static void *serve(void *arg) {
  int epfd = (int)(intptr_t)arg;
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      int failed = events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN);
      if (!failed && events[i].events & EPOLLOUT) failed = flush(c) < 0;
      if (!failed && events[i].events & EPOLLIN) failed = on_readable(c) < 0;
      if (failed) drop(c);
    }
  }
  return NULL;
}

struct acceptor {
  int listen_fd, threads;
  int *epfds;
};

static void *accept_loop(void *arg) {
  struct acceptor *a = arg;
  for (unsigned next = 0;; next++) {
    int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
      die("accept4");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    c->epfd = a->epfds[next % a->threads];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  return NULL;
}

int main(int argc, char **argv) {
  long threads = argc > 1 ? strtol(argv[1], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1 || threads > 1024) {
    fprintf(stderr, "usage: %s THREADS (1..1024)\n", argv[0]);
    return 2;
  }
  /* Exit with the bench process that started us, even if it dies without asking. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  /* Signals go to sigwait below, never interrupt the serving threads (they inherit this). */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) die("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t addr_len = sizeof addr;
  if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(listen_fd, 4096) < 0) die("listen");
  if (getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len) < 0) die("getsockname");

  struct acceptor a = {.listen_fd = listen_fd, .threads = threads, .epfds = calloc(threads, sizeof(int))};
  pthread_t thread;
  for (long i = 0; i < threads; i++) {
    if ((a.epfds[i] = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    if (pthread_create(&thread, NULL, serve, (void *)(intptr_t)a.epfds[i]) != 0) die("pthread_create");
  }
  if (pthread_create(&thread, NULL, accept_loop, &a) != 0) die("pthread_create");

  printf("port %u\n", ntohs(addr.sin_port));
  fflush(stdout);
  int signal_number;
  sigwait(&stop, &signal_number);
  return 0;
}
