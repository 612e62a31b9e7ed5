using System.Net;
using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Engine.Business;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Reliability;

namespace Switch.Host.Tests.Logging;

/// <summary>
/// The real switch process on a configuration of its own (not the demo one): its institutions' and operators' keys
/// are known only by their digests in the file. Traffic with the right keys and wrong ones, an unreachable bank
/// endpoint, a stop: every line it writes is a structured record, and no key, right or wrong, is ever among them.
/// </summary>
public sealed class NoSecretInLogsTests : IDisposable
{
    private readonly string _work = Path.Combine(Path.GetTempPath(), "switch-log-secrets-" + Guid.NewGuid().ToString("N"));

    public NoSecretInLogsTests() => Directory.CreateDirectory(_work);

    public void Dispose()
    {
        try { Directory.Delete(_work, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task No_key_right_or_wrong_appears_in_the_logs_and_every_line_is_a_record()
    {
        string Secret(string who) => $"{who}-{Guid.NewGuid():N}";
        HostConfig demo = HostConfig.EmbeddedDefault();
        Dictionary<string, string> institutionKeys = demo.Switch.Institutions.ToDictionary(i => i.Code, i => Secret("inst-" + i.Code.ToLowerInvariant()));
        (string Id, string Role, string Key)[] operators = [("night-ops", OperatorConfig.RoleOperate, Secret("op")), ("auditor", OperatorConfig.RoleRead, Secret("read"))];
        string[] wrongKeys =
        [
            Secret("wrong"), "demo-alipay-key", "demo-operator-key", institutionKeys["TENPAY"] + "x",
            "sha256:" + new string('0', 64), "key\" level=error event=forged", "Bearer " + Secret("token"),
        ];
        HostConfig config = demo with
        {
            Operators = operators.Select(o => new OperatorConfig { Id = o.Id, KeyHash = ApiKeyHash.Of(o.Key), Role = o.Role }).ToList(),
            Switch = demo.Switch with
            {
                Institutions = demo.Switch.Institutions.Select(i => i with { CredentialRef = ApiKeyHash.Of(institutionKeys[i.Code]) }).ToList(),
                // One endpoint where nothing listens: the connector has something to say about it.
                Banks = demo.Switch.Banks.Select((b, index) => index != 0 ? b : b with
                {
                    Endpoints = [b.Endpoints[0], b.Endpoints[1] with { Address = Operator.OperatorTestKit.ClosedAddress() }],
                }).ToList(),
            },
        };
        string file = Path.Combine(_work, "config.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(config, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));

        int rightCalls = 0, wrongCalls = 0;
        List<string> stdout, stderr;
        using (SwitchProcess process = SwitchProcess.Start(Path.Combine(_work, "data"), "--config", file))
        {
            Uri institution = await process.WaitForAddressAsync();
            // The connector reports the endpoint nothing listens on, and the simulated ones of the bank paid below.
            BankConfig paidBank = config.Switch.Banks[1];
            await Faults.FaultyBankRig.WaitUntilAsync(() => process.Records().Any(r => r.Event == "endpoint_unreachable"
                && r["endpoint"] == config.Switch.Banks[0].Endpoints[1].Name), "the unreachable endpoint logged");
            await Faults.FaultyBankRig.WaitUntilAsync(() => paidBank.Endpoints.All(e => process.Records().Any(r => r.Event == "endpoint_reachable"
                && r["endpoint"] == e.Name)), "the paid bank's endpoints logged reachable");
            using var channel = GrpcChannel.ForAddress(institution);
            int n = 0;
            foreach ((string code, string key) in institutionKeys)
            {
                for (int i = 0; i < 5; i++)
                {
                    TransferResult paid = await channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                        RunningSwitch.Payment($"LOG-{code}-{i}", 100 + i, bank: paidBank.Code.ToString("D3"), account: $"62220000{n++:D8}"),
                        RunningSwitch.As(key));
                    Assert.Contains(paid.Status, new[] { TransactionStatus.Succeeded, TransactionStatus.Failed });
                    rightCalls++;
                }
                // A hostile order number is refused naming the field; it is not logged either.
                var refused = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                    RunningSwitch.Payment("bad\" order=1", 100), RunningSwitch.As(key)));
                Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
                rightCalls++;
            }
            foreach (string wrong in wrongKeys)
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(InstitutionMethods.AgreementPayment,
                    RunningSwitch.Payment("LOG-WRONG", 100), RunningSwitch.As(wrong)));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                wrongCalls++;
            }

            using var admin = GrpcChannel.ForAddress(process.AddressOf("operator_grpc"));
            using var http = new HttpClient { BaseAddress = process.AddressOf("operator_http"), Timeout = TimeSpan.FromSeconds(30) };
            foreach ((string id, string _, string key) in operators)
            {
                OperatorInfo me = await admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Admin.AdminClient.As(key));
                Assert.Equal(id, me.OperatorId);
                Assert.Equal(HttpStatusCode.OK, (await PostWhoAmI(http, key)).StatusCode);
                rightCalls += 2;
            }
            foreach (string wrong in wrongKeys)
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Admin.AdminClient.As(wrong)));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                Assert.Equal(HttpStatusCode.Unauthorized, (await PostWhoAmI(http, wrong)).StatusCode);
                wrongCalls += 2;
            }

            Assert.Equal(0, await process.TerminateAsync());
            lock (process.Output) stdout = process.Output.ToList();
            lock (process.Errors) stderr = process.Errors.ToList();
        }

        // The refused configuration: a raw key where its digest belongs is refused naming the field, not echoing it.
        string rawKey = Secret("raw");
        string refusedFile = Path.Combine(_work, "refused.json");
        await File.WriteAllTextAsync(refusedFile, (await File.ReadAllTextAsync(file)).Replace(ApiKeyHash.Of(institutionKeys["ALIPAY"]), rawKey));
        using (SwitchProcess refused = SwitchProcess.Start(Path.Combine(_work, "data-refused"), "--config", refusedFile))
        {
            Assert.Equal(2, await refused.WaitForExitAsync());
            LogRecord record = Assert.Single(refused.Errors.Select(l => LogRecord.TryParse(l) ?? throw new Xunit.Sdk.XunitException($"not a record: {l}")));
            Assert.Equal(("error", "config_refused"), (record.Level, record.Event));
            Assert.Contains("switch.institutions[0].credentialRef", record.Message);
            Assert.Empty(refused.Output);
            stderr.AddRange(refused.Errors);
        }

        string[] secrets = [.. institutionKeys.Values, .. operators.Select(o => o.Key), .. wrongKeys, rawKey];
        List<LogRecord> records = stdout.Concat(stderr).Select(l => LogRecord.TryParse(l) ?? throw new Xunit.Sdk.XunitException($"not a record: {l}")).ToList();
        foreach (string line in stdout.Concat(stderr))
        {
            foreach (string secret in secrets)
            {
                Assert.False(line.Contains(secret, StringComparison.Ordinal), $"a key is in the log: {line}");
            }
        }
        Assert.DoesNotContain(records, r => r.Event == "demo_credentials"); // not the demo configuration: no key to show
        Assert.Equal(["institution", "operator_grpc", "operator_http"], records.Where(r => r.Event == "listening").Select(r => r["api"]!).Order());
        Assert.Contains(records, r => r.Event == "running");
        Assert.Contains(records, r => r.Event == "stopped");
        Assert.Contains(records, r => r.Event == "endpoint_unreachable" && r.Level == "warn");

        ReliabilityReport.Record("security", "no secret in logs",
            $"the real switch process on a non-demo configuration ({institutionKeys.Count} institution and {operators.Length} operator keys, digests only in the file): " +
            $"{rightCalls} calls with the right keys and {wrongCalls} with {wrongKeys.Length} wrong ones (institution gRPC, operator gRPC and HTTP), " +
            "a hostile order number, an unreachable bank endpoint, SIGTERM; then a configuration holding a raw key",
            $"{stdout.Count + stderr.Count} lines on stdout and stderr, every one a structured record ({records.Select(r => r.Event).Distinct().Count()} kinds); " +
            $"none holds any of the {secrets.Length} keys; no demo credentials shown; the raw key refused naming its field, not echoed");
    }

    private static Task<HttpResponseMessage> PostWhoAmI(HttpClient http, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/WhoAmI") { Content = new StringContent("{}") };
        request.Headers.TryAddWithoutValidation(AdminMethods.OperatorKeyHeader, key);
        return http.SendAsync(request);
    }
}
