using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Switch.Engine.Business;
using Switch.Grpc.Tls;

namespace Switch.Host.Configuration;

/// <summary>
/// The files of a <see cref="TlsConfig"/>, read and checked: the server certificate with its private key and chain,
/// and the client certificate authorities. Every failure is a ConfigException naming the field; no message ever
/// holds a password or key material.
/// </summary>
public sealed class TlsMaterial : IDisposable
{
    /// <summary>Certificate and key files are a few kilobytes; a bigger file is the wrong file.</summary>
    public const int MaxFileBytes = 1 << 20;

    private TlsMaterial(X509Certificate2 certificate, X509Certificate2Collection chain, TrustedRoots? clientRoots)
    {
        Certificate = certificate;
        Chain = chain;
        ClientRoots = clientRoots;
    }

    public X509Certificate2 Certificate { get; }
    public X509Certificate2Collection Chain { get; }
    /// <summary>Null when no client certificate is asked for.</summary>
    public TrustedRoots? ClientRoots { get; }

    /// <summary>Reads and checks the files; <paramref name="environment"/> gives the password variable's value.</summary>
    public static TlsMaterial Load(TlsConfig tls, Func<string, string?> environment)
    {
        string? password = null;
        if (tls.PasswordVariable is { } variable)
        {
            password = environment(variable);
            Require(password is not null, "passwordVariable", $"the environment variable '{variable}' is not set");
        }
        byte[] certificateBytes = Read(tls.CertificateFile, "certificateFile");
        (X509Certificate2 certificate, X509Certificate2Collection chain) = IsPem(certificateBytes)
            ? FromPem(tls, certificateBytes, password)
            : FromPkcs12(tls, certificateBytes, password);
        try
        {
            CheckServerCertificate(certificate, DateTime.UtcNow);
            TrustedRoots? roots = null;
            if (tls.ClientCertificateRule != ClientCertificates.None)
            {
                try
                {
                    roots = TrustedRoots.FromPemFile(tls.ClientCaFile!);
                }
                catch (InvalidDataException e)
                {
                    throw new ConfigException($"configuration: tls.clientCaFile: {e.Message}");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ConfigException($"configuration: tls.clientCaFile: cannot read '{tls.ClientCaFile}': {Reason(e)}");
                }
            }
            return new TlsMaterial(certificate, chain, roots);
        }
        catch
        {
            certificate.Dispose();
            throw;
        }
    }

    /// <summary>The rule for the institution port: the configured client certificate rule, validated against the client authorities.</summary>
    public ServerTlsOptions InstitutionPort(TlsConfig tls)
    {
        TrustedRoots? roots = ClientRoots;
        return new ServerTlsOptions
        {
            Certificate = Certificate,
            Chain = Chain,
            ClientCertificates = tls.ClientCertificateRule,
            ClientCertificateValidation = roots is null ? null
                : (certificate, presented) => roots.Chains(certificate, TrustedRoots.ClientAuthenticationOid, presented),
        };
    }

    /// <summary>The admin ports: TLS with the same certificate; operators authenticate by key, so no client certificate is asked for.</summary>
    public ServerTlsOptions AdminPort() => new() { Certificate = Certificate, Chain = Chain };

    /// <summary>Reads and disposes: the check made before start so a bad file is a configuration error (exit 2).</summary>
    public static void Check(TlsConfig tls, Func<string, string?> environment) => Load(tls, environment).Dispose();

    private static (X509Certificate2, X509Certificate2Collection) FromPkcs12(TlsConfig tls, byte[] bytes, string? password)
    {
        Require(tls.KeyFile is null, "keyFile", "the PKCS#12 certificate file holds the key: leave keyFile out");
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, password);
        }
        catch (CryptographicException e)
        {
            string hint = tls.PasswordVariable is null
                ? "not PEM, and not a PKCS#12 file readable without a password (name the variable holding it in tls.passwordVariable)"
                : $"not PEM, and not a PKCS#12 file readable with the password in ${tls.PasswordVariable} (wrong password or damaged file)";
            throw new ConfigException($"configuration: tls.certificateFile: '{tls.CertificateFile}': {hint}: {e.Message}");
        }
        X509Certificate2[] withKey = all.Where(c => c.HasPrivateKey).ToArray();
        if (withKey.Length != 1)
        {
            foreach (X509Certificate2 c in all) c.Dispose();
            throw new ConfigException($"configuration: tls.certificateFile: '{tls.CertificateFile}': a PKCS#12 file with exactly one private key, found {withKey.Length}");
        }
        var chain = new X509Certificate2Collection();
        foreach (X509Certificate2 c in all)
        {
            if (!ReferenceEquals(c, withKey[0])) chain.Add(c);
        }
        return (withKey[0], chain);
    }

    private static (X509Certificate2, X509Certificate2Collection) FromPem(TlsConfig tls, byte[] certificateBytes, string? password)
    {
        string certificateText = System.Text.Encoding.ASCII.GetString(certificateBytes);
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(certificateText);
        }
        catch (CryptographicException e)
        {
            throw new ConfigException($"configuration: tls.certificateFile: '{tls.CertificateFile}' holds a certificate that cannot be read: {e.Message}");
        }
        Require(certificates.Count > 0, "certificateFile", $"'{tls.CertificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----); the server's certificate comes first");
        X509Certificate2 leaf = certificates[0];
        var chain = new X509Certificate2Collection();
        for (int i = 1; i < certificates.Count; i++) chain.Add(certificates[i]);

        // The key: its own file, or a key block beside the certificate.
        string field = tls.KeyFile is null ? "certificateFile" : "keyFile";
        string keyText = tls.KeyFile is null ? certificateText : System.Text.Encoding.ASCII.GetString(Read(tls.KeyFile, "keyFile"));
        string keyPath = tls.KeyFile ?? tls.CertificateFile;
        bool encrypted = keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        Require(!encrypted || password is not null, field, $"'{keyPath}': the key is encrypted: name the environment variable holding its password in tls.passwordVariable");
        Require(keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal), field, tls.KeyFile is null
            ? $"'{keyPath}' holds no private key: add it to the file or name a keyFile"
            : $"'{keyPath}' holds no PEM private key (-----BEGIN PRIVATE KEY----- or an RSA, EC or encrypted one)");
        try
        {
            X509Certificate2 withKey;
            if (leaf.GetRSAPublicKey() is { } rsaPublic)
            {
                rsaPublic.Dispose();
                using RSA key = RSA.Create();
                Import(key, keyText, encrypted, password);
                withKey = leaf.CopyWithPrivateKey(key);
            }
            else if (leaf.GetECDsaPublicKey() is { } ecPublic)
            {
                ecPublic.Dispose();
                using ECDsa key = ECDsa.Create();
                Import(key, keyText, encrypted, password);
                withKey = leaf.CopyWithPrivateKey(key);
            }
            else
            {
                throw new ConfigException($"configuration: tls.certificateFile: '{tls.CertificateFile}': the certificate's key is neither RSA nor ECDSA");
            }
            // Through PKCS#12 so the TLS stack holds the key the way it holds a loaded certificate's, on every platform.
            using (withKey)
            {
                return (X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null), chain);
            }
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // The key's own reader says what is wrong (a wrong password, another algorithm, a key of another certificate).
            throw new ConfigException($"configuration: tls.{field}: '{keyPath}': the private key cannot be used with the certificate: {Reason(e)}");
        }
        finally
        {
            leaf.Dispose();
        }
    }

    private static void Import(AsymmetricAlgorithm key, string pem, bool encrypted, string? password)
    {
        if (encrypted) key.ImportFromEncryptedPem(pem, password);
        else key.ImportFromPem(pem);
    }

    /// <summary>A server certificate a client would refuse is refused here first, with the reason.</summary>
    private static void CheckServerCertificate(X509Certificate2 certificate, DateTime nowUtc)
    {
        Require(certificate.NotAfter.ToUniversalTime() > nowUtc, "certificateFile", $"the certificate ({certificate.Subject}) expired at {certificate.NotAfter.ToUniversalTime():u}");
        Require(certificate.NotBefore.ToUniversalTime() <= nowUtc, "certificateFile", $"the certificate ({certificate.Subject}) is not valid before {certificate.NotBefore.ToUniversalTime():u}");
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension usage)
            {
                bool server = usage.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == TrustedRoots.ServerAuthenticationOid);
                Require(server, "certificateFile", $"the certificate ({certificate.Subject}) is not for server authentication (its extended key usage lacks {TrustedRoots.ServerAuthenticationOid})");
            }
        }
    }

    private static bool IsPem(byte[] bytes) =>
        System.Text.Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 4096)).Contains("-----BEGIN ", StringComparison.Ordinal);

    private static byte[] Read(string path, string field)
    {
        try
        {
            var info = new FileInfo(path);
            Require(!info.Exists || info.Length <= MaxFileBytes, field, $"'{path}' is larger than {MaxFileBytes} bytes: not a certificate or key file");
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"configuration: tls.{field}: cannot read '{path}': {Reason(e)}");
        }
    }

    /// <summary>The exception's own words, without what the message already says (the path, the parameter).</summary>
    private static string Reason(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file",
        _ => e.Message.Split(" (Parameter '", 2)[0],
    };

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ConfigException($"configuration: tls.{field}: {why}");
    }

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (X509Certificate2 c in Chain) c.Dispose();
    }
}
