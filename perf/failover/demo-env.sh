# Sourced by the failover scripts (rto.sh, rebuild.sh): checks etcd, builds the switch, switchctl and the load
# harness (Release), and names them: $root, $host, $ctl, $loadgen, $work (a fresh directory), $admins (the demo pair).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
command -v etcd >/dev/null || { echo "etcd is not installed: apt-get install etcd-server" >&2; exit 2; }
dotnet build "$root/adapters/Switch.Host" -c Release -v q -nologo >/dev/null
dotnet build "$root/adapters/Switch.Operator" -c Release -v q -nologo >/dev/null
dotnet build "$root/perf/Switch.LoadGen" -c Release -v q -nologo >/dev/null
host="$root/adapters/Switch.Host/bin/Release/net10.0/Switch.Host.dll"
ctl="$root/adapters/Switch.Operator/bin/Release/net10.0/switchctl.dll"
loadgen="$root/perf/Switch.LoadGen/bin/Release/net10.0/Switch.LoadGen.dll"
work=$(mktemp -d)
admins=http://127.0.0.1:7003,http://127.0.0.1:7013
