kind         = "service-defaults"
name         = "web"
protocol     = "HTTP"
external_sni = "web.example.com"
mesh_gateway {
  mode = "remote"
}
meta {
  owner = "team-a"
}
