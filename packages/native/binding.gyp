{
  "targets": [{
    "target_name": "kmux_native",
    "sources": ["../../native/addon.cc", "../../native/probe.cc", "../../native/bpf_programs.cc",
                "../../native/hangup_watch.cc", "../../native/kcm_mux.cc", "../../native/message_watcher.cc", "../../native/read_buffer.cc", "../../native/frame_tally.cc",
                "../../native/sockmap.cc",
                "../../native/ktls.cc", "../../native/fd_poll.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    # SWALLOW_UNTHROWABLE: a native error thrown once worker.terminate() has stopped the
    # thread's JS cannot become a JS exception; without it node-addon-api rethrows it into V8,
    # which aborts the whole process (test/worker-death.test.ts, "survives worker threads terminated").
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS",
                "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
  }]
}
