# Subsets of web by version; the canary router below sends traffic to
# "canary".
kind           = "service-resolver"
name           = "web"
default_subset = "v1"
subsets = {
  v1 = {
    filter = "Service.Meta.version == v1"
  }
  canary = {
    filter = "Service.Meta.version == canary"
  }
}
