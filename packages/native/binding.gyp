{
  # The C++ sources: the copy packed into the package (native/, made by prepack), else the
  # repository's native/ when built inside the workspace.
  "variables": {"src": "<!(node scripts/native-sources.mjs)"},
  "targets": [{
    "target_name": "kmux_native",
    "sources": ["<(src)/addon.cc", "<(src)/probe.cc", "<(src)/bpf_programs.cc",
                "<(src)/hangup_watch.cc", "<(src)/kcm_mux.cc", "<(src)/message_watcher.cc", "<(src)/poll_group.cc", "<(src)/read_buffer.cc", "<(src)/frame_tally.cc",
                "<(src)/sockmap.cc", "<(src)/io_loop.cc", "<(src)/frame_splitter.cc", "<(src)/worker_pair.cc", "<(src)/worker_picker.cc", "<(src)/slow_methods.cc", "<(src)/tls_records.cc", "<(src)/native_mux.cc",
                "<(src)/ktls.cc", "<(src)/fd_poll.cc", "<(src)/sched_slice.cc", "<(src)/gc_watch.cc"],
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
