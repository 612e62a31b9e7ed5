using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Switch.Grpc.Tls;

/// <summary>
/// Certificate authorities trusted instead of the system's: a peer's certificate is good when it chains to one of them
/// for the purpose asked (server or client authentication) and is within its validity period. Revocation is not
/// checked and nothing is downloaded: a switch must not depend on reaching a CRL or OCSP server to take a call
/// (withdraw a client certificate by removing its fingerprint from the switch's mapping instead).
/// </summary>
public sealed class TrustedRoots
{
    public const string ServerAuthenticationOid = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthenticationOid = "1.3.6.1.5.5.7.3.2";
    /// <summary>A bundle is a handful of authorities; more is a wrong file.</summary>
    public const int MaxCertificates = 256;

    private readonly X509Certificate2Collection _roots;

    public TrustedRoots(X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        if (roots.Count is 0 or > MaxCertificates)
            throw new ArgumentException($"a trust bundle holds 1 to {MaxCertificates} certificates, got {roots.Count}", nameof(roots));
        _roots = roots;
    }

    public int Count => _roots.Count;

    /// <summary>
    /// The certificates of a PEM file ("-----BEGIN CERTIFICATE-----" blocks; anything else in it is ignored).
    /// Throws IOException when the file cannot be read, InvalidDataException when it holds no usable certificate.
    /// </summary>
    public static TrustedRoots FromPemFile(string path)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"'{path}' holds a certificate that cannot be read: {e.Message}", e);
        }
        if (roots.Count == 0) throw new InvalidDataException($"'{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        if (roots.Count > MaxCertificates) throw new InvalidDataException($"'{path}' holds {roots.Count} certificates, at most {MaxCertificates}");
        return new TrustedRoots(roots);
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> chains to one of these roots for <paramref name="purposeOid"/>, using the
    /// intermediates the peer presented (<paramref name="presented"/>, may be null).
    /// </summary>
    public bool Chains(X509Certificate2 certificate, string purposeOid, X509Chain? presented = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        X509ChainPolicy policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_roots);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.ApplicationPolicy.Add(new Oid(purposeOid));
        if (presented is not null)
        {
            foreach (X509ChainElement element in presented.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, certificate)) policy.ExtraStore.Add(element.Certificate);
            }
        }
        return chain.Build(certificate);
    }

    /// <summary>
    /// A client's check of a server's certificate: it chains to these roots for server authentication, or is itself one
    /// of them (a pinned server certificate), and names the host dialled (the system's name check stays; only the
    /// system's roots are replaced).
    /// </summary>
    public RemoteCertificateValidationCallback ServerCertificateValidation() => (_, certificate, chain, errors) =>
        certificate is X509Certificate2 server
        && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
        && (Contains(server) || Chains(server, ServerAuthenticationOid, chain));

    private bool Contains(X509Certificate2 certificate)
    {
        foreach (X509Certificate2 root in _roots)
        {
            if (root.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span)) return true;
        }
        return false;
    }
}
