using System.Text;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Grpc.Server;
using Switch.Host.Configuration;

namespace Switch.Host.Gateway;

/// <summary>An institution the caller has proved to be.</summary>
public sealed record AuthenticatedInstitution(int Index, string Code, byte[] CodeUtf8);

/// <summary>
/// Checks the API key in the call's metadata against the stored SHA-256 digests. Every digest is compared in
/// constant time, all of them every time, so timing tells nothing about which institution or how close.
/// With mutual TLS (a <see cref="ClientCertificateMap"/>), a client certificate proves the institution it is mapped to:
/// the key is then optional, and one sent must be that same institution's, so a call always acts for one institution.
/// Failed attempts are limited per source address (<see cref="AuthFailureLimiter"/>).
/// </summary>
public sealed class ApiKeyAuthenticator
{
    /// <summary>Longest key accepted; anything longer is refused before hashing.</summary>
    public const int MaxApiKeyBytes = 256;
    private readonly (byte[] Digest, AuthenticatedInstitution Institution)[] _keys;
    private readonly byte[][] _digests;

    private readonly AuthFailureLimiter _failures;
    private readonly ClientCertificateMap? _certificates;

    /// <param name="failures">The failed-authentication limiter; null takes <see cref="GatewayLimits.Default"/>.</param>
    /// <param name="certificates">Client certificates to institutions (mutual TLS); null: certificates are not looked at.</param>
    public ApiKeyAuthenticator(SwitchConfig config, AuthFailureLimiter? failures = null, ClientCertificateMap? certificates = null)
    {
        _failures = failures ?? new AuthFailureLimiter(GatewayLimits.Default);
        _certificates = certificates;
        _keys = config.Institutions.Select((inst, index) =>
        {
            if (!ApiKeyHash.TryParse(inst.CredentialRef, out byte[] digest))
            {
                throw new ConfigException($"configuration: institution {inst.Code}: credentialRef is not sha256:<hex>");
            }
            return (digest, new AuthenticatedInstitution(index, inst.Code, Encoding.ASCII.GetBytes(inst.Code)));
        }).ToArray();
        _digests = _keys.Select(k => k.Digest).ToArray();
    }

    public AuthFailureLimiter Failures => _failures;

    public AuthenticatedInstitution Authenticate(ServerCallContext context)
    {
        // The address is formatted only while some address is failing: the usual call pays one volatile read.
        string? source = null;
        if (_failures.AnyTracked)
        {
            source = AuthFailureLimiter.SourceAddress(context.Peer);
            if (_failures.IsRefused(source, out long retryAfterS))
            {
                throw new RpcException(StatusCode.ResourceExhausted,
                    $"too many failed authentications from this address; retry after {retryAfterS} s");
            }
        }
        string? key = context.RequestHeaders.GetValue(InstitutionMethods.ApiKeyHeader);
        if (_certificates is not null && context.ClientCertificate is { } certificate)
        {
            return ByCertificate(certificate, key, source, context);
        }
        if (string.IsNullOrEmpty(key))
        {
            _failures.RecordFailure(source ?? AuthFailureLimiter.SourceAddress(context.Peer));
            throw new RpcException(StatusCode.Unauthenticated, $"missing API key: send it in the '{InstitutionMethods.ApiKeyHeader}' metadata header");
        }
        int index = ApiKeyHash.Match(_digests, key, MaxApiKeyBytes);
        if (index < 0)
        {
            _failures.RecordFailure(source ?? AuthFailureLimiter.SourceAddress(context.Peer));
            throw new RpcException(StatusCode.Unauthenticated, "invalid API key");
        }
        return _keys[index].Institution;
    }

    /// <summary>The certificate passed the handshake (it chains to the client authorities); here it must be mapped.</summary>
    private AuthenticatedInstitution ByCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, string? key, string? source,
        ServerCallContext context)
    {
        int index = _certificates!.Find(certificate, out CertificateFingerprint fingerprint);
        if (index < 0)
        {
            _failures.RecordFailure(source ?? AuthFailureLimiter.SourceAddress(context.Peer));
            throw new RpcException(StatusCode.Unauthenticated, $"client certificate (SHA-256 {fingerprint}) is not mapped to any institution");
        }
        AuthenticatedInstitution institution = _keys[index].Institution;
        if (string.IsNullOrEmpty(key)) return institution;
        int keyIndex = ApiKeyHash.Match(_digests, key, MaxApiKeyBytes);
        if (keyIndex != index)
        {
            _failures.RecordFailure(source ?? AuthFailureLimiter.SourceAddress(context.Peer));
            // Which institution a wrong key belongs to (if any) is not told: only that it is not the certificate's.
            throw new RpcException(StatusCode.Unauthenticated,
                $"the API key is not that of institution {institution.Code}, which the client certificate proves: send its key or none");
        }
        return institution;
    }
}
