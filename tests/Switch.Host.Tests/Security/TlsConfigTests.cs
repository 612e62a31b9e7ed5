using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Switch.Engine.Business;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using Switch.Host.Tests.Reliability;

namespace Switch.Host.Tests.Security;

/// <summary>
/// The tls block of the host configuration as an operator writes it: files relative to the configuration file,
/// PEM or PKCS#12, passwords from the environment; every mistake refused naming the field, no secret in a message.
/// </summary>
public sealed class TlsConfigTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly string _password = "pw-" + Guid.NewGuid().ToString("N");
    private readonly string _rsaFingerprint;
    private readonly string _variable = "SWITCH_TEST_TLS_PASSWORD_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();

    public TlsConfigTests()
    {
        File.WriteAllBytes(Path.Combine(_pki.Directory, "server.pfx"), _pki.Server.Export(X509ContentType.Pkcs12, _password));
        using ECDsa serverKey = ECDsa.Create();
        serverKey.ImportFromPem(File.ReadAllText(_pki.ServerKeyFile));
        File.WriteAllText(Path.Combine(_pki.Directory, "server-encrypted.key"), serverKey.ExportEncryptedPkcs8PrivateKeyPem(_password,
            new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)));
        File.WriteAllText(Path.Combine(_pki.Directory, "server-sec1.key"), serverKey.ExportECPrivateKeyPem());
        // An RSA server certificate with a PKCS#1 key, as older tooling writes them.
        using (RSA rsaKey = RSA.Create(2048))
        {
            var request = new CertificateRequest("CN=localhost", rsaKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(Grpc.Tls.TrustedRoots.ServerAuthenticationOid)], false));
            using X509Certificate2 rsa = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            _rsaFingerprint = TestPki.Fingerprint(rsa);
            File.WriteAllText(Path.Combine(_pki.Directory, "rsa.pem"), rsa.ExportCertificatePem());
            File.WriteAllText(Path.Combine(_pki.Directory, "rsa-pkcs1.key"), rsaKey.ExportRSAPrivateKeyPem());
        }
        using ECDsa otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(Path.Combine(_pki.Directory, "other.key"), otherKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(_pki.Directory, "garbage.key"), "this is not a key\n");
        File.WriteAllText(Path.Combine(_pki.Directory, "corrupt.key"), "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n");
        File.WriteAllText(Path.Combine(_pki.Directory, "empty-ca.pem"), "no certificates here\n");
        // Certificates a client would refuse from a server: expired, and one made for clients.
        using (ECDsa expiredKey = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=expired", expiredKey, HashAlgorithmName.SHA256);
            using X509Certificate2 expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1));
            File.WriteAllText(Path.Combine(_pki.Directory, "expired.pem"), expired.ExportCertificatePem() + "\n" + expiredKey.ExportPkcs8PrivateKeyPem() + "\n");
        }
        X509Certificate2 client = _pki.Client("a client");
        using (ECDsa clientKey = client.GetECDsaPrivateKey()!)
        {
            File.WriteAllText(Path.Combine(_pki.Directory, "client.pem"), client.ExportCertificatePem() + "\n" + clientKey.ExportPkcs8PrivateKeyPem() + "\n");
        }
        File.WriteAllText(Path.Combine(_pki.Directory, "both.pem"), File.ReadAllText(_pki.ServerCertificateFile) + "\n" + File.ReadAllText(_pki.ServerKeyFile) + "\n");
    }

    public void Dispose() => _pki.Dispose();

    private string? Environment(string name) => name == _variable ? _password : name == _variable + "_WRONG" ? "wrong-" + _password[..6] : null;

    /// <summary>Parses as the process does (relative to the PKI's directory) and reads the files.</summary>
    private TlsMaterial Load(JsonObject tls)
    {
        HostConfig config = HostConfig.Parse(TestPki.ConfigJson(tls), "switch.json", _pki.Directory);
        return TlsMaterial.Load(config.Tls!, Environment);
    }

    private static JsonObject PemFiles() => new() { ["certificateFile"] = "server.pem", ["keyFile"] = "server.key" };

    private JsonObject Mutual(string clientCertificates = TlsConfig.ClientCertificatesRequired) => new()
    {
        ["certificateFile"] = "server.pem",
        ["keyFile"] = "server.key",
        ["clientCertificates"] = clientCertificates,
        ["clientCaFile"] = "ca.pem",
        ["institutionCertificates"] = new JsonArray(new JsonObject
        {
            ["institution"] = "ALIPAY",
            ["sha256"] = new JsonArray(TestPki.OpensslFingerprint(_pki.Server), new string('a', 64)),
        }),
    };

    [Fact]
    public void Good_configurations_load_from_files_relative_to_the_configuration_file()
    {
        string server = TestPki.Fingerprint(_pki.Server);
        (JsonObject Tls, string Expected)[] good =
        [
            (PemFiles(), server),
            (new() { ["certificateFile"] = "both.pem" }, server),
            (new() { ["certificateFile"] = "server.pem", ["keyFile"] = "server-sec1.key" }, server),
            (new() { ["certificateFile"] = "rsa.pem", ["keyFile"] = "rsa-pkcs1.key" }, _rsaFingerprint),
            (new() { ["certificateFile"] = "server.pfx", ["passwordVariable"] = _variable }, server),
            (new() { ["certificateFile"] = "server.pem", ["keyFile"] = "server-encrypted.key", ["passwordVariable"] = _variable }, server),
            (Mutual(), server),
            (Mutual(TlsConfig.ClientCertificatesOptional), server),
        ];
        foreach ((JsonObject tls, string expected) in good)
        {
            using TlsMaterial material = Load(tls);
            Assert.True(material.Certificate.HasPrivateKey, tls.ToJsonString());
            Assert.Equal(expected, CertificateFingerprint.Of(material.Certificate).ToString());
            Assert.Equal(tls.ContainsKey("clientCaFile"), material.ClientRoots is not null);
        }
        // A relative path is taken from the configuration file's directory, whatever the working directory.
        HostConfig parsed = HostConfig.Parse(TestPki.ConfigJson(PemFiles()), "switch.json", _pki.Directory);
        Assert.Equal(_pki.ServerCertificateFile, parsed.Tls!.CertificateFile);
        Assert.Equal(_pki.ServerKeyFile, parsed.Tls.KeyFile);
    }

    [Fact]
    public void Fingerprints_are_read_as_openssl_prints_them_or_as_plain_hex()
    {
        string plain = TestPki.Fingerprint(_pki.Server);
        Assert.True(CertificateFingerprint.TryParse(TestPki.OpensslFingerprint(_pki.Server), out CertificateFingerprint colons));
        Assert.True(CertificateFingerprint.TryParse(plain.ToUpperInvariant(), out CertificateFingerprint upper));
        Assert.Equal(CertificateFingerprint.Of(_pki.Server), colons);
        Assert.Equal(colons, upper);
        Assert.Equal(plain, colons.ToString());
        foreach (string bad in new[] { "", plain[..63], plain + "0", plain[..62] + "zz", "sha256:" + plain, TestPki.OpensslFingerprint(_pki.Server).Replace(':', '-'),
                     ":" + TestPki.OpensslFingerprint(_pki.Server)[..^1] })
        {
            Assert.False(CertificateFingerprint.TryParse(bad, out _), bad);
        }
    }

    [Fact]
    public void Every_mistake_is_refused_naming_the_field_and_no_secret_is_shown()
    {
        string serverFingerprint = TestPki.OpensslFingerprint(_pki.Server);
        (string Case, JsonObject Tls, string Field, string Why)[] cases =
        [
            ("certificate file missing", new() { ["certificateFile"] = "absent.pem", ["keyFile"] = "server.key" }, "tls.certificateFile", "no such file"),
            ("no certificate file", new() { ["keyFile"] = "server.key" }, "tls.certificateFile", "required"),
            ("key file missing", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "absent.key" }, "tls.keyFile", "no such file"),
            ("key of another certificate", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "other.key" }, "tls.keyFile", "cannot be used with the certificate"),
            ("key file not a key", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "garbage.key" }, "tls.keyFile", "holds no PEM private key"),
            ("key file damaged", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "corrupt.key" }, "tls.keyFile", "cannot be used with the certificate"),
            ("certificate without a key", new() { ["certificateFile"] = "server.pem" }, "tls.certificateFile", "holds no private key"),
            ("a key file as the certificate", new() { ["certificateFile"] = "server.key", ["keyFile"] = "server.key" }, "tls.certificateFile", "holds no PEM certificate"),
            ("expired certificate", new() { ["certificateFile"] = "expired.pem" }, "tls.certificateFile", "the certificate (CN=expired) expired at"),
            ("a client's certificate", new() { ["certificateFile"] = "client.pem" }, "tls.certificateFile", "is not for server authentication"),
            ("encrypted key without a password", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "server-encrypted.key" }, "tls.keyFile", "the key is encrypted"),
            ("password variable not set", new() { ["certificateFile"] = "server.pfx", ["passwordVariable"] = "SWITCH_TEST_TLS_UNSET_VARIABLE" }, "tls.passwordVariable", "is not set"),
            ("the password in the file", new() { ["certificateFile"] = "server.pfx", ["passwordVariable"] = "hunter2!" }, "tls.passwordVariable", "never goes in the file"),
            ("PKCS#12 without its password", new() { ["certificateFile"] = "server.pfx" }, "tls.certificateFile", "not a PKCS#12 file readable without a password"),
            ("PKCS#12 with a wrong password", new() { ["certificateFile"] = "server.pfx", ["passwordVariable"] = _variable + "_WRONG" }, "tls.certificateFile", "wrong password or damaged file"),
            ("encrypted key with a wrong password", new() { ["certificateFile"] = "server.pem", ["keyFile"] = "server-encrypted.key", ["passwordVariable"] = _variable + "_WRONG" },
                "tls.keyFile", "cannot be used with the certificate"),
            ("PKCS#12 with a key file", new() { ["certificateFile"] = "server.pfx", ["keyFile"] = "server.key", ["passwordVariable"] = _variable }, "tls.keyFile", "leave keyFile out"),
            ("unknown client certificate rule", With(Mutual(), "clientCertificates", "sometimes"), "tls.clientCertificates", "\"none\", \"optional\" or \"required\", got 'sometimes'"),
            ("mutual TLS without a CA", Without(Mutual(), "clientCaFile"), "tls.clientCaFile", "required with clientCertificates \"required\""),
            ("CA file missing", With(Mutual(), "clientCaFile", "absent-ca.pem"), "tls.clientCaFile", "no such file"),
            ("CA file without a certificate", With(Mutual(), "clientCaFile", "empty-ca.pem"), "tls.clientCaFile", "holds no PEM certificate"),
            ("a CA without client certificates", With(PemFiles(), "clientCaFile", "ca.pem"), "tls.clientCaFile", "only used with clientCertificates"),
            ("a mapping without client certificates", With(PemFiles(), "institutionCertificates", Mapping("ALIPAY", serverFingerprint)), "tls.institutionCertificates", "with \"none\" no certificate is asked for"),
            ("mutual TLS mapping nobody", With(Mutual(), "institutionCertificates", new JsonArray()), "tls.institutionCertificates", "map at least one institution"),
            ("fingerprint too short", With(Mutual(), "institutionCertificates", Mapping("ALIPAY", new string('a', 63))), "tls.institutionCertificates[0].sha256[0]", "64 hex digits"),
            ("fingerprint not hex", With(Mutual(), "institutionCertificates", Mapping("ALIPAY", new string('g', 64))), "tls.institutionCertificates[0].sha256[0]", "64 hex digits"),
            ("fingerprint of 65 digits", With(Mutual(), "institutionCertificates", Mapping("ALIPAY", new string('a', 65))), "tls.institutionCertificates[0].sha256[0]", "64 hex digits"),
            ("unknown institution", With(Mutual(), "institutionCertificates", Mapping("NOBODY", serverFingerprint)), "tls.institutionCertificates[0].institution", "no institution 'NOBODY'"),
            ("one certificate, two institutions",
                With(Mutual(), "institutionCertificates", new JsonArray(Entry("ALIPAY", serverFingerprint), Entry("TENPAY", serverFingerprint.Replace(":", "").ToLowerInvariant()))),
                "tls.institutionCertificates[1].sha256[0]", "already mapped to institution 'ALIPAY'"),
            ("an institution listed twice",
                With(Mutual(), "institutionCertificates", new JsonArray(Entry("ALIPAY", serverFingerprint), Entry("ALIPAY", new string('b', 64)))),
                "tls.institutionCertificates[1].institution", "listed twice"),
            ("no fingerprint", With(Mutual(), "institutionCertificates", new JsonArray(new JsonObject { ["institution"] = "ALIPAY", ["sha256"] = new JsonArray() })),
                "tls.institutionCertificates[0].sha256", "1 to 16"),
        ];
        foreach ((string name, JsonObject tls, string field, string why) in cases)
        {
            ConfigException e = Assert.Throws<ConfigException>(() => Load(tls).Dispose());
            Assert.True(e.Message.Contains($"{field}: ", StringComparison.Ordinal) && e.Message.Contains(why, StringComparison.Ordinal),
                $"{name}: expected '{field}: ... {why}', got: {e.Message}");
            Assert.DoesNotContain(_password, e.Message);
            Assert.DoesNotContain(_password[..6], e.Message);
            Assert.DoesNotContain("hunter2", e.Message);
            Assert.DoesNotContain("PRIVATE KEY-----\n", e.Message);
        }
        ReliabilityReport.Record("security", "TLS configuration refused at start",
            $"{cases.Length} broken tls blocks: expired or client-only server certificates, missing, unreadable, mismatched and encrypted keys, wrong or missing passwords, PKCS#12 misuse, " +
            "bad client certificate rule, mutual TLS without a CA, fingerprints not 64 hex digits, unknown or doubled institutions and fingerprints",
            "each refused with a message naming the field; no password or key material in any message");
    }

    private static JsonObject With(JsonObject tls, string name, JsonNode value)
    {
        tls[name] = value;
        return tls;
    }

    private static JsonObject Without(JsonObject tls, string name)
    {
        tls.Remove(name);
        return tls;
    }

    private static JsonObject Entry(string institution, string fingerprint) => new() { ["institution"] = institution, ["sha256"] = new JsonArray(fingerprint) };

    private static JsonArray Mapping(string institution, string fingerprint) => new(Entry(institution, fingerprint));
}
