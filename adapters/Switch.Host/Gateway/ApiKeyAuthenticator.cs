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
/// Failed attempts are limited per source address (<see cref="AuthFailureLimiter"/>).
/// </summary>
public sealed class ApiKeyAuthenticator
{
    /// <summary>Longest key accepted; anything longer is refused before hashing.</summary>
    public const int MaxApiKeyBytes = 256;
    private readonly (byte[] Digest, AuthenticatedInstitution Institution)[] _keys;
    private readonly byte[][] _digests;

    private readonly AuthFailureLimiter _failures;

    /// <param name="failures">The failed-authentication limiter; null takes <see cref="GatewayLimits.Default"/>.</param>
    public ApiKeyAuthenticator(SwitchConfig config, AuthFailureLimiter? failures = null)
    {
        _failures = failures ?? new AuthFailureLimiter(GatewayLimits.Default);
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
}
