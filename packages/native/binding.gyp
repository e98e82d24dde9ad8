{
  "targets": [{
    "target_name": "kmux_native",
    "sources": ["../../native/addon.cc", "../../native/probe.cc", "../../native/bpf_programs.cc",
                "../../native/hangup_watch.cc", "../../native/kcm_mux.cc", "../../native/message_watcher.cc", "../../native/read_buffer.cc", "../../native/frame_tally.cc",
                "../../native/sockmap.cc",
                "../../native/ktls.cc", "../../native/fd_poll.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
  }]
}
