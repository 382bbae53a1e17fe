# Every service speaks HTTP unless its service-defaults say otherwise, so
# routers and splitters are allowed (write this before any router).
kind = "proxy-defaults"
name = "global"
config {
  protocol = "http"
}
