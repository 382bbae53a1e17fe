kind     = "service-defaults"
name     = "admin"
protocol = "http"
