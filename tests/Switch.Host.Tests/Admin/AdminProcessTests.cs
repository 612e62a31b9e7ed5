using Switch.Contracts.V1;
using Switch.Grpc.Client;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Admin;

/// <summary>The real switch process: it prints both admin addresses and serves the operator API on them.</summary>
public sealed class AdminProcessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-admin-process-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task The_process_prints_its_admin_addresses_and_demo_operator_keys_and_serves_both()
    {
        using SwitchProcess process = SwitchProcess.Start(_data);
        Uri institution = await process.WaitForAddressAsync();
        Uri grpc = process.AddressOf("operator_grpc");
        Uri http = process.AddressOf("operator_http");
        List<LogRecord> records = process.Records();
        bool Announced(string id, string role, string key) => records.Any(r => r.Event == "demo_credentials"
            && r["operator"] == id && r["role"] == role && r["header"] == "x-operator-key" && r["key"] == key);
        Assert.True(Announced("ops", "operate", "demo-operator-key"));
        Assert.True(Announced("viewer", "read", "demo-viewer-key"));
        Assert.Equal(3, new[] { institution.Port, grpc.Port, http.Port }.Distinct().Count());

        using (GrpcChannel channel = GrpcChannel.ForAddress(grpc))
        {
            OperatorInfo me = await channel.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), AdminClient.As(AdminClient.OpsKey));
            Assert.Equal(("ops", OperatorRole.Operate), (me.OperatorId, me.Role));
        }
        using (var client = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(30) })
        {
            string metrics = await client.GetStringAsync("/metrics");
            Assert.Contains("switch_endpoint_weight_bps{bank=\"102\",endpoint=\"ICBC-DC1\"} 9500\n", metrics);
        }
        Assert.Equal(0, await process.TerminateAsync());
    }
}
