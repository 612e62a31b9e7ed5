using System.Text.RegularExpressions;
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
        string[] output;
        lock (process.Output) output = process.Output.ToArray();
        Uri Address(string pattern) => new(Regex.Match(string.Join("\n", output), pattern + @" at (\S+)").Groups[1].Value);
        Uri grpc = Address(@"operator API \(gRPC, h2c\)");
        Uri http = Address(@"/metrics \(HTTP/1\.1\)");
        Assert.Contains(output, l => l.Contains("operator ops (operate), header x-operator-key: demo-operator-key"));
        Assert.Contains(output, l => l.Contains("operator viewer (read), header x-operator-key: demo-viewer-key"));
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
