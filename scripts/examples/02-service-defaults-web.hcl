kind     = "service-defaults"
name     = "web"
protocol = "http"
