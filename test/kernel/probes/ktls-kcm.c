// What KCM does on top of a kTLS socket (TLS 1.3, AES-GCM-128), for test/kernel/ktls-kcm.test.ts.
// kmux never puts KCM over kTLS (server-tls.ts frames TLS in user space); this probe records
// what each kernel does, so the suite says so the day one behaves. One JSON line per case:
//
//   split    one frame sent as two TLS records (10 bytes, then the rest): what KCM delivers,
//            and the bytes it put at the record boundary (strparser appends the first record's
//            untrimmed tail: content type + 16 bytes of tag space), whether any is non-zero
//   rcvbuf [N]  200 frames, N per record (default 1), at a KCM socket with the smallest receive
//            buffer, read only afterwards: how many arrive whole and in order. With N > 1 the frames have one size
//            and the parser returns it without reading (a frame may start anywhere in a record,
//            where a BPF parser cannot see its offset)
//   control  a frame, an alert record (type 21), a frame: which frames KCM delivers
//   sockmap  (no KCM) whether a sockmap takes a kTLS socket, and whether a socket in a sockmap
//            takes the TLS ULP and then TLS_RX: "" or the errno name
//
// The parser takes the frame length at offset 5 of each record (after the record header
// strparser sees since 6.6, when it reads kTLS decrypted one record at a time).
// Usage: ktls-kcm split [rounds [head payload]] | rcvbuf [per-record] | control | sockmap
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/kcm.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef AF_KCM
#define AF_KCM 41
#endif

static void die(const char *what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  exit(1);
}

static void tcp_pair(int *client, int *server) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0 || bind(listener, (void *)&sa, sizeof sa) || listen(listener, 1) || getsockname(listener, (void *)&sa, &len)) die("listen");
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(*client, (void *)&sa, sizeof sa)) die("connect");
  if ((*server = accept(listener, NULL, NULL)) < 0) die("accept");
  setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  close(listener);
}

/** The same fixed keys on both ends: the client sends (TLS_TX), the server receives (TLS_RX). */
static void ktls(int fd, int direction) {
  struct tls12_crypto_info_aes_gcm_128 info = {.info = {.version = TLS_1_3_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128}};
  memset(info.key, 0x4b, sizeof info.key);
  memset(info.iv, 0x1f, sizeof info.iv);
  memset(info.salt, 0x5a, sizeof info.salt);
  if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls")) die("setsockopt(TCP_ULP)");
  if (setsockopt(fd, SOL_TLS, direction, &info, sizeof info)) die("setsockopt(SOL_TLS)");
}

/** r0 = the big-endian u32 at offset 5, plus its 4 bytes: the frame's length. Or, with fixed > 0, r0 = fixed. */
static int parser(int fixed) {
  struct bpf_insn reading[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 6, .src_reg = 1},
      {.code = BPF_LD | BPF_W | BPF_ABS, .imm = 5},
      {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 0, .imm = 4},
      {.code = BPF_JMP | BPF_EXIT},
  };
  struct bpf_insn constant[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = fixed},
      {.code = BPF_JMP | BPF_EXIT},
  };
  union bpf_attr attr = {.prog_type = BPF_PROG_TYPE_SOCKET_FILTER,
                         .insn_cnt = fixed > 0 ? 2 : 4,
                         .insns = (unsigned long)(fixed > 0 ? constant : reading),
                         .license = (unsigned long)"GPL"};
  int fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0) die("BPF_PROG_LOAD");
  return fd;
}

struct setup {
  int peer, tcp, kcm;
};

/** kTLS on the server's TCP socket first, then KCM attached to it (parser(fixed)). */
static struct setup open_setup(int fixed) {
  struct setup s;
  tcp_pair(&s.peer, &s.tcp);
  ktls(s.peer, TLS_TX);
  ktls(s.tcp, TLS_RX);
  if ((s.kcm = socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)) < 0) die("socket(AF_KCM)");
  struct kcm_attach attach = {.fd = s.tcp, .bpf_fd = parser(fixed)};
  if (ioctl(s.kcm, SIOCKCMATTACH, &attach)) die("SIOCKCMATTACH");
  close(attach.bpf_fd);
  return s;
}

static void close_setup(struct setup *s) {
  close(s->kcm);
  close(s->tcp);
  close(s->peer);
}

static size_t frame(unsigned char *out, size_t payload, unsigned seed) {
  uint32_t be = htonl(payload);
  memcpy(out, &be, 4);
  for (size_t i = 0; i < payload; i++) out[4 + i] = (unsigned char)('a' + (seed + i) % 26);
  return 4 + payload;
}

/** One KCM message, or -1 (errno ETIMEDOUT when none came within ms). */
static ssize_t recv_within(int fd, unsigned char *buf, size_t len, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return recv(fd, buf, len, MSG_DONTWAIT);
}

static void hex(const unsigned char *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
  out[2 * n] = 0;
}

/** rounds frames of `payload` bytes, each sent as two records: its first `head` bytes, then the rest. */
static void split(int rounds, size_t head, size_t payload) {
  int intact = 0, corrupt = 0, missing = 0, nonzero = 0;
  char first[2 * 17 + 1] = "", seen_nonzero[2 * 17 + 1] = "";
  unsigned char *out = malloc(4 + payload), *in = malloc(4 + payload + 4096);
  for (int round = 0; round < rounds; round++) {
    struct setup s = open_setup(0);
    const size_t len = frame(out, payload, round);
    send(s.peer, out, head, 0);
    usleep(30000);
    send(s.peer, out + head, len - head, 0);
    const ssize_t n = recv_within(s.kcm, in, 4 + payload + 4096, 2000);
    if (n < 0) {
      missing++;
    } else if ((size_t)n == len && memcmp(in, out, len) == 0) {
      intact++;
    } else {
      corrupt++;
      // The first record's bytes came through; what follows them is not the frame's.
      const ssize_t at = (ssize_t)head;
      char boundary[2 * 17 + 1];
      hex(in + at, n >= at + 17 ? 17 : (n > at ? (size_t)(n - at) : 0), boundary);
      if (!first[0]) strcpy(first, boundary);
      int any = 0;
      for (ssize_t i = at + 1; i < at + 17 && i < n; i++) any |= in[i];
      if (any) {
        nonzero++;
        if (!seen_nonzero[0]) strcpy(seen_nonzero, boundary);
      }
    }
    close_setup(&s);
  }
  free(out);
  free(in);
  printf("{\"case\":\"split\",\"head\":%zu,\"payload\":%zu,\"rounds\":%d,\"intact\":%d,\"corrupt\":%d,\"missing\":%d,\"tagSpaceNonZero\":%d,\"boundary\":\"%s\",\"nonZeroBoundary\":\"%s\"}\n",
         head, payload, rounds, intact, corrupt, missing, nonzero, first, seen_nonzero);
}

static void rcvbuf(int per_record) {
  enum { FRAMES = 200, FRAME = 4 + 100 };
  struct setup s = open_setup(per_record > 1 ? FRAME : 0);
  int small = 1;  // the kernel rounds it up to its minimum
  setsockopt(s.kcm, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  for (int i = 0; i < FRAMES; i += per_record) {
    unsigned char out[FRAMES * FRAME];
    size_t len = 0;
    for (int j = i; j < i + per_record && j < FRAMES; j++) len += frame(out + len, 100, j);
    send(s.peer, out, len, 0);  // one record (kTLS TX closes a record at the end of each send)
  }
  usleep(300000);
  // intact: frames that arrive whole and in order, a lost one skipped; corrupt: messages that are no frame sent.
  int intact = 0, corrupt = 0, next = 0;
  for (;;) {
    unsigned char in[256], want[FRAME];
    const ssize_t n = recv_within(s.kcm, in, sizeof in, 1500);
    if (n < 0) break;
    int k = next;
    while (k < FRAMES && !((size_t)n == frame(want, 100, k) && memcmp(in, want, FRAME) == 0)) k++;
    if (k < FRAMES) {
      intact++;
      next = k + 1;
    } else {
      corrupt++;
    }
  }
  printf("{\"case\":\"rcvbuf\",\"perRecord\":%d,\"sent\":%d,\"intact\":%d,\"corrupt\":%d}\n", per_record, FRAMES, intact, corrupt);
  close_setup(&s);
}

static void control(void) {
  struct setup s = open_setup(0);
  unsigned char before[32], after[32], in[256];
  const size_t before_len = frame(before, 6, 1), after_len = frame(after, 5, 2);
  send(s.peer, before, before_len, 0);
  usleep(20000);
  static const unsigned char alert[2] = {1, 0};  // warning, close_notify
  char cbuf[CMSG_SPACE(1)] = {0};
  struct iovec iov = {(void *)alert, sizeof alert};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_TLS;
  c->cmsg_type = TLS_SET_RECORD_TYPE;
  c->cmsg_len = CMSG_LEN(1);
  *CMSG_DATA(c) = 21;
  if (sendmsg(s.peer, &m, 0) < 0) die("sendmsg(alert)");
  usleep(20000);
  send(s.peer, after, after_len, 0);
  ssize_t n = recv_within(s.kcm, in, sizeof in, 2000);
  const int got_before = (size_t)n == before_len && memcmp(in, before, n) == 0;
  n = recv_within(s.kcm, in, sizeof in, 2000);
  const int got_after = (size_t)n == after_len && memcmp(in, after, n) == 0;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(s.kcm, SOL_SOCKET, SO_ERROR, &err, &len);
  printf("{\"case\":\"control\",\"before\":%s,\"after\":%s,\"kcmError\":\"%s\"}\n", got_before ? "true" : "false",
         got_after ? "true" : "false", err ? strerrorname_np(err) : "");
  close_setup(&s);
}

static int sockmap_with(int fd) {
  union bpf_attr create = {.map_type = BPF_MAP_TYPE_SOCKMAP, .key_size = 4, .value_size = 4, .max_entries = 1};
  const int map = syscall(SYS_bpf, BPF_MAP_CREATE, &create, sizeof create);
  if (map < 0) die("BPF_MAP_CREATE(SOCKMAP)");
  uint32_t key = 0, value = fd;
  union bpf_attr update = {.map_fd = map, .key = (unsigned long)&key, .value = (unsigned long)&value};
  if (syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &update, sizeof update) != 0) {
    const int err = errno;
    close(map);
    errno = err;
    return -1;
  }
  return map;
}

/** Both orders: kTLS first, then the sockmap insert; the insert, then the TLS ULP. */
static void sockmap(void) {
  int peer, tcp;
  tcp_pair(&peer, &tcp);
  ktls(tcp, TLS_RX);
  int map = sockmap_with(tcp);
  const char *insert = map >= 0 ? "" : strerrorname_np(errno);
  if (map >= 0) close(map);
  close(tcp);
  close(peer);

  tcp_pair(&peer, &tcp);
  if ((map = sockmap_with(tcp)) < 0) die("sockmap insert of plain TCP");
  int rc = setsockopt(tcp, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls");
  const char *ulp = rc == 0 ? "" : strerrorname_np(errno);
  const char *rx = "not tried";
  if (rc == 0) {
    struct tls12_crypto_info_aes_gcm_128 info = {.info = {.version = TLS_1_3_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128}};
    rx = setsockopt(tcp, SOL_TLS, TLS_RX, &info, sizeof info) == 0 ? "" : strerrorname_np(errno);
  }
  printf("{\"case\":\"sockmap\",\"insertKtls\":\"%s\",\"ulpInSockmap\":\"%s\",\"rxInSockmap\":\"%s\"}\n", insert, ulp, rx);
  close(map);
  close(tcp);
  close(peer);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "split")) split(argc > 2 ? atoi(argv[2]) : 20, argc > 3 ? atoi(argv[3]) : 10, argc > 4 ? atoi(argv[4]) : 59);
  else if (!strcmp(what, "rcvbuf")) rcvbuf(argc > 2 ? atoi(argv[2]) : 1);
  else if (!strcmp(what, "control")) control();
  else if (!strcmp(what, "sockmap")) sockmap();
  else {
    fprintf(stderr, "usage: ktls-kcm split [rounds [head payload]] | rcvbuf [per-record] | control | sockmap\n");
    return 2;
  }
  return 0;
}
