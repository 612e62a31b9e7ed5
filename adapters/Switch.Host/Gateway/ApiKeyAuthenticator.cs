using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
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
/// <para>A connection remembers the last <see cref="MaxKeysPerConnection"/> keys verified on it: a call that presents
/// exactly one of them again (the same characters, compared in constant time) on the same connection is the institution
/// it proved, without hashing it again
/// (hashing and matching the key was 2.5% of the switch's CPU in the unary closed loop). Anything else (another key, one character
/// off, a prefix) is hashed and matched against every digest as before. The keys are this authenticator's for its life
/// (they change with the configuration, at a restart, which closes every connection), so what a connection remembers
/// stays true while it lives; it is forgotten when the connection closes.</para>
/// </summary>
public sealed class ApiKeyAuthenticator
{
    /// <summary>Longest key accepted; anything longer is refused before hashing.</summary>
    public const int MaxApiKeyBytes = 256;
    private readonly (byte[] Digest, AuthenticatedInstitution Institution)[] _keys;
    private readonly byte[][] _digests;

    /// <summary>Keys a connection remembers at most: a connection may carry several institutions' calls (a client or
    /// proxy serving more than one; the load harness spreads three institutions over every connection).</summary>
    public const int MaxKeysPerConnection = 4;

    /// <summary>Each open connection's verified keys (the port's connection limit bounds the connections).</summary>
    private readonly ConcurrentDictionary<string, ConnectionKeys> _verified = new(StringComparer.Ordinal);
    private long _keysHashed;

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

    /// <summary>Keys hashed and matched against the digests so far (a call whose connection remembered its key is not one).</summary>
    public long KeysHashed => Interlocked.Read(ref _keysHashed);

    /// <summary>Connections that remember a verified key now.</summary>
    public int ConnectionsRemembered => _verified.Count;

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
            return ByCertificate(context, certificate, key, out institution);
        }
        if (string.IsNullOrEmpty(key))
        {
            return new RpcException(StatusCode.Unauthenticated, $"missing API key: send it in the '{InstitutionMethods.ApiKeyHeader}' metadata header");
        }
        int index = Match(context, key);
        if (index < 0)
        {
            return new RpcException(StatusCode.Unauthenticated, "invalid API key");
        }
        institution = _keys[index].Institution;
        return null;
    }

    /// <summary>The index of the institution whose key <paramref name="key"/> is, or -1: a key the connection remembers
    /// when it is exactly that, else every digest (and then remembered on the connection when it matched).</summary>
    private int Match(ServerCallContext context, string key)
    {
        string connection = context.ConnectionId;
        // A connection that cannot say when it closes would never be forgotten: nothing is remembered for it.
        bool remembers = connection.Length != 0 && context.ConnectionClosed.CanBeCanceled;
        ConnectionKeys? known = null;
        if (remembers && _verified.TryGetValue(connection, out known) && known.Find(key) is { } verified) return verified.Index;
        Interlocked.Increment(ref _keysHashed);
        int index = ApiKeyHash.Match(_digests, key, MaxApiKeyBytes);
        if (index >= 0 && remembers) Remember(connection, context.ConnectionClosed, known, new VerifiedKey(key, index));
        return index;
    }

    private void Remember(string connection, CancellationToken connectionClosed, ConnectionKeys? known, VerifiedKey verified)
    {
        if (known is null)
        {
            var fresh = new ConnectionKeys();
            fresh.Add(verified);
            if (_verified.TryAdd(connection, fresh))
            {
                // Runs at once if the connection has closed already. Removes this entry only, never a later one.
                connectionClosed.Register(static state =>
                {
                    var (verified, connection, entry) = ((ConcurrentDictionary<string, ConnectionKeys>, string, ConnectionKeys))state!;
                    verified.TryRemove(new KeyValuePair<string, ConnectionKeys>(connection, entry));
                }, (_verified, connection, fresh));
                return;
            }
            if (!_verified.TryGetValue(connection, out known)) return; // another call added it and the connection closed
        }
        known.Add(verified);
    }

    /// <summary>
    /// The keys one connection remembers: <see cref="MaxKeysPerConnection"/> slots, a new key taking the next in turn.
    /// Each slot holds a whole <see cref="VerifiedKey"/> (a key with the institution it proved), so a reader racing a
    /// writer sees the old pair or the new one, both true. Two calls that verify one new key at once may both store it.
    /// </summary>
    private sealed class ConnectionKeys
    {
        private readonly VerifiedKey?[] _slots = new VerifiedKey?[MaxKeysPerConnection];
        private int _added;

        public VerifiedKey? Find(string presented)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                if (Volatile.Read(ref _slots[i]) is { } verified && verified.Is(presented)) return verified;
            }
            return null;
        }

        public void Add(VerifiedKey verified)
        {
            int slot = (int)((uint)(Interlocked.Increment(ref _added) - 1) % (uint)_slots.Length);
            Volatile.Write(ref _slots[slot], verified);
        }
    }

    /// <summary>A key verified against the digests and the institution it matched.</summary>
    private sealed class VerifiedKey(string key, int index)
    {
        public int Index { get; } = index;

        /// <summary>Exactly the same characters, compared in constant time for keys of one length (a key of another
        /// length is no match, and goes to the digests like any wrong key).</summary>
        public bool Is(string presented) =>
            presented.Length == key.Length &&
            CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(presented.AsSpan()), MemoryMarshal.AsBytes(key.AsSpan()));
    }

    /// <summary>The certificate passed the handshake (it chains to the client authorities); here it must be mapped.</summary>
    private RpcException? ByCertificate(ServerCallContext context, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, string? key,
        out AuthenticatedInstitution? institution)
    {
        institution = null;
        int index = _certificates!.Find(certificate, out CertificateFingerprint fingerprint);
        if (index < 0)
        {
            return new RpcException(StatusCode.Unauthenticated, $"client certificate (SHA-256 {fingerprint}) is not mapped to any institution");
        }
        AuthenticatedInstitution proved = _keys[index].Institution;
        if (!string.IsNullOrEmpty(key) && Match(context, key) != index)
        {
            // Which institution a wrong key belongs to (if any) is not told: only that it is not the certificate's.
            return new RpcException(StatusCode.Unauthenticated,
                $"the API key is not that of institution {proved.Code}, which the client certificate proves: send its key or none");
        }
        institution = proved;
        return null;
    }
}
