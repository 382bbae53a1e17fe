# spec 2.5 example
Kind           = "service-resolver"
Name           = "web"
DefaultSubset  = "v1"
ConnectTimeout = "15s"
Subsets = {
  v1 = { Filter = "Service.Meta.version == v1" }
  v2 = { Filter = "Service.Meta.version == v2", OnlyPassing = true }
}
Failover = { "*" = { Datacenters = ["dc3", "dc4"] } }
