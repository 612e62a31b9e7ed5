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
/// Failed attempts are slowed per source address (<see cref="AuthFailureLimiter"/>); a correct key never is.
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

    /// <summary>
    /// The caller's institution. The key is always checked and a correct one accepted; a wrong or missing one is
    /// UNAUTHENTICATED, at once within its address's failure budget and after the tarpit delay past it
    /// (<see cref="AuthFailureLimiter"/>). Completes synchronously unless a wrong key is held in the tarpit.
    /// </summary>
    public ValueTask<AuthenticatedInstitution> AuthenticateAsync(ServerCallContext context)
    {
        // The address is formatted only while some address is failing: the usual call pays one volatile read.
        string? source = null;
        AuthFailureLimiter.Entry? held = null;
        if (_failures.AnyTracked)
        {
            source = AuthFailureLimiter.SourceAddress(context.Peer);
            if (_failures.Admit(source, out held) == AuthAdmission.Refused)
            {
                throw new RpcException(StatusCode.ResourceExhausted,
                    $"AUTH_THROTTLED: {_failures.MaxDelayed} failed authentications from this address are waiting for their answers " +
                    $"(limits.authDelayedPerAddress); retry after {(_failures.DelayMs + 999) / 1000} s");
            }
        }
        RpcException? failure = Check(context, out AuthenticatedInstitution? institution);
        if (failure is null)
        {
            if (held is not null) _failures.Leave(held);
            return ValueTask.FromResult(institution!);
        }
        _failures.RecordFailure(source ?? AuthFailureLimiter.SourceAddress(context.Peer));
        if (held is null) throw failure;
        return AnswerLateAsync(held, failure, context.CancellationToken);
    }

    /// <summary>A wrong key past the budget: answered once the delay has passed (or the caller has gone).</summary>
    private async ValueTask<AuthenticatedInstitution> AnswerLateAsync(AuthFailureLimiter.Entry held, RpcException failure, CancellationToken cancel)
    {
        try
        {
            await Task.Delay(_failures.DelayMs, cancel);
        }
        finally
        {
            _failures.Leave(held);
        }
        throw failure;
    }

    /// <summary>Null with the institution the call proves to be, or the refusal to send.</summary>
    private RpcException? Check(ServerCallContext context, out AuthenticatedInstitution? institution)
    {
        institution = null;
        string? key = context.RequestHeader(InstitutionMethods.ApiKeyHeader);
        if (_certificates is not null && context.ClientCertificate is { } certificate)
        {
            return ByCertificate(certificate, key, out institution);
        }
        if (string.IsNullOrEmpty(key))
        {
            return new RpcException(StatusCode.Unauthenticated, $"missing API key: send it in the '{InstitutionMethods.ApiKeyHeader}' metadata header");
        }
        int index = ApiKeyHash.Match(_digests, key, MaxApiKeyBytes);
        if (index < 0)
        {
            return new RpcException(StatusCode.Unauthenticated, "invalid API key");
        }
        institution = _keys[index].Institution;
        return null;
    }

    /// <summary>The certificate passed the handshake (it chains to the client authorities); here it must be mapped.</summary>
    private RpcException? ByCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, string? key,
        out AuthenticatedInstitution? institution)
    {
        institution = null;
        int index = _certificates!.Find(certificate, out CertificateFingerprint fingerprint);
        if (index < 0)
        {
            return new RpcException(StatusCode.Unauthenticated, $"client certificate (SHA-256 {fingerprint}) is not mapped to any institution");
        }
        AuthenticatedInstitution proved = _keys[index].Institution;
        if (!string.IsNullOrEmpty(key) && ApiKeyHash.Match(_digests, key, MaxApiKeyBytes) != index)
        {
            // Which institution a wrong key belongs to (if any) is not told: only that it is not the certificate's.
            return new RpcException(StatusCode.Unauthenticated,
                $"the API key is not that of institution {proved.Code}, which the client certificate proves: send its key or none");
        }
        institution = proved;
        return null;
    }
}
