{
  "targets": [
    {
      "target_name": "mirrorplane_netlink",
      "sources": ["native/netlink.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
