using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Switch.Grpc.Client;
using Switch.Grpc.Server;
using Switch.Grpc.Tls;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>HTTP/2 over TLS (ALPN h2) with a self-signed certificate made here.</summary>
public sealed class TlsTests : IAsyncLifetime
{
    private X509Certificate2 _certificate = null!;
    private GrpcServer _server = null!;

    public async Task InitializeAsync()
    {
        _certificate = SelfSigned();
        var router = new InteropService().Map(new GrpcRouter());
        _server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Tls = new ServerTlsOptions { Certificate = _certificate } }).Bounded();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _certificate.Dispose();
    }

    private Uri HttpsAddress => new($"https://localhost:{_server.Port}");

    [Fact]
    public async Task Unary_and_bidi_over_tls_with_a_pinned_certificate()
    {
        string thumbprint = _certificate.Thumbprint;
        using var channel = GrpcChannel.ForAddress(HttpsAddress, new GrpcChannelOptions
        {
            ServerCertificateValidation = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == thumbprint,
        });
        Assert.Equal("tls", (await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "tls" }).Bounded()).Text);

        using var call = channel.DuplexStreaming(InteropMethods.Bidi);
        for (int i = 0; i < 100; i++) await call.RequestStream.WriteAsync(new EchoRequest { Text = "t" + i });
        await call.RequestStream.CompleteAsync().Bounded();
        int n = 0;
        while (await call.ResponseStream.ReadAsync().Bounded() is not null) n++;
        Assert.Equal(100, n);
    }

    [Fact]
    public async Task A_stream_the_server_refuses_at_its_start_reports_the_servers_status_even_when_a_write_raced_it()
    {
        const int calls = 200;
        var router = new GrpcRouter().MapDuplexStreaming<EchoRequest, EchoReply>(InteropMethods.Bidi,
            (_, _, _) => throw new RpcException(StatusCode.Unauthenticated, "refused at the start"));
        await using GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Tls = new ServerTlsOptions { Certificate = _certificate } }).Bounded();
        string thumbprint = _certificate.Thumbprint;
        using GrpcChannel channel = GrpcChannel.ForAddress(new Uri($"https://localhost:{server.Port}"), new GrpcChannelOptions
        {
            ServerCertificateValidation = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == thumbprint,
        });
        for (int i = 0; i < calls; i++)
        {
            using DuplexStreamingCall<EchoRequest, EchoReply> call = channel.DuplexStreaming(InteropMethods.Bidi);
            try
            {
                // The server may have ended the call before these get in: they fail, and the read still tells why.
                await call.RequestStream.WriteAsync(new EchoRequest { Text = "early" });
                await call.RequestStream.CompleteAsync();
            }
            catch (RpcException)
            {
            }
            RpcException e = await TestUtil.ExpectStatus(StatusCode.Unauthenticated, async () => await call.ResponseStream.ReadAsync());
            Assert.Equal("refused at the start", e.Status.Detail);
        }
    }

    [Fact]
    public async Task Untrusted_certificate_is_unavailable_under_default_validation()
    {
        using var channel = GrpcChannel.ForAddress(HttpsAddress);
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
    }

    [Fact]
    public async Task A_required_client_certificate_reaches_the_handler_and_a_client_without_one_is_refused()
    {
        using X509Certificate2 client = SelfSigned(TrustedRoots.ClientAuthenticationOid, "CN=client");
        using X509Certificate2 serverUsage = SelfSigned(TrustedRoots.ServerAuthenticationOid, "CN=client with a server's usage");
        var clientRoots = new TrustedRoots([X509CertificateLoader.LoadCertificate(client.RawData), X509CertificateLoader.LoadCertificate(serverUsage.RawData)]);
        var router = new GrpcRouter().MapUnary(InteropMethods.Unary,
            (_, context) => ValueTask.FromResult(new EchoReply { Text = context.ClientCertificate?.Thumbprint ?? "none" }));
        await using GrpcServer server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions
        {
            Address = IPAddress.Loopback,
            Tls = new ServerTlsOptions
            {
                Certificate = _certificate,
                ClientCertificates = ClientCertificates.Required,
                ClientCertificateValidation = (certificate, chain) => clientRoots.Chains(certificate, TrustedRoots.ClientAuthenticationOid, chain),
            },
        }).Bounded();
        var address = new Uri($"https://localhost:{server.Port}");
        // The server's self-signed certificate pinned as the only trusted one.
        var trustServer = new TrustedRoots([X509CertificateLoader.LoadCertificate(_certificate.RawData)]).ServerCertificateValidation();

        using (var mutual = GrpcChannel.ForAddress(address, new GrpcChannelOptions { ServerCertificateValidation = trustServer, ClientCertificate = client }))
        {
            Assert.Equal(client.Thumbprint, (await mutual.UnaryAsync(InteropMethods.Unary, new EchoRequest()).Bounded()).Text);
        }
        using (var anonymous = GrpcChannel.ForAddress(address, new GrpcChannelOptions { ServerCertificateValidation = trustServer }))
        {
            await TestUtil.ExpectStatus(StatusCode.Unavailable, () => anonymous.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        }
        // A trusted certificate the validation refuses (made for servers, not clients) ends the handshake too.
        using (var wrong = GrpcChannel.ForAddress(address, new GrpcChannelOptions { ServerCertificateValidation = trustServer, ClientCertificate = serverUsage }))
        {
            await TestUtil.ExpectStatus(StatusCode.Unavailable, () => wrong.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
        }
    }

    private static X509Certificate2 SelfSigned(string usageOid = TrustedRoots.ServerAuthenticationOid, string name = "CN=localhost")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: false));
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Round-trip through PKCS#12 so the private key is usable by the TLS stack on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
    }
}
