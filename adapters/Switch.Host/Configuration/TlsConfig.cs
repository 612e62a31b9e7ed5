using Switch.Engine.Business;
using Switch.Host.Gateway;

namespace Switch.Host.Configuration;

/// <summary>
/// TLS on the institution port and both admin ports (one server certificate), and optionally client certificates on
/// the institution port: a certificate that chains to <see cref="ClientCaFile"/> and whose SHA-256 fingerprint is
/// mapped to an institution authenticates the caller as that institution. Files are PEM or PKCS#12; relative paths
/// are taken from the configuration file's directory. A password is never in the file: <see cref="PasswordVariable"/>
/// names the environment variable holding it.
/// </summary>
public sealed record TlsConfig
{
    public const string ClientCertificatesNone = "none";
    public const string ClientCertificatesOptional = "optional";
    public const string ClientCertificatesRequired = "required";
    /// <summary>Enough for a rotation overlap and a spare; a longer list is a mistake.</summary>
    public const int MaxFingerprintsPerInstitution = 16;
    public const int MaxVariableNameLength = 128;

    /// <summary>The server's certificate: PEM (the certificate first, then its intermediates; may also hold the key) or PKCS#12.</summary>
    public string CertificateFile { get; init; } = "";
    /// <summary>The PEM private key (PKCS#8, encrypted PKCS#8, PKCS#1 RSA or SEC1 EC) when the PEM certificate file holds none.</summary>
    public string? KeyFile { get; init; }
    /// <summary>The name of the environment variable holding the PKCS#12 password or the encrypted key's password.</summary>
    public string? PasswordVariable { get; init; }
    /// <summary>"none", "optional" (asked for; a caller without one uses its API key) or "required" (no certificate, no connection).</summary>
    public string ClientCertificates { get; init; } = ClientCertificatesNone;
    /// <summary>PEM bundle of the authorities institution certificates must chain to (required unless clientCertificates is "none").</summary>
    public string? ClientCaFile { get; init; }
    /// <summary>Which client certificate (by SHA-256 fingerprint) is which institution.</summary>
    public IReadOnlyList<InstitutionCertificateConfig> InstitutionCertificates { get; init; } = [];

    [System.Text.Json.Serialization.JsonIgnore]
    public Grpc.Tls.ClientCertificates ClientCertificateRule => ClientCertificates switch
    {
        ClientCertificatesOptional => Grpc.Tls.ClientCertificates.Optional,
        ClientCertificatesRequired => Grpc.Tls.ClientCertificates.Required,
        _ => Grpc.Tls.ClientCertificates.None,
    };

    /// <summary>The same with relative file paths taken from <paramref name="directory"/> (the configuration file's).</summary>
    public TlsConfig RelativeTo(string directory) => this with
    {
        CertificateFile = Resolve(directory, CertificateFile)!,
        KeyFile = Resolve(directory, KeyFile),
        ClientCaFile = Resolve(directory, ClientCaFile),
    };

    private static string? Resolve(string directory, string? path) =>
        string.IsNullOrEmpty(path) || Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(directory, path));

    /// <summary>What can be checked without reading a file; <see cref="TlsMaterial.Load"/> checks the files.</summary>
    public void Validate(IReadOnlyList<InstitutionConfig> institutions)
    {
        Require(!string.IsNullOrWhiteSpace(CertificateFile), "certificateFile", "the server certificate file (PEM or PKCS#12) is required");
        Require(KeyFile is null || KeyFile.Trim().Length > 0, "keyFile", "a file name, or leave it out");
        Require(PasswordVariable is null || IsVariableName(PasswordVariable), "passwordVariable",
            $"the name of an environment variable (letters, digits, '_'; at most {MaxVariableNameLength}); the password itself never goes in the file (the value is not shown: it may be one)");
        Require(ClientCertificates is ClientCertificatesNone or ClientCertificatesOptional or ClientCertificatesRequired, "clientCertificates",
            $"\"{ClientCertificatesNone}\", \"{ClientCertificatesOptional}\" or \"{ClientCertificatesRequired}\", got '{ClientCertificates}'");
        Require(InstitutionCertificates is not null, "institutionCertificates", "a list");
        bool asked = ClientCertificates != ClientCertificatesNone;
        Require(!asked || !string.IsNullOrWhiteSpace(ClientCaFile), "clientCaFile",
            $"required with clientCertificates \"{ClientCertificates}\": the authorities (PEM) client certificates must chain to");
        Require(asked || ClientCaFile is null, "clientCaFile", $"only used with clientCertificates \"{ClientCertificatesOptional}\" or \"{ClientCertificatesRequired}\"");
        Require(asked || InstitutionCertificates!.Count == 0, "institutionCertificates",
            $"only used with clientCertificates \"{ClientCertificatesOptional}\" or \"{ClientCertificatesRequired}\" (with \"none\" no certificate is asked for)");
        Require(!asked || InstitutionCertificates!.Count > 0, "institutionCertificates",
            "map at least one institution to its certificate's SHA-256 fingerprint (else no certificate could authenticate anyone)");
        var codes = new HashSet<string>(institutions.Select(i => i.Code), StringComparer.Ordinal);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        var mappedTo = new Dictionary<CertificateFingerprint, string>();
        for (int i = 0; i < InstitutionCertificates!.Count; i++)
        {
            InstitutionCertificateConfig entry = InstitutionCertificates[i];
            string at = $"institutionCertificates[{i}]";
            Require(entry is not null, at, "required");
            Require(codes.Contains(entry!.Institution), at + ".institution", $"no institution '{entry.Institution}' in switch.institutions");
            Require(listed.Add(entry.Institution), at + ".institution", $"institution '{entry.Institution}' is listed twice (give one entry several fingerprints)");
            Require(entry.Sha256 is { Count: >= 1 and <= MaxFingerprintsPerInstitution }, at + ".sha256",
                $"1 to {MaxFingerprintsPerInstitution} certificate fingerprints");
            for (int f = 0; f < entry.Sha256!.Count; f++)
            {
                Require(CertificateFingerprint.TryParse(entry.Sha256[f], out CertificateFingerprint fingerprint), $"{at}.sha256[{f}]",
                    $"a SHA-256 certificate fingerprint: {CertificateFingerprint.HexDigits} hex digits (pairs may be separated by ':'), got '{entry.Sha256[f]}'");
                Require(mappedTo.TryAdd(fingerprint, entry.Institution), $"{at}.sha256[{f}]",
                    $"fingerprint {fingerprint} is already mapped to institution '{mappedTo.GetValueOrDefault(fingerprint)}' (a certificate proves one institution)");
            }
        }
    }

    private static bool IsVariableName(string name) =>
        name.Length is > 0 and <= MaxVariableNameLength && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static void Require(bool ok, string field, string why)
    {
        if (!ok) throw new ConfigException($"configuration: tls.{field}: {why}");
    }
}

/// <summary>One institution's client certificates, by SHA-256 fingerprint.</summary>
public sealed record InstitutionCertificateConfig
{
    /// <summary>The institution's code, as in switch.institutions.</summary>
    public string Institution { get; init; } = "";
    public IReadOnlyList<string> Sha256 { get; init; } = [];
}
