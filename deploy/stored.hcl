# Example stored settings (stored --config-file). Every key is a stored
# flag with _ for - (`stored -h` lists them); a flag given on the command
# line wins over the file. Unknown keys are refused.
node             = "n1"
datacenter       = "dc1"
data_dir         = "/var/lib/chainstore"
raft_addr        = "10.0.0.1:8300"
gossip_addr      = "10.0.0.1:8301"
grpc_addr        = "10.0.0.1:8502"
join             = ["10.0.0.2:8301", "10.0.0.3:8301"]
bootstrap_expect = 3
# Reloaded on SIGHUP.
log_level        = "info"
