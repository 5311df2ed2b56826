{
  "targets": [
    {
      "target_name": "vxtap_native",
      "sources": ["src/addon.cc", "src/common.cc", "src/tap.cc", "src/udp.cc", "src/csum.cc", "src/csum_napi.cc", "src/wait.cc", "src/offload.cc", "src/offload_napi.cc", "src/tunnel.cc", "src/tunnel_napi.cc", "src/frame.cc", "src/cpu.cc"],
      "actions": [
        {
          "action_name": "vxtap_limits_header",
          "inputs": ["limits.json", "gen-limits.mjs"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/vxtap/vxtap_limits.h"],
          "action": ["node", "gen-limits.mjs", "<(SHARED_INTERMEDIATE_DIR)/vxtap/vxtap_limits.h"]
        }
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<(SHARED_INTERMEDIATE_DIR)/vxtap"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"]
    }
  ]
}
