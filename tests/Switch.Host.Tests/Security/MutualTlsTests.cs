using System.Security.Cryptography.X509Certificates;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Reliability;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Security;

/// <summary>A real switch with TLS on its three ports and client certificates "optional": ALIPAY and TENPAY mapped.</summary>
public sealed class TlsSwitchFixture : IAsyncLifetime
{
    public TestPki Pki { get; } = new();
    public X509Certificate2 Alipay { get; private set; } = null!;
    public X509Certificate2 Tenpay { get; private set; } = null!;
    /// <summary>From the institutions' CA, but mapped to no institution.</summary>
    public X509Certificate2 Unmapped { get; private set; } = null!;
    /// <summary>From another CA.</summary>
    public X509Certificate2 Rogue { get; private set; } = null!;
    public RunningSwitch Switch { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Alipay = Pki.Client("alipay-gateway");
        Tenpay = Pki.Client("tenpay-gateway");
        Unmapped = Pki.Client("nobody");
        Rogue = Pki.Client("alipay-gateway", rogue: true);
        Switch = await StartAsync(Pki, TlsConfig.ClientCertificatesOptional, ("ALIPAY", Alipay), ("TENPAY", Tenpay));
    }

    /// <summary>A test switch with the PKI's TLS; failed logins are refused tests, not abuse, so their limit is raised.</summary>
    public static Task<RunningSwitch> StartAsync(TestPki pki, string clientCertificates, params (string, X509Certificate2)[] mapping)
    {
        HostConfig config = TestConfig("") with
        {
            Tls = pki.Tls(clientCertificates, mapping),
            Limits = new Gateway.GatewayLimits { AuthFailureBurst = 1_000 },
        };
        return RunningSwitch.StartAsync(config);
    }

    public async Task DisposeAsync()
    {
        await Switch.DisposeAsync();
        Pki.Dispose();
    }
}

/// <summary>
/// TLS and mutual TLS over real sockets: the institution port (gRPC, h2 by ALPN), both admin ports, switchctl; a
/// client certificate is its institution, never another's; cleartext and foreign certificates fail cleanly.
/// </summary>
public sealed class MutualTlsTests(TlsSwitchFixture fixture) : IClassFixture<TlsSwitchFixture>
{
    private RunningSwitch Sw => fixture.Switch;
    private TestPki Pki => fixture.Pki;

    private static CallOptions NoKey => new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>One payment on a Transact stream: its one result, or the stream's status as an RpcException.</summary>
    private static async Task<TransferResult> TransactOneAsync(GrpcChannel channel, CallOptions options, string orderNo)
    {
        using DuplexStreamingCall<TransferRequest, TransferResult> stream = channel.DuplexStreaming(InstitutionMethods.Transact, options);
        TransferRequest request = Payment(orderNo, 700);
        request.Kind = RequestKind.AgreementPayment;
        try
        {
            await stream.RequestStream.WriteAsync(request);
            await stream.RequestStream.CompleteAsync();
        }
        catch (RpcException)
        {
            // A stream refused at its start may end before the write gets in; its status comes from the read below.
        }
        var results = new List<TransferResult>();
        while (await stream.ResponseStream.ReadAsync() is { } result) results.Add(result);
        return Assert.Single(results);
    }

    private async Task<StatusCode> QueryStatusAsync(string orderNo, string apiKey)
    {
        using GrpcChannel channel = Pki.Channel(Sw.Host.InstitutionAddress);
        try
        {
            await channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = orderNo }, As(apiKey, 30_000));
            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }

    [Fact]
    public async Task The_institution_port_serves_grpc_over_tls_and_a_cleartext_client_fails_cleanly()
    {
        Assert.Equal("https", Sw.Host.InstitutionAddress.Scheme);
        using GrpcChannel tls = Pki.Channel(Sw.Host.InstitutionAddress);
        TransferResult paid = await tls.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("TLS-KEY-1", 1_200), As(AlipayKey, 30_000));
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);

        var cleartextAddress = new Uri($"http://127.0.0.1:{Sw.Host.InstitutionAddress.Port}");
        const int cleartextTries = 3;
        for (int i = 0; i < cleartextTries; i++)
        {
            using GrpcChannel cleartext = GrpcChannel.ForAddress(cleartextAddress);
            await Admin.AdminClient.FailsAsync(() => cleartext.UnaryAsync(InstitutionMethods.AgreementPayment, Payment($"TLS-CLEAR-{i}", 100), As(AlipayKey, 30_000)),
                StatusCode.Unavailable);
        }
        // A client that does not trust the switch's authority stops at the handshake, saying why.
        using (GrpcChannel untrusting = GrpcChannel.ForAddress(Sw.Host.InstitutionAddress))
        {
            RpcException e = await Admin.AdminClient.FailsAsync(() => untrusting.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("TLS-UNTRUSTED", 100), As(AlipayKey, 30_000)),
                StatusCode.Unavailable);
            Assert.Contains("TLS handshake failed", e.Status.Detail);
        }
        for (int i = 0; i < cleartextTries; i++) Assert.Equal(StatusCode.NotFound, await QueryStatusAsync($"TLS-CLEAR-{i}", AlipayKey));

        // Still serving, on a fresh TLS connection, a stream as well as a unary call.
        using GrpcChannel again = Pki.Channel(Sw.Host.InstitutionAddress);
        TransferResult result = await TransactOneAsync(again, As(AlipayKey, 30_000), "TLS-KEY-2");
        Assert.Equal((TransactionStatus.Succeeded, "TLS-KEY-2"), (result.Status, result.OrderNo));

        ReliabilityReport.Record("security", "TLS on the institution port",
            $"gRPC over TLS (h2 by ALPN) unary and Transact with a key; {cleartextTries} cleartext h2c clients and 1 client not trusting the CA against the TLS port",
            "TLS calls succeeded; every cleartext or untrusting call failed UNAVAILABLE at the handshake (the reason given), created nothing, and the port kept serving");
    }

    [Fact]
    public async Task A_mapped_client_certificate_authenticates_as_its_institution_with_or_without_its_key()
    {
        using GrpcChannel alipay = Pki.Channel(Sw.Host.InstitutionAddress, fixture.Alipay);
        TransferResult byCertificate = await alipay.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("MTLS-1", 2_500), NoKey);
        Assert.Equal(TransactionStatus.Succeeded, byCertificate.Status);
        TransferResult both = await alipay.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("MTLS-2", 2_600), As(AlipayKey, 30_000));
        Assert.Equal(TransactionStatus.Succeeded, both.Status);

        // The orders are ALIPAY's: its key finds them, TENPAY's does not; TENPAY's certificate does not either.
        TransferResult queried = await alipay.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "MTLS-1" }, As(AlipayKey, 30_000));
        Assert.Equal(byCertificate.TransactionId, queried.TransactionId);
        Assert.Equal(StatusCode.NotFound, await QueryStatusAsync("MTLS-1", TenpayKey));
        using GrpcChannel tenpay = Pki.Channel(Sw.Host.InstitutionAddress, fixture.Tenpay);
        await Admin.AdminClient.FailsAsync(() => tenpay.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "MTLS-2" }, NoKey), StatusCode.NotFound);

        // Streams too: Transact and the outcome feed, by the certificate alone.
        Assert.Equal(TransactionStatus.Succeeded, (await TransactOneAsync(tenpay, NoKey, "MTLS-T-1")).Status);
        Assert.Equal(StatusCode.OK, await QueryStatusAsync("MTLS-T-1", TenpayKey));
        Assert.Equal(StatusCode.NotFound, await QueryStatusAsync("MTLS-T-1", AlipayKey));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using ServerStreamingCall<TransferResult> feed = tenpay.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest { AfterFeedNo = 0 },
            new CallOptions { CancellationToken = cts.Token });
        var seen = new List<string>();
        while (!seen.Contains("MTLS-T-1") && await feed.ResponseStream.ReadAsync() is { } outcome) seen.Add(outcome.OrderNo);
        Assert.DoesNotContain(seen, o => o.StartsWith("MTLS-1") || o.StartsWith("MTLS-2") || o.StartsWith("TLS-KEY"));

        ReliabilityReport.Record("security", "mTLS: a client certificate is its institution",
            "ALIPAY's certificate without a key and with ALIPAY's key (unary); TENPAY's certificate alone on Query, Transact and Outcomes",
            "each call acted for the certificate's institution: its orders found by its own key only, the other's orders NOT_FOUND, its feed only its outcomes");
    }

    [Fact]
    public async Task A_key_of_another_institution_beside_a_certificate_is_unauthenticated_and_changes_nothing()
    {
        (X509Certificate2 Certificate, string Key, string Owner)[] mismatches =
        [
            (fixture.Alipay, TenpayKey, "ALIPAY"),
            (fixture.Tenpay, AlipayKey, "TENPAY"),
            (fixture.Alipay, "not-a-key-of-anyone", "ALIPAY"),
        ];
        int tried = 0;
        foreach ((X509Certificate2 certificate, string key, string owner) in mismatches)
        {
            using GrpcChannel channel = Pki.Channel(Sw.Host.InstitutionAddress, certificate);
            string orderNo = $"MIX-{tried}";
            RpcException e = await Admin.AdminClient.FailsAsync(() => channel.UnaryAsync(InstitutionMethods.Payout, Payment(orderNo, 900), As(key, 30_000)), StatusCode.Unauthenticated);
            Assert.Equal($"the API key is not that of institution {owner}, which the client certificate proves: send its key or none", e.Status.Detail);
            // The key's institution is never named (a wrong key must not learn whose it is).
            Assert.DoesNotContain(owner == "ALIPAY" ? "TENPAY" : "ALIPAY", e.Status.Detail);
            RpcException refused = await Admin.AdminClient.FailsAsync(() => TransactOneAsync(channel, As(key, 30_000), orderNo + "-S"), StatusCode.Unauthenticated);
            Assert.Equal(e.Status.Detail, refused.Status.Detail);
            tried++;
        }
        for (int i = 0; i < tried; i++)
        {
            foreach (string key in new[] { AlipayKey, TenpayKey })
            {
                Assert.Equal(StatusCode.NotFound, await QueryStatusAsync($"MIX-{i}", key));
                Assert.Equal(StatusCode.NotFound, await QueryStatusAsync($"MIX-{i}-S", key));
            }
        }
        ReliabilityReport.Record("security", "mTLS: certificate and key of different institutions",
            $"{tried} certificate/key mismatches (ALIPAY cert + TENPAY key, TENPAY cert + ALIPAY key, ALIPAY cert + unknown key), each on a unary Payout and a Transact stream",
            "every call UNAUTHENTICATED naming the certificate's institution only; no order created for either institution");
    }

    [Fact]
    public async Task A_certificate_of_the_ca_mapped_to_no_institution_is_unauthenticated_even_with_a_valid_key()
    {
        using GrpcChannel channel = Pki.Channel(Sw.Host.InstitutionAddress, fixture.Unmapped);
        string fingerprint = TestPki.Fingerprint(fixture.Unmapped);
        foreach (CallOptions options in new[] { NoKey, As(AlipayKey, 30_000) })
        {
            RpcException e = await Admin.AdminClient.FailsAsync(() => channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("UNMAPPED-1", 100), options),
                StatusCode.Unauthenticated);
            Assert.Equal($"client certificate (SHA-256 {fingerprint}) is not mapped to any institution", e.Status.Detail);
        }
        Assert.Equal(StatusCode.NotFound, await QueryStatusAsync("UNMAPPED-1", AlipayKey));
        ReliabilityReport.Record("security", "mTLS: a certificate of the CA mapped to no institution",
            "a certificate issued by the institutions' CA but not in tls.institutionCertificates, without a key and with ALIPAY's valid key",
            "both UNAUTHENTICATED naming the certificate's fingerprint; nothing created");
    }

    [Fact]
    public async Task A_certificate_from_another_ca_is_refused_at_the_handshake_and_the_switch_keeps_serving()
    {
        using (GrpcChannel rogue = Pki.Channel(Sw.Host.InstitutionAddress, fixture.Rogue))
        {
            await Admin.AdminClient.FailsAsync(() => rogue.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("ROGUE-1", 100), NoKey), StatusCode.Unavailable);
            await Admin.AdminClient.FailsAsync(() => rogue.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("ROGUE-2", 100), As(AlipayKey, 30_000)), StatusCode.Unavailable);
        }
        using GrpcChannel alipay = Pki.Channel(Sw.Host.InstitutionAddress, fixture.Alipay);
        Assert.Equal(TransactionStatus.Succeeded, (await alipay.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("AFTER-ROGUE", 100), NoKey)).Status);
        Assert.Equal(StatusCode.NotFound, await QueryStatusAsync("ROGUE-1", AlipayKey));
        Assert.Equal(StatusCode.NotFound, await QueryStatusAsync("ROGUE-2", AlipayKey));
        ReliabilityReport.Record("security", "mTLS: a certificate from another CA",
            "a client certificate with ALIPAY's name issued by a rogue CA, without a key and with ALIPAY's valid key",
            "both refused at the TLS handshake (UNAVAILABLE), nothing created; the next mapped client was served");
    }

    [Fact]
    public async Task Both_admin_ports_serve_over_tls_and_cleartext_clients_fail_cleanly()
    {
        Assert.Equal(("https", "https"), (Sw.Host.AdminAddress.Scheme, Sw.Host.AdminGrpcAddress.Scheme));
        using HttpClient https = Pki.Https(Sw.Host.AdminAddress);
        using (HttpResponseMessage page = await https.GetAsync("/"))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        }
        Assert.Contains("switch_endpoint_weight_bps{bank=\"102\"", await https.GetStringAsync("/metrics"));
        using (var whoAmI = new HttpRequestMessage(HttpMethod.Post, "/api/v1/WhoAmI") { Content = new StringContent("{}") })
        {
            whoAmI.Headers.Add(AdminMethods.OperatorKeyHeader, Operator.OperatorTestKit.OperatorKey);
            using HttpResponseMessage reply = await https.SendAsync(whoAmI);
            Assert.Equal(System.Net.HttpStatusCode.OK, reply.StatusCode);
            Assert.Contains("\"operatorId\": \"ops\"", await reply.Content.ReadAsStringAsync());
        }
        using (var cleartext = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Sw.Host.AdminAddress.Port}"), Timeout = TimeSpan.FromSeconds(30) })
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => cleartext.GetStringAsync("/metrics"));
        }

        using (GrpcChannel admin = Pki.Channel(Sw.Host.AdminGrpcAddress))
        {
            OperatorInfo me = await admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Operator.OperatorTestKit.AsOperator(Operator.OperatorTestKit.OperatorKey));
            Assert.Equal("ops", me.OperatorId);
        }
        using (GrpcChannel cleartext = GrpcChannel.ForAddress($"http://127.0.0.1:{Sw.Host.AdminGrpcAddress.Port}"))
        {
            await Admin.AdminClient.FailsAsync(() => cleartext.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Operator.OperatorTestKit.AsOperator(Operator.OperatorTestKit.OperatorKey)),
                StatusCode.Unavailable);
        }
        // Both still serve after the cleartext attempts.
        Assert.Contains("switch_endpoint_weight_bps", await https.GetStringAsync("/metrics"));
        using (GrpcChannel admin = Pki.Channel(Sw.Host.AdminGrpcAddress))
        {
            await admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Operator.OperatorTestKit.AsOperator(Operator.OperatorTestKit.ViewerKey));
        }
        ReliabilityReport.Record("security", "TLS on the admin ports",
            "HTTPS dashboard page, /metrics and JSON API; gRPC AdminService over TLS; a cleartext HTTP/1.1 client and a cleartext h2c client against them",
            "TLS requests answered; the cleartext ones failed at the connection (no answer in clear) and both ports kept serving");
    }

    [Fact]
    public async Task Switchctl_operates_a_tls_switch_with_its_ca_certificate()
    {
        string admin = Sw.Host.AdminGrpcAddress.ToString();
        string key = Operator.OperatorTestKit.OperatorKey;
        Operator.CtlRun who = await Operator.OperatorTestKit.RawAsync(["--admin", admin, "--key", key, "--ca-cert", Pki.CaFile, "whoami"]);
        Assert.True(who.ExitCode == 0, who.ToString());
        Assert.StartsWith("ops (operate", who.Out);

        var environment = new Dictionary<string, string>
        {
            [Switch.Operator.SwitchCtl.AdminUrlVariable] = admin,
            [Switch.Operator.SwitchCtl.KeyVariable] = key,
            [Switch.Operator.SwitchCtl.CaCertVariable] = Pki.CaFile,
        };
        Operator.CtlRun change = await Operator.OperatorTestKit.RawAsync(["weights", "103", "ABC-DC1=60%", "ABC-DC2=40%", "--reason", "over TLS"], environment: environment);
        Assert.True(change.ExitCode == 0, change.ToString());
        using (GrpcChannel channel = Pki.Channel(Sw.Host.AdminGrpcAddress))
        {
            ListBanksReply banks = await channel.UnaryAsync(AdminMethods.ListBanks, new ListBanksRequest { Bank = "103" }, Operator.OperatorTestKit.AsOperator(key));
            Assert.Equal([6_000, 4_000], Operator.OperatorTestKit.Weights(Assert.Single(banks.Banks)));
        }

        // The switch's own certificate pinned instead of its authority.
        Operator.CtlRun pinned = await Operator.OperatorTestKit.RawAsync(["--admin", admin, "--key", key, "--ca-cert", Pki.ServerCertificateFile, "whoami"]);
        Assert.True(pinned.ExitCode == 0, pinned.ToString());

        Operator.CtlRun untrusted = await Operator.OperatorTestKit.RawAsync(["--admin", admin, "--key", key, "whoami"]);
        Assert.True(untrusted.ExitCode == Switch.Operator.ExitCodes.Unreachable, untrusted.ToString());
        Assert.Contains("TLS handshake failed", untrusted.Err);
        Operator.CtlRun missing = await Operator.OperatorTestKit.RawAsync(["--admin", admin, "--key", key, "--ca-cert", Path.Combine(Pki.Directory, "absent.pem"), "whoami"]);
        Assert.True(missing.ExitCode == Switch.Operator.ExitCodes.Usage, missing.ToString());
        Assert.Contains("--ca-cert:", missing.Err);
        Operator.CtlRun cleartext = await Operator.OperatorTestKit.RawAsync(["--admin", $"http://127.0.0.1:{Sw.Host.AdminGrpcAddress.Port}", "--key", key, "--ca-cert", Pki.CaFile, "whoami"]);
        Assert.True(cleartext.ExitCode == Switch.Operator.ExitCodes.Usage, cleartext.ToString());
        foreach (Operator.CtlRun run in new[] { who, change, pinned, untrusted, missing, cleartext })
        {
            Assert.DoesNotContain(key, run.Out + run.Err);
        }
        ReliabilityReport.Record("security", "switchctl against a TLS switch",
            "whoami with --ca-cert (the CA, then the switch's own certificate pinned), a weight change with SWITCH_ADMIN_CA_CERT, then no CA given, a missing CA file, --ca-cert with an http:// address",
            "those worked (the change applied); untrusted exit 3 naming the TLS handshake, the others exit 2 before sending; the key never printed");
    }
}

/// <summary>Client certificates "required": no certificate from the institutions' CA, no connection.</summary>
public sealed class RequiredClientCertificateTests
{
    [Fact]
    public async Task A_client_without_a_certificate_or_with_a_foreign_one_is_refused_at_the_handshake()
    {
        using var pki = new TestPki();
        X509Certificate2 alipay = pki.Client("alipay-gateway");
        X509Certificate2 rogue = pki.Client("alipay-gateway", rogue: true);
        await using RunningSwitch sw = await TlsSwitchFixture.StartAsync(pki, TlsConfig.ClientCertificatesRequired, ("ALIPAY", alipay));

        const int bareTries = 3;
        for (int i = 0; i < bareTries; i++)
        {
            using GrpcChannel bare = pki.Channel(sw.Host.InstitutionAddress);
            RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
                bare.UnaryAsync(InstitutionMethods.AgreementPayment, Payment($"BARE-{i}", 100), As(AlipayKey, 30_000)));
            Assert.True(e.StatusCode == StatusCode.Unavailable, e.ToString());
        }
        using (GrpcChannel foreign = pki.Channel(sw.Host.InstitutionAddress, rogue))
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() =>
                foreign.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("FOREIGN-1", 100), As(AlipayKey, 30_000)));
            Assert.True(e.StatusCode == StatusCode.Unavailable, e.ToString());
        }

        using GrpcChannel mapped = pki.Channel(sw.Host.InstitutionAddress, alipay);
        TransferResult paid = await mapped.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("REQ-1", 4_200), new CallOptions { Timeout = TimeSpan.FromSeconds(30) });
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        // Only that payment reached the engine.
        Assert.Equal(1, sw.Host.Engine.Logic.Transactions.LastId);
        // The admin ports ask for no client certificate: operators authenticate by key.
        using GrpcChannel admin = pki.Channel(sw.Host.AdminGrpcAddress);
        Assert.Equal("ops", (await admin.UnaryAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), Operator.OperatorTestKit.AsOperator(Operator.OperatorTestKit.OperatorKey))).OperatorId);

        ReliabilityReport.Record("security", "mTLS required",
            $"{bareTries} clients with a valid API key but no certificate, 1 with a certificate from another CA, then ALIPAY's mapped certificate",
            "the first were refused at the handshake (UNAVAILABLE) and reached nothing; the mapped certificate paid; the admin ports still served operators by key");
    }
}
