// What this kernel offers kmux: AF_KCM, kTLS (per cipher and direction), BPF,
// sockmap with a stream parser, and the capabilities that gate them. Pure C++,
// no Node: addon.cc turns the result into JS values.
#pragma once

#include <string>
#include <vector>

namespace kmux {

/** One system call (or chain of calls) tried for real. */
struct Check {
  bool ok = false;
  int err = 0;       // errno of the call that failed; 0 when ok
  std::string call;  // the call that decided the outcome, e.g. "socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)"
};

struct CipherCheck {
  std::string name;  // "aes-gcm-128", "aes-gcm-256", "chacha20-poly1305"
  Check tx;          // setsockopt(SOL_TLS, TLS_TX)
  Check rx;          // setsockopt(SOL_TLS, TLS_RX)
};

struct Capabilities {
  Check query;  // capget(2) itself
  bool bpf = false;
  bool net_admin = false;
};

struct KernelProbe {
  std::string release;  // uname -r
  Check kcm;                         // socket(AF_KCM)
  Check kcm_attach;                  // a TCP socket attached to it with a BPF parser (SELinux may refuse)
  Check tls_ulp;                     // TCP_ULP "tls" on a connected loopback socket
  std::vector<CipherCheck> tls_ciphers;
  Check tls_rekey;                   // a second TLS_TX on a TLS 1.3 socket: the KeyUpdate rekey (Linux >= 6.14; EBUSY before)
  Check bpf_prog;                    // a trivial socket filter
  Check sockmap_map;                 // BPF_MAP_CREATE(BPF_MAP_TYPE_SOCKMAP)
  Check sockmap_parser;              // sk_skb stream parser + verdict attached to it
  Check sockmap_insert;              // a connected TCP socket put into that map (starts strparser)
  Capabilities caps;                 // of the calling thread
};

KernelProbe ProbeKernel();

}  // namespace kmux
