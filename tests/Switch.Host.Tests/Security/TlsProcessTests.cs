using Switch.Host;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Switch.Contracts.V1;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using Switch.Host.Tests.Reliability;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Security;

/// <summary>The real switch process with a tls block in its configuration file: what it prints, serves and refuses.</summary>
public sealed class TlsProcessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "switch-tls-process-" + Guid.NewGuid().ToString("N"));
    private readonly TestPki _pki = new();
    private readonly string _password = "pw-" + Guid.NewGuid().ToString("N");
    private readonly string _variable = "SWITCH_TEST_TLS_PASSWORD_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();

    public TlsProcessTests()
    {
        // An encrypted key, as an operator would keep it: its password comes from the environment only.
        using ECDsa key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(_pki.ServerKeyFile));
        File.WriteAllText(Path.Combine(_pki.Directory, "server-encrypted.key"), key.ExportEncryptedPkcs8PrivateKeyPem(_password,
            new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)));
    }

    public void Dispose()
    {
        _pki.Dispose();
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    /// <summary>A configuration file beside the certificates, naming them relative to itself.</summary>
    private string ConfigFile(string keyFile, string fingerprint)
    {
        string file = Path.Combine(_pki.Directory, "switch-" + Guid.NewGuid().ToString("N")[..8] + ".json");
        File.WriteAllText(file, TestPki.ConfigJson(new JsonObject
        {
            ["certificateFile"] = "server.pem",
            ["keyFile"] = keyFile,
            ["passwordVariable"] = _variable,
            ["clientCertificates"] = TlsConfig.ClientCertificatesOptional,
            ["clientCaFile"] = "ca.pem",
            ["institutionCertificates"] = new JsonArray(new JsonObject { ["institution"] = "ALIPAY", ["sha256"] = new JsonArray(fingerprint) }),
        }));
        return file;
    }

    private Dictionary<string, string> Environment => new() { [_variable] = _password };

    [Fact]
    public async Task The_process_serves_tls_from_its_configuration_file_prints_https_addresses_and_no_secret()
    {
        X509Certificate2 alipay = _pki.Client("alipay-gateway");
        string config = ConfigFile("server-encrypted.key", TestPki.OpensslFingerprint(alipay));
        using SwitchProcess process = SwitchProcess.Start(_data, Environment, "--config", config);
        Uri institution = await process.WaitForAddressAsync();
        List<LogRecord> records;
        lock (process.Output) records = process.Output.Select(LogRecord.TryParse).OfType<LogRecord>().ToList();
        LogRecord Single(string evt, string? api = null) => Assert.Single(records, r => r.Event == evt && (api is null || r["api"] == api));
        Uri adminGrpc = new(Single("listening", "operator_grpc")["address"]!);
        Uri adminWeb = new(Single("listening", "operator_http")["address"]!);
        Assert.Equal(("https", "https", "https"), (institution.Scheme, adminGrpc.Scheme, adminWeb.Scheme));
        Assert.Equal("operator API (gRPC, TLS)", Single("listening", "operator_grpc").Message);
        Assert.Equal(("CN=localhost", TestPki.Fingerprint(_pki.Server)), (Single("tls_certificate")["subject"], Single("tls_certificate")["sha256"]));
        Assert.Equal(("optional", "1"), (Single("tls_client_certificates")["rule"], Single("tls_client_certificates")["mapped"]));

        using (GrpcChannel channel = _pki.Channel(institution, alipay))
        {
            TransferResult paid = await channel.UnaryAsync(InstitutionMethods.AgreementPayment, Payment("PROC-TLS-1", 3_300), new CallOptions { Timeout = TimeSpan.FromSeconds(60) });
            Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        }
        using (HttpClient https = _pki.Https(adminWeb))
        {
            Assert.Contains("switch_endpoint_weight_bps", await https.GetStringAsync("/metrics"));
        }
        Assert.Equal(0, await process.TerminateAsync());

        string everything;
        lock (process.Output) everything = string.Join("\n", process.Output.Concat(process.Errors));
        foreach (string secret in new[] { _password, "PRIVATE KEY", AlipayKey, TenpayKey, "demo-operator-key" })
        {
            Assert.DoesNotContain(secret, everything);
        }
        ReliabilityReport.Record("security", "the switch process with TLS",
            "the real process from a configuration file with relative certificate paths, an encrypted key whose password came from the environment, optional client certificates",
            "it printed https addresses for all three ports and the certificate's fingerprint, served a payment by client certificate and HTTPS /metrics, stopped with 0 on SIGTERM; no password, key or API key in its output");
    }

    [Fact]
    public async Task A_bad_tls_configuration_stops_the_process_with_exit_code_2_naming_the_field()
    {
        (string Config, string Expected)[] runs =
        [
            (ConfigFile("server.pem", new string('a', 64)), "tls.keyFile: "),
            (ConfigFile("server-encrypted.key", "not-a-fingerprint"), "tls.institutionCertificates[0].sha256[0]: "),
        ];
        foreach ((string config, string expected) in runs)
        {
            using SwitchProcess process = SwitchProcess.Start(_data, Environment, "--config", config);
            Assert.Equal(2, await process.WaitForExitAsync());
            string errors;
            lock (process.Errors) errors = string.Join("\n", process.Errors);
            Assert.Contains(config + ": configuration: " + expected, errors);
            Assert.DoesNotContain(_password, errors);
        }
        Assert.False(Directory.Exists(_data), "a refused configuration must not start a journal");
        ReliabilityReport.Record("security", "the switch process with a bad TLS configuration",
            $"{runs.Length} starts of the real process: a key file holding no key, a fingerprint that is not 64 hex digits",
            "each exited with code 2 before listening, the message naming the configuration file and the field, no password shown");
    }
}
