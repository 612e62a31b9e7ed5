using System.Net;
using Google.Protobuf.Reflection;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Health;
using Switch.Grpc.Health.V1;
using Switch.Grpc.Reflection;
using Switch.Grpc.Reflection.V1;
using Switch.Host;
using Switch.Host.Configuration;
using ServingStatus = Switch.Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The switch's health (gRPC and HTTP probes), reflection and gzip, over its real ports, with no credentials.</summary>
public sealed class HealthAndReflectionTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-health-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    private static async Task<ServingStatus> CheckAsync(Uri port, string service = "")
    {
        using var channel = GrpcChannel.ForAddress(port);
        return (await channel.UnaryAsync(HealthService.Check, new HealthCheckRequest { Service = service }).WaitAsync(Bound)).Status;
    }

    private static async Task<(HttpStatusCode Code, string Body)> GetAsync(Uri admin, string path)
    {
        using var http = new HttpClient { Timeout = Bound };
        using var response = await http.GetAsync(new Uri(admin, path));
        return (response.StatusCode, (await response.Content.ReadAsStringAsync()).Trim());
    }

    private static async Task<List<string>> ListServicesAsync(Uri port)
    {
        using var channel = GrpcChannel.ForAddress(port);
        using var call = channel.DuplexStreaming(ReflectionService.V1Info);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync().WaitAsync(Bound);
        var answer = await call.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound);
        return answer!.ListServicesResponse.Service.Select(s => s.Name).ToList();
    }

    [Fact]
    public async Task Health_is_not_serving_while_recovering_serving_once_running_and_not_serving_when_stopping()
    {
        HostConfig config = RunningSwitch.TestConfig(_data);
        string? duringRecovery = null;
        // Called with the ports listening and the journal not yet recovered: probe them as a load balancer would.
        void Listening(ListeningPorts ports) => duringRecovery = Task.Run(async () =>
        {
            Assert.Equal(ServingStatus.NotServing, await CheckAsync(ports.Institution));
            Assert.Equal(ServingStatus.NotServing, await CheckAsync(ports.AdminGrpc, AdminMethods.Service));
            Assert.Equal((HttpStatusCode.OK, "alive"), await GetAsync(ports.AdminHttp, "/healthz"));
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "recovering"), await GetAsync(ports.AdminHttp, "/readyz"));
            using var channel = GrpcChannel.ForAddress(ports.Institution);
            var e = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                RunningSwitch.Payment("R-1", 100), RunningSwitch.As(RunningSwitch.AlipayKey)));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            Assert.StartsWith("UNAVAILABLE", e.Status.Detail);
            Assert.Contains(InstitutionMethods.Service, await ListServicesAsync(ports.Institution));
            return "checked";
        }).GetAwaiter().GetResult();

        SwitchHost host = await SwitchHost.StartAsync(config, new Log(TextWriter.Null, TextWriter.Null), Listening);
        HealthCheckResponse? last = null;
        try
        {
            Assert.Equal("checked", duringRecovery);
            Assert.Equal(ServingStatus.Serving, await CheckAsync(host.InstitutionAddress));
            Assert.Equal(ServingStatus.Serving, await CheckAsync(host.InstitutionAddress, InstitutionMethods.Service));
            Assert.Equal(ServingStatus.Serving, await CheckAsync(host.AdminGrpcAddress, AdminMethods.Service));
            Assert.Equal((HttpStatusCode.OK, "serving"), await GetAsync(host.AdminAddress, "/readyz"));
            // The admin service is not on the institution port: NOT_FOUND, as the spec says.
            using var channel = GrpcChannel.ForAddress(host.InstitutionAddress);
            var e = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(HealthService.Check, new HealthCheckRequest { Service = AdminMethods.Service }));
            Assert.Equal(StatusCode.NotFound, e.StatusCode);

            using var watch = channel.ServerStreaming(HealthService.Watch, new HealthCheckRequest { Service = InstitutionMethods.Service });
            Assert.Equal(ServingStatus.Serving, (await watch.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound))!.Status);
            var next = watch.ResponseStream.ReadAsync().AsTask();
            await host.DisposeAsync(); // as on SIGTERM
            last = await next.WaitAsync(Bound);
        }
        finally
        {
            await host.DisposeAsync();
        }
        Assert.Equal(ServingStatus.NotServing, last!.Status);
        Assert.Equal(NodeState.Stopping, host.Health.State);
    }

    [Fact]
    public void A_faulted_or_stopping_switch_never_says_serving_again()
    {
        var health = new NodeHealth();
        Assert.Equal((NodeState.Recovering, ServingStatus.NotServing), (health.State, health.Institution.Get("")));
        health.MarkServing();
        Assert.Equal((ServingStatus.Serving, ServingStatus.Serving), (health.Institution.Get(InstitutionMethods.Service), health.Admin.Get(AdminMethods.Service)));
        health.MarkFaulted();
        health.MarkServing();
        Assert.Equal((NodeState.Faulted, "faulted", false), (health.State, health.StateName, health.Serving));
        Assert.Equal((ServingStatus.NotServing, ServingStatus.NotServing), (health.Institution.Get(""), health.Admin.Get("")));
        Assert.Null(health.Institution.Get(AdminMethods.Service)); // each port knows its own service only
    }

    [Fact]
    public async Task Reflection_describes_every_service_of_each_port()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync(dataDirectory: _data);
        SwitchHost host = running.Host;
        string[] standard = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
        Assert.Equal([.. standard, InstitutionMethods.Service], await ListServicesAsync(host.InstitutionAddress));
        Assert.Equal([.. standard, AdminMethods.Service], await ListServicesAsync(host.AdminGrpcAddress));

        // As grpcurl describes a method: the file defining the symbol, then what it imports.
        using var channel = GrpcChannel.ForAddress(host.InstitutionAddress);
        using var call = channel.DuplexStreaming(ReflectionService.V1AlphaInfo);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "switch.v1.InstitutionService.Transact" });
        await call.RequestStream.CompleteAsync().WaitAsync(Bound);
        var answer = await call.ResponseStream.ReadAsync().AsTask().WaitAsync(Bound);
        var file = FileDescriptorProto.Parser.ParseFrom(answer!.FileDescriptorResponse.FileDescriptorProto[0]);
        Assert.Equal("switch/v1/institution.proto", file.Name);
        var methods = file.Service.Single().Method.Select(m => m.Name).ToHashSet();
        foreach (var method in new[] { InstitutionMethods.AgreementPayment.Name, InstitutionMethods.Payout.Name, InstitutionMethods.Refund.Name,
                     InstitutionMethods.Query.Name, InstitutionMethods.Transact.Name, InstitutionMethods.Outcomes.Name })
            Assert.Contains(method, methods);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_payment_in_gzip_is_served_with_or_without_compressed_answers(bool compressResponses)
    {
        HostConfig config = RunningSwitch.TestConfig(_data) with { CompressResponses = compressResponses };
        await using RunningSwitch running = await RunningSwitch.StartAsync(config, _data);
        using var channel = GrpcChannel.ForAddress(running.Host.InstitutionAddress, new GrpcChannelOptions { CompressRequests = true });
        var paid = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, RunningSwitch.Payment("GZ-1", 1234),
            RunningSwitch.As(RunningSwitch.AlipayKey)).WaitAsync(Bound);
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        Assert.Equal(1234, paid.AmountFen);
    }
}
