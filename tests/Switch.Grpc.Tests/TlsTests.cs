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
    public async Task Untrusted_certificate_is_unavailable_under_default_validation()
    {
        using var channel = GrpcChannel.ForAddress(HttpsAddress);
        await TestUtil.ExpectStatus(StatusCode.Unavailable, () => channel.UnaryAsync(InteropMethods.Unary, new EchoRequest()));
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: false));
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Round-trip through PKCS#12 so the private key is usable by the TLS stack on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
    }
}
