using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Switch.Engine.Business;
using Switch.Host.Configuration;

namespace Switch.Host.Gateway;

/// <summary>The SHA-256 of a certificate's DER bytes: what <c>openssl x509 -noout -fingerprint -sha256</c> prints.</summary>
public readonly record struct CertificateFingerprint(ulong A, ulong B, ulong C, ulong D)
{
    public const int HexDigits = 64;

    /// <summary>Hashes the certificate on the stack: no allocation per call.</summary>
    public static CertificateFingerprint Of(X509Certificate2 certificate)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        bool done = certificate.TryGetCertHash(HashAlgorithmName.SHA256, hash, out int written);
        Debug.Assert(done && written == SHA256.HashSizeInBytes);
        return FromBytes(hash);
    }

    /// <summary>64 hex digits, either run together or in pairs separated by ':' (as openssl prints them); any case.</summary>
    public static bool TryParse(string? text, out CertificateFingerprint fingerprint)
    {
        fingerprint = default;
        if (text is null) return false;
        string hex = text.Length == HexDigits * 3 / 2 - 1 ? text.Replace(":", "", StringComparison.Ordinal) : text;
        if (hex.Length != HexDigits || (hex.Length != text.Length && !IsPairs(text))) return false;
        Span<byte> bytes = stackalloc byte[SHA256.HashSizeInBytes];
        if (Convert.FromHexString(hex, bytes, out _, out int written) != System.Buffers.OperationStatus.Done || written != bytes.Length) return false;
        fingerprint = FromBytes(bytes);
        return true;
    }

    private static bool IsPairs(string text)
    {
        for (int i = 2; i < text.Length; i += 3)
        {
            if (text[i] != ':') return false;
        }
        return true;
    }

    private static CertificateFingerprint FromBytes(ReadOnlySpan<byte> hash) => new(
        BinaryPrimitives.ReadUInt64BigEndian(hash), BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(hash[16..]), BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));

    /// <summary>Lowercase hex, 64 digits.</summary>
    public override string ToString() => $"{A:x16}{B:x16}{C:x16}{D:x16}";
}

/// <summary>
/// Which institution a client certificate proves the caller to be, by the certificate's SHA-256 fingerprint (the
/// host configuration's tls.institutionCertificates), resolved against the participants in force (the journal's).
/// A fingerprint maps to exactly one institution; an institution may have several (certificate rotation).
/// </summary>
public sealed class ClientCertificateMap
{
    private readonly Dictionary<CertificateFingerprint, int> _institutionIndex;

    private ClientCertificateMap(Dictionary<CertificateFingerprint, int> institutionIndex) => _institutionIndex = institutionIndex;

    public int Count => _institutionIndex.Count;

    /// <summary>Resolves the configured mapping against <paramref name="running"/>; an institution it lacks is a ConfigException naming the field.</summary>
    public static ClientCertificateMap Create(IReadOnlyList<InstitutionCertificateConfig> mapping, SwitchConfig running)
    {
        var index = new Dictionary<CertificateFingerprint, int>();
        for (int i = 0; i < mapping.Count; i++)
        {
            InstitutionCertificateConfig entry = mapping[i];
            int institution = -1;
            for (int k = 0; k < running.Institutions.Count; k++)
            {
                if (running.Institutions[k].Code == entry.Institution) institution = k;
            }
            if (institution < 0)
            {
                throw new ConfigException($"configuration: tls.institutionCertificates[{i}].institution: no institution '{entry.Institution}' among the participants in force");
            }
            for (int f = 0; f < entry.Sha256.Count; f++)
            {
                // TlsConfig.Validate has checked the text and that no fingerprint is given twice.
                bool parsed = CertificateFingerprint.TryParse(entry.Sha256[f], out CertificateFingerprint fingerprint);
                Debug.Assert(parsed);
                bool added = index.TryAdd(fingerprint, institution);
                Debug.Assert(added);
            }
        }
        return new ClientCertificateMap(index);
    }

    /// <summary>The institution's index in the participants, or -1 when the certificate is mapped to none.</summary>
    public int Find(X509Certificate2 certificate, out CertificateFingerprint fingerprint)
    {
        fingerprint = CertificateFingerprint.Of(certificate);
        return _institutionIndex.TryGetValue(fingerprint, out int institution) ? institution : -1;
    }
}
