kind = "proxy-defaults"
name = "global"
config {
  protocol = "http"
  local_connect_timeout_ms = 1000
  envoy_extra {
    Some_Key = "kept verbatim"
  }
}
mesh_gateway {
  mode = "local"
}
expose {
  checks = true
  paths = [
    {
      path            = "/metrics"
      local_path_port = 8080
      listener_port   = 21500
      protocol        = "http"
    },
  ]
}
