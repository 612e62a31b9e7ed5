using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Host.Configuration;

namespace Switch.Host.Admin;

/// <summary>An operator the caller has proved to be.</summary>
public sealed record AuthenticatedOperator(string Id, OperatorRole Role, OperatorScope? Scope = null)
{
    public bool MayOperate => Role == OperatorRole.Operate;

    /// <summary>Throws PERMISSION_DENIED unless the operator may change things.</summary>
    public void RequireOperate(string what)
    {
        if (!MayOperate)
        {
            throw new RpcException(StatusCode.PermissionDenied, $"operator '{Id}' has the read role and may not {what}; it needs the operate role");
        }
    }

    /// <summary>Throws PERMISSION_DENIED naming the scope when the operator is scoped to one bank or institution.</summary>
    public void RequireUnscoped(string method)
    {
        if (Scope is not null)
        {
            throw new RpcException(StatusCode.PermissionDenied, $"operator '{Id}' is scoped to {Scope}: it may call WhoAmI, GetMemberReport and ExplainOrder only, not {method}");
        }
    }
}

/// <summary>
/// Checks an operator key against the configured digests (constant time, every digest every time). Operators' keys
/// are separate from institutions' keys: an institution's key is never an operator's.
/// </summary>
public sealed class OperatorAuthenticator
{
    /// <summary>Longest key accepted; anything longer is refused before hashing.</summary>
    public const int MaxKeyBytes = 256;
    private readonly byte[][] _digests;
    private readonly AuthenticatedOperator[] _operators;
    private long _failures;

    public OperatorAuthenticator(IReadOnlyList<OperatorConfig> operators)
    {
        _digests = new byte[operators.Count][];
        _operators = new AuthenticatedOperator[operators.Count];
        for (int i = 0; i < operators.Count; i++)
        {
            OperatorConfig op = operators[i];
            if (!ApiKeyHash.TryParse(op.KeyHash, out _digests[i]))
            {
                throw new Engine.Business.ConfigException($"configuration: operators[{i}].keyHash: not sha256:<hex>");
            }
            _operators[i] = new AuthenticatedOperator(op.Id, op.Role == OperatorConfig.RoleOperate ? OperatorRole.Operate : OperatorRole.Read, op.Scope);
        }
    }

    /// <summary>Missing or wrong keys since start (a metrics counter).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The operator whose key this is; UNAUTHENTICATED when missing or wrong.</summary>
    public AuthenticatedOperator Authenticate(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            Interlocked.Increment(ref _failures);
            throw new RpcException(StatusCode.Unauthenticated, $"missing operator key: send it in the '{AdminMethods.OperatorKeyHeader}' header");
        }
        int match = ApiKeyHash.Match(_digests, key, MaxKeyBytes);
        if (match >= 0) return _operators[match];
        Interlocked.Increment(ref _failures);
        throw new RpcException(StatusCode.Unauthenticated, "invalid operator key");
    }
}
