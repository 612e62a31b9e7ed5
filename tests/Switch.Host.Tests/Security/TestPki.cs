using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Switch.Grpc.Client;
using Switch.Grpc.Tls;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Security;

/// <summary>
/// A throwaway PKI made by the test run (never committed): an institutions' CA that also issues the switch's server
/// certificate (localhost, 127.0.0.1), client certificates for institutions, and a rogue CA with a client certificate
/// of its own. The CA and the server's certificate and key are written as PEM into a temporary directory, deleted on dispose.
/// </summary>
public sealed class TestPki : IDisposable
{
    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _rogueKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly List<X509Certificate2> _issued = new();

    public TestPki()
    {
        Directory = Path.Combine(Path.GetTempPath(), "switch-tls-test-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Ca = Authority("CN=Switch Test Institutions CA", _caKey);
        RogueCa = Authority("CN=Rogue CA", _rogueKey);
        Server = Issue("CN=localhost", Ca, _caKey, TrustedRoots.ServerAuthenticationOid, server: true, out ECDsa serverKey);
        using (serverKey)
        {
            File.WriteAllText(CaFile, Ca.ExportCertificatePem());
            File.WriteAllText(ServerCertificateFile, Server.ExportCertificatePem());
            File.WriteAllText(ServerKeyFile, serverKey.ExportPkcs8PrivateKeyPem());
        }
    }

    public string Directory { get; }
    public X509Certificate2 Ca { get; }
    public X509Certificate2 RogueCa { get; }
    public X509Certificate2 Server { get; }
    public string CaFile => Path.Combine(Directory, "ca.pem");
    public string ServerCertificateFile => Path.Combine(Directory, "server.pem");
    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    /// <summary>A client certificate from the institutions' CA (or from the rogue one), with its private key.</summary>
    public X509Certificate2 Client(string commonName, bool rogue = false)
    {
        X509Certificate2 client = Issue("CN=" + commonName, rogue ? RogueCa : Ca, rogue ? _rogueKey : _caKey,
            TrustedRoots.ClientAuthenticationOid, server: false, out ECDsa key);
        key.Dispose();
        return client;
    }

    /// <summary>The fingerprint as operators copy it from openssl: upper-case pairs separated by ':'.</summary>
    public static string OpensslFingerprint(X509Certificate2 certificate) =>
        string.Join(':', certificate.GetCertHash(HashAlgorithmName.SHA256).Select(b => b.ToString("X2")));

    public static string Fingerprint(X509Certificate2 certificate) => Convert.ToHexStringLower(certificate.GetCertHash(HashAlgorithmName.SHA256));

    /// <summary>TLS with the server certificate and key files; client certificates as asked, mapped as given.</summary>
    public TlsConfig Tls(string clientCertificates = TlsConfig.ClientCertificatesNone, params (string Institution, X509Certificate2 Certificate)[] mapping) => new()
    {
        CertificateFile = ServerCertificateFile,
        KeyFile = ServerKeyFile,
        ClientCertificates = clientCertificates,
        ClientCaFile = clientCertificates == TlsConfig.ClientCertificatesNone ? null : CaFile,
        InstitutionCertificates = mapping.GroupBy(m => m.Institution)
            .Select(g => new InstitutionCertificateConfig { Institution = g.Key, Sha256 = g.Select(m => OpensslFingerprint(m.Certificate)).ToArray() })
            .ToArray(),
    };

    /// <summary>The embedded configuration with the tls block given, as a configuration file would hold it.</summary>
    public static string ConfigJson(JsonObject tls)
    {
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
        JsonObject root = JsonSerializer.SerializeToNode(HostConfig.EmbeddedDefault(), options)!.AsObject();
        root["tls"] = tls;
        return root.ToJsonString();
    }

    /// <summary>A client trusting the test CA only (the switch's certificate is issued by it), presenting a certificate if given.</summary>
    public GrpcChannel Channel(Uri address, X509Certificate2? clientCertificate = null) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        ServerCertificateValidation = new TrustedRoots([Ca]).ServerCertificateValidation(),
        ClientCertificate = clientCertificate,
        ConnectTimeout = TimeSpan.FromSeconds(30),
    });

    /// <summary>An HTTPS client of the admin web port trusting the test CA only.</summary>
    public HttpClient Https(Uri address) => new(new SocketsHttpHandler
    {
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = new TrustedRoots([Ca]).ServerCertificateValidation(),
        },
    })
    { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };

    private X509Certificate2 Authority(string name, ECDsa key)
    {
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        X509Certificate2 ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(2));
        _issued.Add(ca);
        return ca;
    }

    private X509Certificate2 Issue(string name, X509Certificate2 issuer, ECDsa issuerKey, string usageOid, bool server, out ECDsa key)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // a positive serial number
        var generator = X509SignatureGenerator.CreateForECDsa(issuerKey);
        using X509Certificate2 bare = request.Create(issuer.SubjectName, generator, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
        using X509Certificate2 withKey = bare.CopyWithPrivateKey(key);
        // Through PKCS#12 so the TLS stack can use the private key.
        X509Certificate2 usable = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        _issued.Add(usable);
        return usable;
    }

    public void Dispose()
    {
        foreach (X509Certificate2 c in _issued) c.Dispose();
        _caKey.Dispose();
        _rogueKey.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
